//! `/metrics` in the Prometheus text format. Counters are relaxed atomics bumped by each
//! connection's task: no lock is taken per message.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use sockeye::Message;

#[derive(Default)]
pub struct Metrics {
    pub open: AtomicI64,
    /// `/chat` members closed with 1013 for falling too far behind.
    pub chat_slow_closes: AtomicU64,
    /// Accepted WebSocket handshakes: [HTTP/1.1, HTTP/2].
    accepted: [AtomicU64; 2],
    refused: Mutex<BTreeMap<&'static str, u64>>,
    closes: Mutex<BTreeMap<u16, u64>>,
    /// permessage-deflate, from connections that ended: [sent, received] × [raw, compressed]
    deflate: [[AtomicU64; 2]; 2],
    /// [text, binary] × [messages, bytes]
    received: [[AtomicU64; 2]; 2],
    sent: [[AtomicU64; 2]; 2],
}

fn kind(msg: &Message) -> Option<(usize, u64)> {
    match msg {
        Message::Text(t) => Some((0, t.len() as u64)),
        Message::Binary(b) => Some((1, b.len() as u64)),
        Message::Close(_) => None,
    }
}

impl Metrics {
    /// A WebSocket handshake accepted over `version`.
    pub fn accepted(&self, version: sockeye::http::Version) {
        let i = usize::from(version == sockeye::http::Version::HTTP_2);
        self.accepted[i].fetch_add(1, Relaxed);
    }

    pub fn refused(&self, reason: &'static str) {
        *self.refused.lock().unwrap().entry(reason).or_default() += 1;
    }

    /// Counted once per connection, when it ends.
    pub fn closed(&self, code: u16) {
        *self.closes.lock().unwrap().entry(code).or_default() += 1;
    }

    /// Counted once per connection, when it ends.
    pub fn deflate(&self, stats: sockeye::proto::DeflateStats) {
        self.deflate[0][0].fetch_add(stats.sent_raw, Relaxed);
        self.deflate[0][1].fetch_add(stats.sent_compressed, Relaxed);
        self.deflate[1][0].fetch_add(stats.received_raw, Relaxed);
        self.deflate[1][1].fetch_add(stats.received_compressed, Relaxed);
    }

    pub fn received(&self, msg: &Message) {
        if let Some((k, len)) = kind(msg) {
            self.received[0][k].fetch_add(1, Relaxed);
            self.received[1][k].fetch_add(len, Relaxed);
        }
    }

    /// A text message of `len` bytes went out (broadcasts send prepared frames, not messages).
    pub fn sent_text(&self, len: usize) {
        self.sent[0][0].fetch_add(1, Relaxed);
        self.sent[1][0].fetch_add(len as u64, Relaxed);
    }

