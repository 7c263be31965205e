//! Downloading DM media: the allow-list, TON signatures, redirects, size limits, spooling,
//! truncation and error classes.

use super::*;

// ---------------------------------------------------------------- allow-list

#[tokio::test]
async fn off_list_urls_are_refused_without_any_request() {
    let server = Server::routed(vec![(
        "/",
        route(|_| bytes_answer("image/jpeg", vec![1, 2, 3])),
    )])
    .await;
    let port = server.addr.port();
    // The default list (X's hosts only), and lists that name the host but not this way.
    let cases = [
        (
            "ton.twitter.com,pbs.twimg.com,video.twimg.com".to_owned(),
            format!("http://127.0.0.1:{port}/x.jpg"),
            format!("http://127.0.0.1:{port}"),
        ),
        // https-only entry: plain http refused.
        (
            format!("127.0.0.1:{port}"),
            format!("http://127.0.0.1:{port}/x.jpg"),
            format!("http://127.0.0.1:{port}"),
        ),
        // Another port of the same host.
        (
            format!("http://127.0.0.1:{}", port.wrapping_add(1)),
            format!("http://127.0.0.1:{port}/x.jpg"),
            format!("http://127.0.0.1:{port}"),
        ),
        (
            host_entry(&server),
            "https://evil.example/1.1/ton/data/dm/1/2/x.jpg".to_owned(),
            "evil.example".to_owned(),
        ),
        (
            host_entry(&server),
            "not a url".to_owned(),
            "an address that is not a valid URL".to_owned(),
        ),
    ];
    for (hosts, url, refused) in cases {
        let client = media_client(&server.url(), &hosts);
        let e = client
            .download_media(&uid(BUSINESS), &photo(&url), 20 * MB)
            .await
            .unwrap_err();
        assert_eq!(e, XError::MediaHostNotAllowed(refused), "{hosts} / {url}");
        assert!(!e.is_retryable());
    }
    assert!(server.requests().is_empty(), "no request may be made");
}

// ---------------------------------------------------------------- downloads

#[tokio::test]
async fn a_ton_photo_is_fetched_signed_and_a_twimg_video_unsigned() {
    let image = pattern_bytes(7, 48_213);
    let video = pattern_bytes(11, 150_001);
    let video_answer = video.clone();
    let server = Server::routed(vec![
        ("/1.1/ton/", ton_route(other_token(), image.clone())),
        (
            "/dm_video/",
            route(move |_| bytes_answer("video/mp4", video_answer.clone())),
        ),
    ])
    .await;
    let client = media_client(DEFAULT_API_URL, &host_entry(&server));

    // The photo, as the business account whose token is not the default one; a query on the
    // URL must be signed too.
    let url = format!("{}{TON_PATH}?format=jpg&name=large", server.url());
    let file = client
        .download_media(&uid(OTHER_BUSINESS), &photo(&url), 20 * MB)
        .await
        .unwrap();
    assert_eq!(file.file_name, "T7xt1pvd.jpg");
    assert_eq!(file.content_type, "image/jpeg");
    assert_eq!(file.length, image.len() as u64);
    assert_eq!(collect(file).await.unwrap(), image);
    let ton = server.only_request();
    assert_eq!(ton.method, Method::GET);
    assert_eq!(ton.target, format!("{TON_PATH}?format=jpg&name=large"));
    ton.assert_signed_by(&other_token());

    // The same photo signed with another account's token is refused by TON.
    let e = client
        .download_media(&uid(BUSINESS), &photo(&url), 20 * MB)
        .await
        .unwrap_err();
    assert!(matches!(e, XError::Forbidden(_)), "{e:?}");
    assert!(!e.is_retryable());

    // The video: no Authorization at all; the payload's type is kept.
    let url = format!("{}{VIDEO_PATH}", server.url());
    let file = client
        .download_media(
            &uid(BUSINESS),
            &inbound(MediaKind::Video, &url, Some("video/mp4")),
            20 * MB,
        )
        .await
        .unwrap();
    assert_eq!(
        file.file_name,
        "Jf8WOAmvNe69JAJ1Kxb18tBTagTN5BbvZjIFBJHQRKE.mp4"
    );
    assert_eq!(file.content_type, "video/mp4");
    assert_eq!(collect(file).await.unwrap(), video);
    let requests = server.requests();
    let twimg = requests.last().unwrap();
    assert_eq!(twimg.target, VIDEO_PATH);
    assert!(!twimg.headers.contains_key("authorization"));
}

