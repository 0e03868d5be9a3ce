//! `/metrics` in the Prometheus text format (version 0.0.4), kept in a prometheus-client
//! [`Registry`] and encoded by it: each family once, with its `# HELP` and `# TYPE`, its samples
//! together.
//!
//! Nothing shared is touched per message: each connection's socket counts its own messages in
//! plain integers ([`sockeye::MessageStats`]), and they are added here once, when the
//! connection ends, with its close code and permessage-deflate bytes. Handshakes and refusals
//! move once per connection; what the process holds right now (open connections aside) is read
//! when `/metrics` is asked for.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};
use sockeye::proto::DeflateStats;
use sockeye::{MessageCounts, MessageStats};

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// One label, `[(name, value)]`.
type Label<V> = [(&'static str, V); 1];
type Counters<V> = Family<Label<V>, Counter>;
/// The samples of `sockeye_deflate_bytes_total`: direction and stage.
type DeflateLabels = [(&'static str, &'static str); 2];

pub struct Metrics {
    registry: Registry,
    open: Gauge,
    tasks_alive: Gauge,
    chat_slow_closes: Counter,
    cluster_connected: Gauge,
    cluster_unsent: Gauge,
    cluster_dropped: Gauge,
    accepted: Counters<&'static str>,
    refused: Counters<&'static str>,
    closes: Counters<u16>,
    /// `sockeye_{messages,bytes}_{received,sent}_total`, by `type`.
    messages_received: Counters<&'static str>,
    bytes_received: Counters<&'static str>,
    messages_sent: Counters<&'static str>,
    bytes_sent: Counters<&'static str>,
    deflate_bytes: Family<DeflateLabels, Counter>,
    deflate_ratio: Family<Label<&'static str>, Gauge<f64, std::sync::atomic::AtomicU64>>,
    deflate_state_bytes: Family<Label<&'static str>, Gauge>,
    deflate_holding: Gauge,
}

impl Default for Metrics {
    /// Every family registered, in the order `/metrics` shows them, and the samples that are
    /// shown from the start, at 0.
    fn default() -> Self {
        let mut registry = Registry::default();
        let r = &mut registry;
        let m = Metrics {
            open: registered(
                r,
                "sockeye_connections_open",
                "WebSocket connections open now",
            ),
            // Tasks of the runtime (connections, handshakes, timers): back to the baseline when
            // the connections are gone, or something leaks.
            tasks_alive: registered(
                r,
                "sockeye_tasks_alive",
                "Tasks alive in the server's tokio runtime",
            ),
            chat_slow_closes: registered(
                r,
                "sockeye_chat_slow_closes",
                "/chat members closed with 1013 for falling too far behind the room",
            ),
            cluster_connected: registered(
                r,
                "sockeye_cluster_connected",
                "1 while the node's link to the other nodes is up (always 1 for a node alone)",
            ),
            cluster_unsent: registered(
                r,
                "sockeye_chat_unsent",
                "Chat messages whose append to the room's log failed with the link up (not delivered anywhere by this node)",
            ),
            cluster_dropped: registered(
                r,
                "sockeye_cluster_dropped",
                "Messages from the other nodes this node lost for not keeping up: NATS slow-consumer events and full queues (delivery is at most once)",
            ),
            accepted: registered(
                r,
                "sockeye_handshakes_accepted",
                "WebSocket handshakes accepted, by the HTTP version that carried them",
            ),
            refused: registered(
                r,
                "sockeye_handshakes_refused",
                "WebSocket handshakes refused, by reason (origin, limit, shutdown)",
            ),
            messages_received: registered(
                r,
                "sockeye_messages_received",
                "Data messages received, by type, counted when their connection ends",
            ),
            bytes_received: registered(
                r,
                "sockeye_bytes_received",
                "Payload bytes of the data messages received (before compression), by type, \
                 counted when their connection ends",
            ),
            messages_sent: registered(
                r,
                "sockeye_messages_sent",
                "Data messages sent, by type, counted when their connection ends",
            ),
            bytes_sent: registered(
                r,
                "sockeye_bytes_sent",
                "Payload bytes of the data messages sent (before compression), by type, \
                 counted when their connection ends",
            ),
            deflate_bytes: registered(
                r,
                "sockeye_deflate_bytes",
                "Bytes of permessage-deflate messages before (raw) and after (compressed) \
                 compression, by direction, counted when their connection ends",
            ),
            deflate_ratio: registered(
                r,
                "sockeye_deflate_ratio",
                "Compressed bytes over raw bytes of permessage-deflate messages so far, by \
                 direction",
            ),
            deflate_state_bytes: registered(
                r,
                "sockeye_deflate_state_bytes",
                "permessage-deflate state held between messages: by connections (zlib state \
                 and retained windows) and by the shared cache of compressors",
            ),
            deflate_holding: registered(
                r,
                "sockeye_deflate_connections_holding_state",
                "Connections holding any permessage-deflate state between messages",
            ),
            closes: registered(
                r,
                "sockeye_closes",
                "Connections ended, by close code (1006 when without a closing handshake)",
            ),
            registry,
        };
        for version in ["1.1", "2"] {
            let _ = m.accepted.get_or_create(&[("http_version", version)]);
        }
        for kind in ["text", "binary"] {
            for family in [
                &m.messages_received,
                &m.bytes_received,
                &m.messages_sent,
                &m.bytes_sent,
            ] {
                let _ = family.get_or_create(&[("type", kind)]);
            }
        }
        for direction in ["sent", "received"] {
            for stage in ["raw", "compressed"] {
                let _ = m
                    .deflate_bytes
                    .get_or_create(&[("direction", direction), ("stage", stage)]);
            }
        }
        m
    }
}

/// A new metric, registered in `registry` as `name` (a counter without its `_total`, which the
/// encoder adds) with `help`.
fn registered<M: Metric + Clone + Default>(registry: &mut Registry, name: &str, help: &str) -> M {
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

impl Metrics {
    /// WebSocket connections open now.
    pub fn open(&self) -> i64 {
        self.open.get()
    }

    /// A connection opened: it counts as open until [`Metrics::connection_gone`].
    pub fn connection_opened(&self) {
        self.open.inc();
    }

    pub fn connection_gone(&self) {
        self.open.dec();
    }

    /// How the cluster link stands, read when `/metrics` is asked for.
    pub fn cluster(&self, connected: bool, unsent: u64, dropped: u64) {
        self.cluster_connected.set(i64::from(connected));
        self.cluster_unsent
            .set(i64::try_from(unsent).unwrap_or(i64::MAX));
        self.cluster_dropped
            .set(i64::try_from(dropped).unwrap_or(i64::MAX));
    }

    /// A `/chat` member closed with 1013 for falling behind.
    pub fn chat_slow_close(&self) {
        self.chat_slow_closes.inc();
    }

    /// A WebSocket handshake accepted over `version`.
    pub fn accepted(&self, version: sockeye::http::Version) {
        let version = if version == sockeye::http::Version::HTTP_2 {
            "2"
        } else {
            "1.1"
        };
        self.accepted
            .get_or_create(&[("http_version", version)])
            .inc();
    }

    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&[("reason", reason)]).inc();
    }

    /// A connection ended with `code`: its messages and permessage-deflate bytes are added to
    /// the totals now, before its close code, so that a scrape that shows the close shows them.
    pub fn ended(&self, code: u16, deflate: DeflateStats, messages: MessageStats) {
        let add = |family: &Counters<&'static str>, kind, n: u64| {
            if n > 0 {
                family.get_or_create(&[("type", kind)]).inc_by(n);
            }
        };
        let per_kind = |counts: &MessageCounts, messages, bytes| {
            add(messages, "text", counts.text);
            add(bytes, "text", counts.text_bytes);
            add(messages, "binary", counts.binary);
            add(bytes, "binary", counts.binary_bytes);
        };
        per_kind(
            &messages.received,
            &self.messages_received,
            &self.bytes_received,
        );
        per_kind(&messages.sent, &self.messages_sent, &self.bytes_sent);
        for (direction, raw, compressed) in [
            ("sent", deflate.sent_raw, deflate.sent_compressed),
            (
                "received",
                deflate.received_raw,
                deflate.received_compressed,
            ),
        ] {
            for (stage, n) in [("raw", raw), ("compressed", compressed)] {
                if n > 0 {
                    self.deflate_bytes
                        .get_or_create(&[("direction", direction), ("stage", stage)])
                        .inc_by(n);
                }
            }
        }
        self.closes.get_or_create(&[("code", code)]).inc();
    }

    /// The registry in the Prometheus text format, with the values read at this moment (tasks,
    /// permessage-deflate state and ratios) brought up to date first.
    pub fn render(&self) -> String {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.tasks_alive
                .set(runtime.metrics().num_alive_tasks() as i64);
        }
        for direction in ["sent", "received"] {
            let bytes = |stage| {
                self.deflate_bytes
                    .get_or_create(&[("direction", direction), ("stage", stage)])
                    .get()
            };
            let (raw, compressed) = (bytes("raw"), bytes("compressed"));
            if raw > 0 {
                self.deflate_ratio
                    .get_or_create(&[("direction", direction)])
                    .set(compressed as f64 / raw as f64);
            }
        }
        let memory = sockeye::proto::deflate::memory();
        for (holder, bytes) in [
            ("connections", memory.connection_bytes),
            ("shared", memory.shared_bytes),
        ] {
            self.deflate_state_bytes
                .get_or_create(&[("holder", holder)])
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        self.deflate_holding
            .set(i64::try_from(memory.connections).unwrap_or(i64::MAX));
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_in_prometheus_text_format() {
        let m = Metrics::default();
        let mut stats = MessageStats::default();
        stats.received.text = 1;
        stats.received.text_bytes = 5;
        stats.sent.binary = 1;
        stats.sent.binary_bytes = 3;
        m.refused("origin");
        m.ended(1000, DeflateStats::default(), stats);
        let text = m.render();
        assert!(text.contains("sockeye_messages_received_total{type=\"text\"} 1\n"));
        assert!(text.contains("sockeye_bytes_received_total{type=\"text\"} 5\n"));
        assert!(text.contains("sockeye_bytes_sent_total{type=\"binary\"} 3\n"));
        assert!(text.contains("sockeye_handshakes_refused_total{reason=\"origin\"} 1\n"));
        assert!(text.contains("sockeye_closes_total{code=\"1000\"} 1\n"));
        assert!(text.contains("# HELP sockeye_closes_total "));
        assert!(text.contains("# TYPE sockeye_closes_total counter\n"));
        assert!(text.contains("# TYPE sockeye_connections_open gauge\n"));
    }
}
