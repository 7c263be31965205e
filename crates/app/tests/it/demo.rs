//! `xdm-connect demo`, as a person would run it, with a scripted conversation.

use std::process::Command;

#[test]
fn the_demo_plays_a_whole_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("conversation.txt");
    std::fs::write(
        &script,
        "Hi! My order #1234 hasn't arrived.\n\
         /agent Sorry about that, **Jordan**. Tracking: [here](https://example.com/t/1234)\n\
         Thanks!\n\
         /leave\n\
         /flow Thanks for contacting Acme. Goodbye!\n\
         /end\n\
         One more question\n\
         @billing My invoice is wrong\n\
         /agent We fixed your invoice.\n\
         @chat Is this conversation private?\n\
         /agent Yes, **end to end**.\n\
         /status\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xdm-connect"))
        .args(["demo", "--script"])
        .arg(&script)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed\n{stdout}\n{stderr}");
    for expected in [
        "X webhook CRC passed; SNS subscription confirmed.",
        "new chat",
        "for Jordan Brinks (@furiouscamper",
        "agent sees  Jordan Brinks: Hi! My order #1234 hasn't arrived.",
        "Enrique joined the chat",
        "receives from Acme Support: Sorry about that, Jordan. Tracking: here (https://example.com/t/1234)",
        "agent sees  Jordan Brinks: Thanks!",
        "flow says   Thanks for contacting Acme. Goodbye!",
        "receives from Acme Support: Thanks for contacting Acme. Goodbye!",
        "chat ended",
        "agent sees  Jordan Brinks: One more question",
        "customer profile ",
        "continues chat ",
        "to Acme Billing — queued for an agent",
        "in the billing flow (queue: billing)",
        "agent sees  Jordan Brinks: My invoice is wrong",
        "receives from Acme Billing: We fixed your invoice.",
        "for Mia Chen (@mia_on_xchat",
        "on X Chat: end-to-end encrypted between her device and the bridge",
        "agent sees  Mia Chen: Is this conversation private?",
        "@mia_on_xchat receives on X Chat (signature checked, decrypted on her device): Yes, end to end.",
        "inbound events: 0 pending, 0 processing, 5 done, 0 failed",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    assert_eq!(stdout.matches("new chat").count(), 4, "{stdout}");
    // Every chat shows its customer's profile; only the second continues a chat.
    assert_eq!(stdout.matches("customer profile ").count(), 4, "{stdout}");
    assert_eq!(stdout.matches("continues chat ").count(), 1, "{stdout}");
}

/// `demo --web` started as a person would: the page and its API over HTTP, the customer's DM
/// and photo reaching the agent's chat, the agent's markdown reply and file reaching X, the
/// event stream showing it all, and bad requests answered with their status.
#[tokio::test]
async fn the_web_demo_serves_its_page_and_plays_both_sides_over_http() {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};

    let mut child = Command::new(env!("CARGO_BIN_EXE_xdm-connect"))
        .args(["demo", "--web"])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let _child = Kill(child);
    // The first line names the URL; the rest is read (and dropped) until the demo ends, so that
    // its later lines never meet a closed pipe.
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let _ = first_tx.send(first);
        for _ in lines {}
    });
    let first = first_rx.await.unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();
    let http = reqwest::Client::new();
    let page = http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    for pane in [
        "Customer on X",
        "Agent in Amazon Connect",
        "What crossed the wire",
    ] {
        assert!(page.contains(pane), "the page has the pane {pane}");
    }
    assert!(
        !page.contains("https://cdn") && !page.contains("<script src="),
        "the page loads nothing from elsewhere"
    );
    let png = http.get(format!("{url}sample.png")).send().await.unwrap();
    assert_eq!(png.status(), 200);
    let png = png.bytes().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));

    let post = |path: &str, body: serde_json::Value| {
        let req = http.post(format!("{url}api/{path}")).json(&body);
        async move { req.send().await.unwrap() }
    };
    let contacts = || async {
        http.get(format!("{url}api/contacts"))
            .send()
            .await
            .unwrap()
            .json::<Vec<serde_json::Value>>()
            .await
            .unwrap()
    };
    async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // The customer writes, then sends the sample photo.
    let r = post(
        "customer",
        serde_json::json!({"to": "support", "text": "Hi from the browser"}),
    )
    .await;
    assert_eq!(r.status(), 204);
    let photo = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &png);
    let r = post(
        "customer",
        serde_json::json!({"to": "support", "text": "", "photo": {"name": "parcel.png", "content_type": "image/png", "base64": photo}}),
    )
    .await;
    assert_eq!(r.status(), 204);
    let chat = wait_for("the DM and the photo in the agent's chat", || async {
        contacts().await.into_iter().find(|c| {
            let t = c["transcript"].to_string();
            t.contains("Hi from the browser") && t.contains("parcel.png")
        })
    })
    .await;
    assert_eq!(chat["attributes"]["x_username"], "furiouscamper");
    assert_eq!(chat["display_name"], "Jordan Brinks");
    let id = chat["contact_id"].as_str().unwrap().to_owned();

    // The agent answers in markdown and sends the image: both reach the customer on X.
    let r = post(
        "agent",
        serde_json::json!({"contact_id": id, "action": "send", "text": "Sorry, **Jordan**."}),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = post(
        "agent",
        serde_json::json!({"contact_id": id, "action": "file", "file": {"name": "label.png", "content_type": "image/png", "base64": photo}}),
    )
    .await;
    assert_eq!(r.status(), 204);

    // The event stream replays everything so far: the DMs the bridge sent to X among it.
    let mut events = http.get(format!("{url}api/events")).send().await.unwrap();
    assert_eq!(events.status(), 200);
    assert!(
        events.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(seen.contains("Sorry, Jordan.") && seen.contains("\"event\":\"media_uploaded\"")) {
        assert!(
            Instant::now() < deadline,
            "the stream never showed the reply and the file reaching X:\n{seen}"
        );
        match tokio::time::timeout(Duration::from_secs(20), events.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("the event stream ended: {other:?}\n{seen}"),
        }
    }
    assert!(seen.contains("event: customer_sent"), "{seen}");
    assert!(seen.contains("\"event\":\"dm_sent\""), "{seen}");

    // Bad requests get their status and a reason, never a crash.
    let r = post(
        "agent",
        serde_json::json!({"contact_id": "no-such-chat", "action": "send", "text": "x"}),
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = post(
        "agent",
        serde_json::json!({"contact_id": id, "action": "dance"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post("customer", serde_json::json!({"to": "nobody", "text": "x"})).await;
    assert_eq!(r.status(), 400);
    let r = post(
        "customer/read",
        serde_json::json!({"dm_event_id": "12; drop"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post("customer/typing", serde_json::json!({})).await;
    assert_eq!(
        r.status(),
        204,
        "the customer's typing went to the bridge's webhook"
    );
    let r = post(
        "customer",
        serde_json::json!({"to": "support", "text": "", "photo": {"name": "a.png", "content_type": "image/png", "base64": "%%%"}}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = http
        .post(format!("{url}api/customer"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());

    // The agent ends the chat: a second end is refused, not a crash.
    let r = post(
        "agent",
        serde_json::json!({"contact_id": id, "action": "end"}),
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = post(
        "agent",
        serde_json::json!({"contact_id": id, "action": "end"}),
    )
    .await;
    assert_eq!(r.status(), 409);
    // And the page is still served.
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
}

#[test]
fn the_web_demo_refuses_an_address_off_loopback() {
    let out = Command::new(env!("CARGO_BIN_EXE_xdm-connect"))
        .args(["demo", "--web", "--web-listen", "0.0.0.0:0"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}