#[tokio::test]
async fn redirects_are_followed_only_within_the_allowed_hosts() {
    let foreign = Server::routed(vec![(
        "/",
        route(|_| bytes_answer("image/jpeg", vec![9; 10])),
    )])
    .await;
    let cdn_video = pattern_bytes(3, 70_000);
    let cdn_answer = cdn_video.clone();
    let cdn = Server::routed(vec![(
        "/dm_video/",
        route(move |_| bytes_answer("video/mp4", cdn_answer.clone())),
    )])
    .await;
    let image = pattern_bytes(5, 1_000);
    let (cdn_url, foreign_url) = (cdn.url(), foreign.url());
    let server = Server::routed(vec![
        ("/1.1/ton/", ton_route(default_token(), image.clone())),
        // TON photo moved to another TON path (signed again there).
        ("/moved/ton", route(|_| redirect(301, TON_PATH))),
        // A chain: here → here → the CDN (another allowed host).
        ("/hop1", route(|_| redirect(302, "/hop2?x=1"))),
        (
            "/hop2",
            route(move |_| redirect(307, &format!("{cdn_url}{VIDEO_PATH}"))),
        ),
        (
            "/away",
            route(move |_| redirect(302, &format!("{foreign_url}/steal.jpg"))),
        ),
        ("/loop", route(|_| redirect(302, "/loop"))),
        ("/nowhere", route(|_| status_only(302))),
    ])
    .await;
    let client = media_client(
        DEFAULT_API_URL,
        &format!("{},{}", host_entry(&server), host_entry(&cdn)),
    );
    let get = |path: &str| {
        let client = client.clone();
        let url = format!("{}{path}", server.url());
        async move {
            client
                .download_media(&uid(BUSINESS), &photo(&url), 20 * MB)
                .await
        }
    };

    let file = get("/moved/ton").await.unwrap();
    assert_eq!(collect(file).await.unwrap(), image);
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert!(
        !seen[0].headers.contains_key("authorization"),
        "not a TON path"
    );
    seen[1].assert_signed_by(&default_token());

    let file = get("/hop1").await.unwrap();
    // Named after the URL of the payload; typed by the final answer.
    assert_eq!(file.file_name, "hop1.mp4");
    assert_eq!(file.content_type, "video/mp4");
    assert_eq!(collect(file).await.unwrap(), cdn_video);
    let cdn_seen = cdn.only_request();
    assert_eq!(cdn_seen.target, VIDEO_PATH);
    assert!(!cdn_seen.headers.contains_key("authorization"));

    let e = get("/away").await.unwrap_err();
    assert_eq!(
        e,
        XError::MediaHostNotAllowed(format!("http://{}", foreign.addr))
    );
    assert!(
        foreign.requests().is_empty(),
        "nothing fetched off the list"
    );

    let before = server.requests().len();
    let e = get("/loop").await.unwrap_err();
    assert!(
        matches!(&e, XError::Unavailable(m) if m.contains("more than 3")),
        "{e:?}"
    );
    assert_eq!(server.requests().len() - before, 1 + MAX_MEDIA_REDIRECTS);

    let e = get("/nowhere").await.unwrap_err();
    assert!(matches!(e, XError::Unavailable(_)), "{e:?}");
}

