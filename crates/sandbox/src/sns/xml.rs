//! SNS's XML answers (namespace `http://sns.amazonaws.com/doc/2010-03-31/`): successes with
//! `ResponseMetadata/RequestId`, `ErrorResponse` errors, and text escaping.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ids;

pub(crate) const XMLNS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// `body` as `text/xml` with `status`.
pub(crate) fn xml(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

/// An `ErrorResponse` of type `Sender` (`message` is inserted as it is: escape it first).
pub(crate) fn xml_error(status: StatusCode, code: &str, message: &str) -> Response {
    xml(
        status,
        format!(
            "<ErrorResponse xmlns=\"{XMLNS}\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
            ids::uuid()
        ),
    )
}

/// `<{action}Response>` with `<{action}Result>` holding `result` (already indented XML).
pub(crate) fn xml_ok(action: &str, result: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"{XMLNS}\">\n  <{action}Result>\n{result}  </{action}Result>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        ids::uuid()
    );
    xml(StatusCode::OK, body)
}

pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_xml() {
        assert_eq!(
            xml_escape(r#"{"a":"<b>&'c'"}"#),
            "{&quot;a&quot;:&quot;&lt;b&gt;&amp;&apos;c&apos;&quot;}"
        );
    }
}
