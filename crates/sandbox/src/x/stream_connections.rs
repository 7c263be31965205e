//! The open activity stream connections (`GET /2/activity/stream`) and the silence switch: event
//! lines written to every connection, abrupt drops, the views the control API shows.

use std::collections::BTreeMap;

use axum::body::Bytes;
use tokio::sync::mpsc;

use crate::clock;
use crate::x::records::StreamConnection;

/// What a connection's body is made of: chunks, or the error that ends it abruptly.
pub(crate) type Chunk = Result<Bytes, std::io::Error>;
/// The writing end of a connection.
pub(crate) type Sender = mpsc::UnboundedSender<Chunk>;

#[derive(Debug)]
struct Conn {
    view: StreamConnection,
    tx: Sender,
}

/// Open stream connections and the silence switch.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    next_id: u64,
    conns: BTreeMap<u64, Conn>,
    silent: bool,
}

impl Streams {
    pub(crate) fn views(&self) -> Vec<StreamConnection> {
        self.conns.values().map(|c| c.view.clone()).collect()
    }

    pub(crate) fn silent(&self) -> bool {
        self.silent
    }

    pub(crate) fn set_silent(&mut self, silent: bool) {
        self.silent = silent;
    }

    /// Writes one event line to every open connection (none while silent); returns how many got it.
    pub(crate) fn broadcast(&mut self, body: &str) -> usize {
        if self.silent {
            return 0;
        }
        let line = Bytes::from(format!("{body}\r\n"));
        self.conns
            .retain(|_, c| c.tx.send(Ok(line.clone())).is_ok());
        for conn in self.conns.values_mut() {
            conn.view.events_sent += 1;
        }
        self.conns.len()
    }

    /// Ends every connection abruptly (the client sees a transport error); returns how many.
    pub(crate) fn drop_all(&mut self) -> usize {
        let n = self.conns.len();
        for (_, conn) in std::mem::take(&mut self.conns) {
            let _ = conn.tx.send(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "stream dropped by the sandbox",
            )));
        }
        n
    }

    /// Opens connection `tx` (which got `events_sent` backfilled events); returns its id.
    pub(crate) fn open(&mut self, backfill_minutes: u32, events_sent: u64, tx: Sender) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.conns.insert(
            id,
            Conn {
                view: StreamConnection {
                    id,
                    backfill_minutes,
                    opened_at: clock::now_iso_ms(),
                    events_sent,
                },
                tx,
            },
        );
        id
    }

    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }

    pub(crate) fn is_open(&self, id: u64) -> bool {
        self.conns.contains_key(&id)
    }

    pub(crate) fn remove(&mut self, id: u64) {
        self.conns.remove(&id);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn silent_streams_get_nothing() {
        let mut streams = Streams::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        streams.conns.insert(
            1,
            Conn {
                view: StreamConnection {
                    id: 1,
                    backfill_minutes: 0,
                    opened_at: String::new(),
                    events_sent: 0,
                },
                tx,
            },
        );
        streams.set_silent(true);
        assert_eq!(streams.broadcast("{}"), 0);
        streams.set_silent(false);
        assert_eq!(streams.broadcast("{}"), 1);
        assert_eq!(
            rx.try_recv().unwrap().unwrap(),
            Bytes::from_static(b"{}\r\n")
        );
        assert_eq!(streams.drop_all(), 1);
        assert!(rx.try_recv().unwrap().is_err());
    }
}