#[tokio::test]
async fn an_announced_size_over_the_limit_is_refused_before_the_body() {
    let server = Server::routed(vec![(
        "/big.mp4",
        // 50 MB announced; one piece sent, then nothing ever again: reading the body would hang.
        route(|_| announced_answer(50_000_000, vec![0; 1024], true)),
    )])
    .await;
    let client = media_client(DEFAULT_API_URL, &host_entry(&server));
    let media = inbound(
        MediaKind::Video,
        &format!("{}/big.mp4", server.url()),
        Some("video/mp4"),
    );
    let e = tokio::time::timeout(
        Duration::from_secs(10),
        client.download_media(&uid(BUSINESS), &media, 20 * MB),
    )
    .await
    .expect("refused without waiting for the body")
    .unwrap_err();
    assert_eq!(
        e,
        XError::TooLarge {
            size: Some(50_000_000),
            limit: 20 * MB
        }
    );
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_body_without_length_is_spooled_and_counted() {
    let clip = pattern_bytes(1, 300_123);
    let pieces: Vec<Vec<u8>> = clip.chunks(7_777).map(<[u8]>::to_vec).collect();
    let big: Vec<Vec<u8>> = (0..40).map(|i| pattern_bytes(i * 65_536, 65_536)).collect();
    let server = Server::routed(vec![
        (
            "/dm_gif/clip.mp4",
            route(move |_| chunked_answer("application/octet-stream", pieces.clone())),
        ),
        (
            "/dm_gif/big",
            route(move |_| chunked_answer("video/mp4", big.clone())),
        ),
    ])
    .await;
    let client = media_client(DEFAULT_API_URL, &host_entry(&server));

    let media = inbound(
        MediaKind::AnimatedGif,
        &format!("{}/dm_gif/clip.mp4", server.url()),
        Some("video/mp4"),
    );
    let spools_before = open_spool_files();
    let file = client
        .download_media(&uid(BUSINESS), &media, 20 * MB)
        .await
        .unwrap();
    assert!(server.requests()[0].headers.get("authorization").is_none());
    assert_eq!(file.length, clip.len() as u64, "exact length");
    assert_eq!(file.file_name, "clip.mp4");
    // The answer's type is generic: the payload's is used.
    assert_eq!(file.content_type, "video/mp4");
    if let Some(before) = spools_before {
        assert_eq!(
            open_spool_files(),
            Some(before + 1),
            "an unnamed temporary file"
        );
    }
    assert_eq!(collect(file).await.unwrap(), clip);
    // The stream is dropped: its file is closed, and being unnamed, gone.
    if let Some(before) = spools_before {
        let deadline = Instant::now() + Duration::from_secs(5);
        while open_spool_files() != Some(before) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(open_spool_files(), Some(before));
    }

    // 2.5 MB without Content-Length, limit 1 MB: stopped while counting.
    let media = inbound(
        MediaKind::AnimatedGif,
        &format!("{}/dm_gif/big", server.url()),
        None,
    );
    let e = client
        .download_media(&uid(BUSINESS), &media, MB)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        XError::TooLarge {
            size: None,
            limit: MB
        }
    );
}

#[tokio::test]
async fn a_truncated_transfer_is_an_error_in_the_stream() {
    let server = Server::routed(vec![(
        "/cut.mp4",
        route(|_| announced_answer(100_000, vec![1; 40_000], false)),
    )])
    .await;
    let client = media_client(DEFAULT_API_URL, &host_entry(&server));
    let media = inbound(MediaKind::Video, &format!("{}/cut.mp4", server.url()), None);
    let file = client
        .download_media(&uid(BUSINESS), &media, 20 * MB)
        .await
        .unwrap();
    assert_eq!(file.length, 100_000);
    assert!(collect(file).await.is_err(), "a short body must not pass");
}

#[tokio::test]
async fn download_errors_are_classified() {
    let server = Server::routed(vec![
        ("/403", route(|_| status_only(403))),
        ("/404", route(|_| status_only(404))),
        ("/410", route(|_| status_only(410))),
        ("/503", route(|_| status_only(503))),
        (
            "/429",
            route(|_| {
                let mut r = status_only(429);
                r.headers_mut()
                    .insert("x-rate-limit-reset", HeaderValue::from_static("1775080934"));
                r
            }),
        ),
    ])
    .await;
    let client = media_client(DEFAULT_API_URL, &host_entry(&server));
    let get = |path: &str| {
        let client = client.clone();
        let url = format!("{}{path}", server.url());
        async move {
            client
                .download_media(&uid(BUSINESS), &photo(&url), 20 * MB)
                .await
                .unwrap_err()
        }
    };
    assert!(matches!(get("/403").await, XError::Forbidden(_)));
    assert!(matches!(get("/404").await, XError::NotFound(_)));
    assert!(matches!(get("/410").await, XError::NotFound(_)));
    let e = get("/503").await;
    assert!(
        matches!(e, XError::Unavailable(_)) && e.is_retryable(),
        "{e:?}"
    );
    assert_eq!(
        get("/429").await,
        XError::RateLimited {
            reset_at_s: Some(1_775_080_934)
        }
    );

    // No answer within the read timeout.
    let mut slow = answer(200, "late");
    slow.delay = Duration::from_secs(5);
    let slow = Server::start(slow).await;
    let client = media_client_with(DEFAULT_API_URL, &host_entry(&slow), |c| {
        c.with_media_timeouts(Duration::from_millis(300), Duration::from_secs(60))
    });
    let e = client
        .download_media(
            &uid(BUSINESS),
            &photo(&format!("{}/x.jpg", slow.url())),
            20 * MB,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, XError::Unavailable(m) if m.contains("in time")),
        "{e:?}"
    );
}
