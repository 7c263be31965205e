//! What `xdm-connect doctor` reads from AWS: Connect's DescribeInstance / DescribeContactFlow (over
//! reqwest with a SigV4-shaped header, as the contact routes are tested) and SNS's
//! GetTopicAttributes / ListSubscriptionsByTopic through the official `aws-sdk-sns` client.

use aws_sdk_sns::Client;
use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region};
use reqwest::Method;
use serde_json::{Value, json};
use xdm_sandbox::{ContactFlowSpec, SandboxConfig, SandboxHandle, Side};

use crate::support::{
    Receiver, WAIT, connect_call, http, sandbox, sandbox_with, sigv4, start_chat_body,
};

fn sns(sb: &SandboxHandle) -> Client {
    let config = aws_sdk_sns::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(sb.config().connect.region.clone()))
        .endpoint_url(sb.base_url())
        .credentials_provider(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        ))
        .build();
    Client::from_conf(config)
}

async fn describe(sb: &SandboxHandle, path: &str) -> (u16, Option<String>, Value) {
    let (status, headers, body) = connect_call(sb, Method::GET, path, Value::Null).await;
    let code = headers
        .get("x-amzn-ErrorType")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, code, body)
}

#[tokio::test]
async fn describe_instance_and_contact_flow() {
    let sb = sandbox().await;
    let c = sb.config().connect.clone();

    let (status, _, body) = describe(&sb, &format!("/instance/{}", c.instance_id)).await;
    assert_eq!(status, 200, "{body}");
    let instance = &body["Instance"];
    assert_eq!(instance["Id"], c.instance_id);
    assert_eq!(
        instance["Arn"],
        format!(
            "arn:aws:connect:{}:{}:instance/{}",
            c.region, c.account_id, c.instance_id
        )
    );
    assert_eq!(instance["InstanceStatus"], "ACTIVE");
    assert_eq!(instance["IdentityManagementType"], "CONNECT_MANAGED");
    assert!(instance["InstanceAlias"].is_string());
    assert!(instance["CreatedTime"].is_number());
    assert_eq!(instance["InboundCallsEnabled"], true);

    let (status, code, _) = describe(&sb, "/instance/8d6a0f5c-0000-4000-8000-000000000000").await;
    assert_eq!(
        (status, code.as_deref()),
        (404, Some("ResourceNotFoundException"))
    );

    let path = format!("/contact-flows/{}/{}", c.instance_id, c.contact_flow_id);
    let (status, _, body) = describe(&sb, &path).await;
    assert_eq!(status, 200, "{body}");
    let flow = &body["ContactFlow"];
    assert_eq!(flow["Id"], c.contact_flow_id);
    assert_eq!(flow["Type"], "CONTACT_FLOW");
    assert_eq!(flow["State"], "ACTIVE");
    assert_eq!(flow["Status"], "PUBLISHED");
    assert!(
        flow["Arn"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/contact-flow/{}", c.contact_flow_id))
    );
    let content: Value = serde_json::from_str(flow["Content"].as_str().unwrap()).unwrap();
    assert!(content["Actions"].is_array());

    for path in [
        format!("/contact-flows/{}/unknown-flow", c.instance_id),
        format!("/contact-flows/other-instance/{}", c.contact_flow_id),
    ] {
        let (status, code, body) = describe(&sb, &path).await;
        assert_eq!(
            (status, code.as_deref()),
            (404, Some("ResourceNotFoundException")),
            "{path}"
        );
        assert!(body["message"].is_string());
    }

    // The Connect down switch applies.
    sb.set_down(Side::Connect, true);
    let (status, code, _) = describe(&sb, &path).await;
    assert_eq!(
        (status, code.as_deref()),
        (503, Some("ServiceUnavailableException"))
    );
    sb.set_down(Side::Connect, false);

    // Without a signature: refused like every Connect route.
    let resp = http()
        .get(format!("{}{path}", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(
        resp.headers()["x-amzn-ErrorType"],
        "MissingAuthenticationTokenException"
    );
}

#[tokio::test]
async fn flows_are_added_and_removed_and_start_chat_follows() {
    let sb = sandbox().await;
    let c = sb.config().connect.clone();
    let start = |flow: &str| {
        let mut body = start_chat_body(&sb, "Elizabeth Fuentes", "Hola");
        body["ContactFlowId"] = json!(flow);
        body
    };

    // Removing the configured flow: DescribeContactFlow and StartChatContact stop finding it.
    assert!(sb.remove_contact_flow(&c.contact_flow_id));
    assert!(!sb.remove_contact_flow(&c.contact_flow_id));
    let path = format!("/contact-flows/{}/{}", c.instance_id, c.contact_flow_id);
    assert_eq!(describe(&sb, &path).await.0, 404);
    let (status, headers, _) =
        connect_call(&sb, Method::PUT, "/contact/chat", start(&c.contact_flow_id)).await;
    assert_eq!(status, 404);
    assert_eq!(headers["x-amzn-ErrorType"], "ResourceNotFoundException");

    // An added flow is described and takes chats.
    sb.add_contact_flow(ContactFlowSpec {
        name: "Chat via X".into(),
        ..ContactFlowSpec::inbound("flow-2")
    });
    let (status, _, body) =
        describe(&sb, &format!("/contact-flows/{}/flow-2", c.instance_id)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ContactFlow"]["Name"], "Chat via X");
    let (status, _, body) = connect_call(&sb, Method::PUT, "/contact/chat", start("flow-2")).await;
    assert_eq!(status, 200, "{body}");

    // A flow never published: ContactFlowNotPublishedException; other types are described as such.
    sb.add_contact_flow(ContactFlowSpec {
        status: "SAVED".into(),
        ..ContactFlowSpec::inbound("draft")
    });
    let (status, code, _) = describe(&sb, &format!("/contact-flows/{}/draft", c.instance_id)).await;
    assert_eq!(
        (status, code.as_deref()),
        (404, Some("ContactFlowNotPublishedException"))
    );

    // The same through the control API.
    let base = sb.base_url();
    let resp = http()
        .post(format!("{base}/_sandbox/connect/flows"))
        .json(&json!({"id": "queue-1", "type": "CUSTOMER_QUEUE", "state": "ARCHIVED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let (_, _, body) = describe(&sb, &format!("/contact-flows/{}/queue-1", c.instance_id)).await;
    assert_eq!(body["ContactFlow"]["Type"], "CUSTOMER_QUEUE");
    assert_eq!(body["ContactFlow"]["State"], "ARCHIVED");
    let flows: Vec<Value> = http()
        .get(format!("{base}/_sandbox/connect/flows"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = flows.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["draft", "flow-2", "queue-1"]);
    let status = |resp: reqwest::Response| resp.status().as_u16();
    let url = format!("{base}/_sandbox/connect/flows/queue-1");
    assert_eq!(status(http().delete(&url).send().await.unwrap()), 204);
    assert_eq!(status(http().delete(&url).send().await.unwrap()), 404);
    let bad = http()
        .post(format!("{base}/_sandbox/connect/flows"))
        .json(&json!({"id": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
}

#[tokio::test]
async fn get_topic_attributes_through_the_sdk() {
    let sb = sandbox().await;
    let client = sns(&sb);
    let topic = sb.sns_topic_arn();
    let account = sb.config().connect.account_id.clone();

    let out = client
        .get_topic_attributes()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes().unwrap();
    assert_eq!(attrs["TopicArn"], topic);
    assert_eq!(attrs["Owner"], account);
    assert_eq!(attrs["SubscriptionsConfirmed"], "0");
    assert_eq!(attrs["SubscriptionsPending"], "0");
    assert_eq!(attrs["SignatureVersion"], "1");
    assert!(attrs.contains_key("DisplayName"));
    assert!(!attrs.contains_key("FifoTopic"));
    let delivery: Value = serde_json::from_str(&attrs["EffectiveDeliveryPolicy"]).unwrap();
    assert!(delivery["http"]["defaultHealthyRetryPolicy"].is_object());
    // The default policy lets Connect publish, scoped to the account (as AWS documents).
    let policy: Value = serde_json::from_str(&attrs["Policy"]).unwrap();
    let connect = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Principal"]["Service"] == "connect.amazonaws.com")
        .expect("a Connect statement");
    assert_eq!(connect["Effect"], "Allow");
    assert_eq!(connect["Action"], "SNS:Publish");
    assert_eq!(connect["Resource"], topic);
    assert_eq!(
        connect["Condition"]["StringEquals"]["aws:SourceAccount"],
        account
    );

    // A replaced policy is what SNS answers (quotes, ampersands and all).
    let without_connect = r#"{"Version":"2012-10-17","Statement":[{"Sid":"owner & co","Effect":"Allow","Principal":{"AWS":"*"},"Action":"SNS:Publish","Resource":"*"}]}"#;
    sb.set_sns_topic_policy(&topic, without_connect).unwrap();
    let out = client
        .get_topic_attributes()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap();
    assert_eq!(out.attributes().unwrap()["Policy"], without_connect);
    assert!(sb.set_sns_topic_policy(&topic, "{not json").is_err());

    // Unknown topic: NotFound; not an ARN: InvalidParameter.
    let err = client
        .get_topic_attributes()
        .topic_arn(format!("arn:aws:sns:us-east-1:{account}:nope"))
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert!(err.is_not_found_exception(), "{err:?}");
    let err = client
        .get_topic_attributes()
        .topic_arn("nope")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_parameter_exception(), "{err:?}");

    // A FIFO topic added by a control says so.
    let fifo = format!("arn:aws:sns:us-east-1:{account}:chat.fifo");
    sb.add_sns_topic(&fifo, Some("FIFO".into()), None).unwrap();
    let out = client
        .get_topic_attributes()
        .topic_arn(&fifo)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes().unwrap();
    assert_eq!(attrs["FifoTopic"], "true");
    assert_eq!(attrs["DisplayName"], "FIFO");
    assert!(sb.remove_sns_topic(&fifo));
    let err = client
        .get_topic_attributes()
        .topic_arn(&fifo)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_not_found_exception(), "{err:?}");
}

#[tokio::test]
async fn list_subscriptions_by_topic_through_the_sdk() {
    let mut cfg = SandboxConfig::default();
    cfg.sns.retries = 0;
    let sb = sandbox_with(cfg).await;
    let client = sns(&sb);
    let topic = sb.sns_topic_arn();

    let confirming = Receiver::start("s").await;
    let sub = sb.subscribe(&confirming.sns_url()).await.unwrap();
    sb.wait_confirmed(&sub.subscription_arn, WAIT)
        .await
        .unwrap();
    let silent = Receiver::start("s").await;
    silent.inbox().ignore_confirmations = true;
    sb.subscribe(&silent.sns_url()).await.unwrap();
    let gone = sb.subscribe(&silent.webhook_url()).await.unwrap();
    let unsubscribe = format!(
        "{}/sns/unsubscribe?Action=Unsubscribe&SubscriptionArn={}",
        sb.base_url(),
        gone.subscription_arn
    );
    assert_eq!(http().get(unsubscribe).send().await.unwrap().status(), 200);

    let out = client
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap();
    assert_eq!(out.next_token(), None);
    let subs: Vec<(String, String, String)> = out
        .subscriptions()
        .iter()
        .map(|s| {
            assert_eq!(s.topic_arn(), Some(topic.as_str()));
            assert_eq!(s.owner(), Some(sb.config().connect.account_id.as_str()));
            (
                s.subscription_arn().unwrap().to_owned(),
                s.protocol().unwrap().to_owned(),
                s.endpoint().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        subs,
        [
            (
                sub.subscription_arn.clone(),
                "http".into(),
                confirming.sns_url()
            ),
            (
                "PendingConfirmation".into(),
                "http".into(),
                silent.sns_url()
            ),
        ]
    );
    let attrs = client
        .get_topic_attributes()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap();
    let attrs = attrs.attributes().unwrap();
    assert_eq!(attrs["SubscriptionsConfirmed"], "1");
    assert_eq!(attrs["SubscriptionsPending"], "1");

    // More than a page (100): NextToken leads to the rest, with the SDK's paginator.
    for n in 0..100 {
        sb.subscribe(&format!("{}?n={n}", silent.sns_url()))
            .await
            .unwrap();
    }
    let first = client
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap();
    assert_eq!(first.subscriptions().len(), 100);
    assert!(first.next_token().is_some());
    let pages: Vec<_> = client
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(pages.len(), 2);
    let endpoints: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.subscriptions())
        .filter_map(|s| s.endpoint())
        .collect();
    assert_eq!(endpoints.len(), 102);
    assert_eq!(endpoints[101], format!("{}?n=99", silent.sns_url()));
    let err = client
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .next_token("garbage")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_parameter_exception(), "{err:?}");

    let err = client
        .list_subscriptions_by_topic()
        .topic_arn(format!("{topic}-other"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_not_found_exception(), "{err:?}");
}

#[tokio::test]
async fn query_api_refusals_are_sns_xml() {
    let sb = sandbox().await;
    let base = sb.base_url();
    let form = format!(
        "Action=GetTopicAttributes&Version=2010-03-31&TopicArn={}",
        sb.sns_topic_arn().replace(':', "%3A")
    );
    let post = |auth: Option<String>, body: String| {
        let mut req = http()
            .post(format!("{base}/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(auth) = auth {
            req = req
                .header("authorization", auth)
                .header("x-amz-date", "20261125T120000Z");
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let connect_scoped = sigv4("us-east-1")[0].1.clone();
    let sns_scoped = connect_scoped.replace("/connect/", "/sns/");

    let (status, body) = post(None, form.clone()).await;
    assert_eq!(status, 403);
    assert!(
        body.contains("<Code>MissingAuthenticationToken</Code>"),
        "{body}"
    );
    assert!(body.contains("xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\""));
    assert!(body.contains("<RequestId>"));
    let (status, body) = post(Some(connect_scoped), form.clone()).await;
    assert_eq!(status, 403);
    assert!(
        body.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{body}"
    );
    let (status, body) = post(
        Some(sns_scoped.clone()),
        "Action=Publish&Version=2010-03-31&Message=hi".into(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("<Code>InvalidAction</Code>"), "{body}");
    let (status, body) = post(Some(sns_scoped), form).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with(
        "<GetTopicAttributesResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">"
    ));
    assert!(body.contains("<ResponseMetadata>"));

    // Only POST / is SNS: other methods keep the sandbox's unknown-route answer.
    let resp = http().get(format!("{base}/")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "no route GET /");

    // Topic controls over HTTP.
    let resp = http()
        .post(format!("{base}/_sandbox/sns/topics/policy"))
        .json(&json!({"policy": {"Version": "2012-10-17", "Statement": []}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let topics: Vec<Value> = http()
        .get(format!("{base}/_sandbox/sns/topics"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(topics.len(), 1);
    let policy: Value = serde_json::from_str(topics[0]["policy"].as_str().unwrap()).unwrap();
    assert_eq!(policy, json!({"Version": "2012-10-17", "Statement": []}));
    let resp = http()
        .post(format!("{base}/_sandbox/sns/topics"))
        .json(&json!({"topic_arn": "not-an-arn"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let resp = http()
        .post(format!("{base}/_sandbox/sns/topics/policy"))
        .json(&json!({"topic_arn": "arn:aws:sns:us-east-1:123456789012:none", "policy": "{}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

/// Subscribe with `Attributes.FilterPolicy`, GetSubscriptionAttributes and
/// SetSubscriptionAttributes through the official SDK: the policy is kept and shown, and one the
/// sandbox cannot evaluate is refused as SNS refuses an invalid one (`InvalidParameter`), without
/// touching the subscription.
#[tokio::test]
async fn subscription_filter_policies_through_the_sdk() {
    const POLICY: &str = r#"{"$or":[{"ParticipantRole":[{"anything-but":["CUSTOMER"]}]},{"ParticipantRole":[{"exists":false}]}]}"#;
    let sb = sandbox().await;
    let client = sns(&sb);
    let topic = sb.sns_topic_arn();
    let receiver = Receiver::start("s").await;

    let code = |e: aws_sdk_sns::error::SdkError<_, _>| {
        use aws_sdk_sns::error::ProvideErrorMetadata;
        e.as_service_error()
            .and_then(|s: &aws_sdk_sns::operation::set_subscription_attributes::SetSubscriptionAttributesError| s.code().map(str::to_owned))
    };

    // An operator the sandbox does not evaluate: refused, nothing subscribed.
    let err = client
        .subscribe()
        .topic_arn(&topic)
        .protocol("http")
        .endpoint(receiver.sns_url())
        .attributes("FilterPolicy", r#"{"ParticipantRole":[{"prefix":"CUST"}]}"#)
        .send()
        .await
        .unwrap_err();
    {
        use aws_sdk_sns::error::ProvideErrorMetadata;
        let service = err.as_service_error().unwrap();
        assert_eq!(service.code(), Some("InvalidParameter"));
        assert!(
            service.message().unwrap().contains("FilterPolicy"),
            "{service:?}"
        );
    }
    assert!(sb.subscriptions().is_empty());

    let out = client
        .subscribe()
        .topic_arn(&topic)
        .protocol("http")
        .endpoint(receiver.sns_url())
        .attributes("FilterPolicy", POLICY)
        .attributes("FilterPolicyScope", "MessageAttributes")
        .return_subscription_arn(true)
        .send()
        .await
        .unwrap();
    let arn = out.subscription_arn().unwrap().to_owned();
    sb.wait_confirmed(&arn, WAIT).await.unwrap();
    let attributes = |arn: String| {
        let client = client.clone();
        async move {
            client
                .get_subscription_attributes()
                .subscription_arn(arn)
                .send()
                .await
                .unwrap()
                .attributes()
                .cloned()
                .unwrap_or_default()
        }
    };
    let got = attributes(arn.clone()).await;
    assert_eq!(got.get("FilterPolicy").map(String::as_str), Some(POLICY));
    assert_eq!(
        got.get("FilterPolicyScope").map(String::as_str),
        Some("MessageAttributes")
    );
    assert_eq!(
        got.get("PendingConfirmation").map(String::as_str),
        Some("false")
    );
    assert_eq!(got.get("Endpoint"), Some(&receiver.sns_url()));

    // Invalid or unsupported: refused, the old policy kept.
    for (name, value) in [
        ("FilterPolicy", r#"{"ParticipantRole":"AGENT"}"#),
        (
            "FilterPolicy",
            r#"{"ParticipantRole":[{"numeric":[">",1]}]}"#,
        ),
        ("FilterPolicyScope", "MessageBody"),
    ] {
        let err = client
            .set_subscription_attributes()
            .subscription_arn(&arn)
            .attribute_name(name)
            .attribute_value(value)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            code(err).as_deref(),
            Some("InvalidParameter"),
            "{name} {value}"
        );
    }
    assert_eq!(
        attributes(arn.clone())
            .await
            .get("FilterPolicy")
            .map(String::as_str),
        Some(POLICY)
    );

    // An empty value removes it.
    client
        .set_subscription_attributes()
        .subscription_arn(&arn)
        .attribute_name("FilterPolicy")
        .attribute_value("")
        .send()
        .await
        .unwrap();
    let got = attributes(arn.clone()).await;
    assert_eq!(got.get("FilterPolicy"), None);
    assert_eq!(sb.subscriptions()[0].filter_policy, None);
    client
        .set_subscription_attributes()
        .subscription_arn(&arn)
        .attribute_name("FilterPolicy")
        .attribute_value(POLICY)
        .send()
        .await
        .unwrap();
    assert_eq!(sb.subscriptions()[0].filter_policy.as_deref(), Some(POLICY));

    let err = client
        .get_subscription_attributes()
        .subscription_arn(format!("{topic}:00000000-0000-0000-0000-000000000000"))
        .send()
        .await
        .unwrap_err();
    {
        use aws_sdk_sns::error::ProvideErrorMetadata;
        assert_eq!(err.as_service_error().unwrap().code(), Some("NotFound"));
    }
}