    pub fn sent(&self, msg: &Message) {
        if let Some((k, len)) = kind(msg) {
            self.sent[0][k].fetch_add(1, Relaxed);
            self.sent[1][k].fetch_add(len, Relaxed);
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE sockeye_connections_open gauge");
        let _ = writeln!(out, "sockeye_connections_open {}", self.open.load(Relaxed));
        // Tasks of the runtime (connections, handshakes, timers): back to the baseline when
        // the connections are gone, or something leaks.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let _ = writeln!(out, "# TYPE sockeye_tasks_alive gauge");
            let _ = writeln!(
                out,
                "sockeye_tasks_alive {}",
                runtime.metrics().num_alive_tasks()
            );
        }
        let _ = writeln!(out, "# TYPE sockeye_chat_slow_closes_total counter");
        let _ = writeln!(
            out,
            "sockeye_chat_slow_closes_total {}",
            self.chat_slow_closes.load(Relaxed)
        );
        let _ = writeln!(out, "# TYPE sockeye_handshakes_accepted_total counter");
        for (version, count) in ["1.1", "2"].iter().zip(&self.accepted) {
            let _ = writeln!(
                out,
                "sockeye_handshakes_accepted_total{{http_version=\"{version}\"}} {}",
                count.load(Relaxed)
            );
        }
        let _ = writeln!(out, "# TYPE sockeye_handshakes_refused_total counter");
        for (reason, n) in self.refused.lock().unwrap().iter() {
            let _ = writeln!(
                out,
                "sockeye_handshakes_refused_total{{reason=\"{reason}\"}} {n}"
            );
        }
        for (name, counters) in [("received", &self.received), ("sent", &self.sent)] {
            let _ = writeln!(out, "# TYPE sockeye_messages_{name}_total counter");
            for (k, kind) in ["text", "binary"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "sockeye_messages_{name}_total{{type=\"{kind}\"}} {}",
                    counters[0][k].load(Relaxed)
                );
            }
            let _ = writeln!(out, "# TYPE sockeye_bytes_{name}_total counter");
            for (k, kind) in ["text", "binary"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "sockeye_bytes_{name}_total{{type=\"{kind}\"}} {}",
                    counters[1][k].load(Relaxed)
                );
            }
        }
        let _ = writeln!(out, "# TYPE sockeye_deflate_bytes_total counter");
        let _ = writeln!(out, "# TYPE sockeye_deflate_ratio gauge");
        for (d, direction) in ["sent", "received"].iter().enumerate() {
            let raw = self.deflate[d][0].load(Relaxed);
            let compressed = self.deflate[d][1].load(Relaxed);
            let _ = writeln!(
                out,
                "sockeye_deflate_bytes_total{{direction=\"{direction}\",stage=\"raw\"}} {raw}"
            );
            let _ = writeln!(
                out,
                "sockeye_deflate_bytes_total{{direction=\"{direction}\",stage=\"compressed\"}} {compressed}"
            );
            if raw > 0 {
                let ratio = compressed as f64 / raw as f64;
                let _ = writeln!(
                    out,
                    "sockeye_deflate_ratio{{direction=\"{direction}\"}} {ratio:.4}"
                );
            }
        }
        let memory = sockeye::proto::deflate::memory();
        let _ = writeln!(
            out,
            "# HELP sockeye_deflate_state_bytes permessage-deflate state held between messages: \
             by connections (zlib state and retained windows) and by the shared cache of \
             compressors"
        );
        let _ = writeln!(out, "# TYPE sockeye_deflate_state_bytes gauge");
        let _ = writeln!(
            out,
            "sockeye_deflate_state_bytes{{holder=\"connections\"}} {}",
            memory.connection_bytes
        );
        let _ = writeln!(
            out,
            "sockeye_deflate_state_bytes{{holder=\"shared\"}} {}",
            memory.shared_bytes
        );
        let _ = writeln!(
            out,
            "# HELP sockeye_deflate_connections_holding_state Connections holding any \
             permessage-deflate state between messages"
        );
        let _ = writeln!(
            out,
            "# TYPE sockeye_deflate_connections_holding_state gauge"
        );
        let _ = writeln!(
            out,
            "sockeye_deflate_connections_holding_state {}",
            memory.connections
        );
        let _ = writeln!(out, "# TYPE sockeye_closes_total counter");
        for (code, n) in self.closes.lock().unwrap().iter() {
            let _ = writeln!(out, "sockeye_closes_total{{code=\"{code}\"}} {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_in_prometheus_text_format() {
        let m = Metrics::default();
        m.received(&Message::text("hello"));
        m.sent(&Message::binary(vec![0u8; 3]));
        m.refused("origin");
        m.closed(1000);
        let text = m.render();
        assert!(text.contains("sockeye_messages_received_total{type=\"text\"} 1\n"));
        assert!(text.contains("sockeye_bytes_received_total{type=\"text\"} 5\n"));
        assert!(text.contains("sockeye_bytes_sent_total{type=\"binary\"} 3\n"));
        assert!(text.contains("sockeye_handshakes_refused_total{reason=\"origin\"} 1\n"));
        assert!(text.contains("sockeye_closes_total{code=\"1000\"} 1\n"));
    }
}
