//! The body of a media download as a stream of exactly known length: the answer's own when it
//! announced a `Content-Length`, else spooled to an anonymous temporary file while counting
//! (stopped as soon as it passes the limit) and streamed back from the file, which the OS deletes
//! when the stream is dropped. Either way the stream yields an `io::Error` if the body turns out
//! shorter or longer than the length returned.

use std::io;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use xdm_core::media::ByteStream;
use xdm_core::ports::XError;

use crate::error::transport_error;

/// Read size when streaming a spooled file back.
const SPOOL_READ_BYTES: usize = 64 * 1024;

/// A failed read of the body, for the stream's reader (a timeout stays one).
fn io_error(e: reqwest::Error) -> io::Error {
    let kind = if e.is_timeout() {
        io::ErrorKind::TimedOut
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, e.without_url())
}

/// The body of an answer that announced `length` bytes.
pub(super) fn announced(response: reqwest::Response, length: u64) -> ByteStream {
    exact_length(response.bytes_stream().map_err(io_error), length)
}

/// Passes `inner` through, ending with an error if it yields fewer or more than `expected`
/// bytes (a truncated transfer must never pass for a whole file).
pub(crate) fn exact_length<S>(inner: S, expected: u64) -> ByteStream
where
    S: Stream<Item = io::Result<Bytes>> + Send + 'static,
{
    let inner = Box::pin(inner);
    Box::pin(futures_util::stream::unfold(
        Some((inner, 0_u64)),
        move |state| async move {
            let (mut inner, seen) = state?;
            match inner.next().await {
                Some(Ok(chunk)) => {
                    let seen = seen + chunk.len() as u64;
                    if seen > expected {
                        let e = io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("the media file is longer than the {expected} bytes announced"),
                        );
                        return Some((Err(e), None));
                    }
                    Some((Ok(chunk), Some((inner, seen))))
                }
                Some(Err(e)) => Some((Err(e), None)),
                None if seen < expected => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the media transfer was cut after {seen} of {expected} bytes"),
                    );
                    Some((Err(e), None))
                }
                None => None,
            }
        },
    ))
}

/// Copies a body of unknown length to an anonymous temporary file (deleted by the OS when
/// closed), counting; returns its length and a stream reading it back.
pub(super) async fn spool(
    response: reqwest::Response,
    max_bytes: u64,
) -> Result<(u64, ByteStream), XError> {
    let spool_error = |e: io::Error| {
        XError::Unavailable(format!("cannot spool the media to a temporary file: {e}"))
    };
    let file = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|e| spool_error(io::Error::other(e)))?
        .map_err(spool_error)?;
    let mut file = tokio::fs::File::from_std(file);
    let mut body = response.bytes_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(transport_error)?;
        total += chunk.len() as u64;
        if total > max_bytes {
            tracing::info!(
                limit = max_bytes,
                "media without a Content-Length passed the size limit; download stopped"
            );
            return Err(XError::TooLarge {
                size: None,
                limit: max_bytes,
            });
        }
        file.write_all(&chunk).await.map_err(spool_error)?;
    }
    file.flush().await.map_err(spool_error)?;
    file.rewind().await.map_err(spool_error)?;
    Ok((total, exact_length(file_stream(file), total)))
}

pub(crate) fn file_stream(file: tokio::fs::File) -> impl Stream<Item = io::Result<Bytes>> + Send {
    futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = BytesMut::with_capacity(SPOOL_READ_BYTES);
        let n = file.read_buf(&mut buf).await?;
        Ok((n > 0).then(|| (buf.freeze(), file)))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    async fn collect(stream: ByteStream) -> Result<Vec<u8>, io::Error> {
        stream
            .try_fold(Vec::new(), |mut all, chunk| async move {
                all.extend_from_slice(&chunk);
                Ok(all)
            })
            .await
    }

    fn pieces(parts: &[&'static [u8]]) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn exact_length_catches_short_and_long_bodies() {
        assert_eq!(
            collect(exact_length(pieces(&[b"abc", b"de"]), 5))
                .await
                .unwrap(),
            b"abcde"
        );
        let short = collect(exact_length(pieces(&[b"abc"]), 5))
            .await
            .unwrap_err();
        assert_eq!(short.kind(), io::ErrorKind::UnexpectedEof);
        let long = collect(exact_length(pieces(&[b"abc", b"def"]), 5))
            .await
            .unwrap_err();
        assert_eq!(long.kind(), io::ErrorKind::InvalidData);
    }
}
