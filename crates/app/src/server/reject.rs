//! [`reject`]: the plain-text error answer every handler gives, counted in
//! `xdm_http_rejections_total`.

/// A one-line plain-text error answer.
pub(crate) fn reject(
    status: http::StatusCode,
    reason: impl Into<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let reason = reason.into();
    metrics::counter!("xdm_http_rejections_total", "status" => status.as_u16().to_string())
        .increment(1);
    (
        status,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{reason}\n"),
    )
        .into_response()
}
