//! What the real-peer tests share: where the peers live, and waiting for messages and close
//! events with a deadline so that a silent peer fails the test instead of hanging it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use sockeye::{CloseEvent, Message, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::timeout;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether a missing peer fails the test (`SOCKEYE_REQUIRE_INTEROP=1`, as scripts/test.sh and CI
/// run) rather than skipping it with a message.
pub fn interop_required() -> bool {
    std::env::var("SOCKEYE_REQUIRE_INTEROP").as_deref() == Ok("1")
}

/// The venv's Python (`SOCKEYE_PYTHON`, or the one scripts/setup-python.sh makes).
pub fn python() -> Option<PathBuf> {
    let path = std::env::var_os("SOCKEYE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("interop/.venv/bin/python"));
    if path.exists() {
        return Some(path);
    }
    let what = format!(
        "no Python venv at {} (run scripts/setup-python.sh)",
        path.display()
    );
    if interop_required() {
        panic!("{what}");
    }
    eprintln!("skipping: {what}");
    None
}

pub fn python_script(name: &str) -> PathBuf {
    repo().join("interop/python").join(name)
}

pub async fn expect_message_within<S>(ws: &mut WebSocket<S>, limit: Duration) -> Message
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    timeout(limit, ws.recv())
        .await
        .expect("no message in time")
        .expect("stream ended")
        .expect("error instead of a message")
}

pub async fn expect_message<S>(ws: &mut WebSocket<S>) -> Message
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    expect_message_within(ws, Duration::from_secs(10)).await
}

/// Reads to the end of the stream and returns the close event.
pub async fn expect_close<S>(ws: &mut WebSocket<S>) -> CloseEvent
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut close = None;
    while let Some(msg) = timeout(Duration::from_secs(10), ws.recv())
        .await
        .expect("no close")
    {
        if let Ok(Message::Close(event)) = msg {
            close = Some(event);
        }
    }
    close.expect("no close event")
}
