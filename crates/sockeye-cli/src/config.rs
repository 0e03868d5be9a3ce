//! The settings of `sockeye serve`, in one struct that is both its flags (clap) and its TOML
//! file (serde). Each default is written once, here or in the library it comes from. A flag
//! given on the command line wins over the file; unknown keys and bad values are errors at
//! start, naming the key.
//!
//! Flags and file meet as TOML values: the flags given are serialized (those not given are
//! left out), laid over the file's table, and the result is read once into [`Settings`].

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

/// Keepalive pings, when neither flag nor file says: every 30 s.
pub const DEFAULT_PING_INTERVAL: u64 = 30;
/// Connections served at once, when neither flag nor file says.
pub const DEFAULT_MAX_CONNECTIONS: i64 = 10_000;
/// Seconds given to clients to answer 1001 at shutdown, when neither flag nor file says.
pub const DEFAULT_SHUTDOWN_TIMEOUT: u64 = 5;

/// Where `sockeye serve` listens when no listener is named: plain, or TLS when certificates
/// are given.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
pub const DEFAULT_LISTEN_TLS: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8443));

/// The listeners and certificates of `sockeye serve` (see `config::Settings` for each).
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    pub listen_tls: Vec<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub sni: Vec<SniCert>,
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct SniCert {
    pub host: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn parse_sni(value: &str) -> Result<SniCert, String> {
    let err = || format!("{value:?} is not HOST=CERT.pem,KEY.pem");
    let (host, files) = value.split_once('=').ok_or_else(err)?;
    let (cert, key) = files.split_once(',').ok_or_else(err)?;
    if host.is_empty() || cert.is_empty() || key.is_empty() {
        return Err(err());
    }
    Ok(SniCert {
        host: host.to_owned(),
        cert: cert.into(),
        key: key.into(),
    })
}

/// What a default is, for `--help`.
fn default_is(text: &str, default: impl std::fmt::Display) -> String {
    format!("{text} [default: {default}]")
}

fn library_default() -> sockeye::Config {
    sockeye::Config::default()
}

#[derive(Args, Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address of a plain (ws://, http://) listener, repeatable; with certificates and no
    /// --listen-tls these speak TLS instead (defaults in `tls`).
    #[arg(long, value_name = "ADDR", help = format!("Address of a plain (ws://, http://) listener, repeatable [default: {}]; with --tls-cert and no --listen-tls these speak TLS instead [default: {}]", DEFAULT_LISTEN, DEFAULT_LISTEN_TLS))]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<SocketAddr>,
    /// Address of a TLS (wss://, https://) listener (repeatable); needs certificates.
    #[arg(long = "listen-tls", value_name = "ADDR")]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen_tls: Vec<SocketAddr>,
    /// PEM certificate chain (end-entity first) for clients without SNI or with a name that no
    /// --tls-sni matches.
    #[arg(long = "tls-cert", value_name = "CERT.pem")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, RSA or EC).
    #[arg(long = "tls-key", value_name = "KEY.pem")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// A certificate for one SNI host name (`*.example.com` for a wildcard), repeatable; a
    /// flag only.
    #[arg(long = "tls-sni", value_name = "HOST=CERT.pem,KEY.pem", value_parser = parse_sni)]
    #[serde(skip)]
    pub tls_sni: Vec<SniCert>,
    /// Require client certificates issued by a CA in this PEM file (mutual TLS).
    #[arg(long = "tls-client-ca", value_name = "CA.pem")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_ca: Option<PathBuf>,
    /// Accept only WebSocket requests whose Origin is one of these (repeatable); any Origin is
    /// accepted when none is given. Requests without Origin come from non-browser clients and
    /// are accepted.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_origin: Vec<String>,
    /// A reverse proxy (IP address or CIDR block, repeatable) whose `Forwarded` or
    /// `X-Forwarded-For` header names the client; connections from anywhere else are logged
    /// with their TCP peer address, whatever their headers say. None by default.
    #[arg(long = "trust-proxy", value_name = "IP_OR_CIDR", value_parser = check_cidr)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trust_proxy: Vec<String>,
    /// Seconds between keepalive pings, 0 disables.
    #[arg(long, value_name = "SECS", help = default_is("Seconds between keepalive pings, 0 disables", DEFAULT_PING_INTERVAL))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_interval: Option<u64>,
    /// Largest message accepted, in bytes.
    #[arg(long, value_name = "BYTES", help = default_is("Largest message accepted, in bytes", library_default().protocol.max_message_size))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_message_size: Option<usize>,
    /// Refuse WebSocket handshakes with 503 while this many connections are open.
    #[arg(long, value_name = "N", help = default_is("Refuse WebSocket handshakes with 503 while this many connections are open", DEFAULT_MAX_CONNECTIONS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i64>,
    /// On SIGINT/SIGTERM, seconds to wait for clients to answer 1001 "Going Away".
    #[arg(long, value_name = "SECS", help = default_is("On SIGINT/SIGTERM, seconds to wait for clients to answer 1001 \"Going Away\"", DEFAULT_SHUTDOWN_TIMEOUT))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_timeout: Option<u64>,
    /// Seconds a client has to complete the opening handshake (TLS and HTTP).
    #[arg(long, value_name = "SECS", help = default_is("Seconds a client has to complete the opening handshake (TLS and HTTP)", library_default().handshake_timeout.as_secs()))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_timeout: Option<u64>,
    /// Threads that run connections: 1 runs everything on one thread (tokio's current-thread
    /// scheduler, the least CPU per message), more share connections between that many
    /// threads. Default: one per CPU.
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// Seconds a peer has to finish the closing handshake.
    #[arg(long, value_name = "SECS", help = default_is("Seconds a peer has to finish the closing handshake", library_default().close_timeout.as_secs()))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_timeout: Option<u64>,
    /// Seconds a keepalive ping waits for its pong before the peer is dropped.
    #[arg(long, value_name = "SECS", help = default_is("Seconds a keepalive ping waits for its pong before the peer is dropped", library_default().ping_timeout.as_secs()))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_timeout: Option<u64>,
    /// Seconds a connection may have data waiting for a peer that reads none of it before it
    /// is dropped, also while the server waits to send to it; 0 waits for ever.
    #[arg(long, value_name = "SECS", help = default_is("Seconds a connection may have data waiting for a peer that reads none of it before it is dropped, also while the server waits to send to it; 0 waits for ever", library_default().write_timeout.map_or(0, |t| t.as_secs())))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_timeout: Option<u64>,
    #[command(flatten)]
    #[serde(default)]
    pub compression: Compression,
    #[command(flatten)]
    #[serde(default)]
    pub cluster: Cluster,
    /// `[endpoints]`: which endpoints are mounted (a file key only).
    #[arg(skip)]
    #[serde(default, skip_serializing)]
    pub endpoints: Endpoints,
    /// `[wamp]`: the router at `/wamp`. Without it: realm `realm1`, anonymous, everything
    /// allowed (a file section only).
    #[arg(skip)]
    #[serde(default, skip_serializing)]
    pub wamp: sockeye_wamp::Settings,
    /// `[market]`: the demo market (a file section only).
    #[arg(skip)]
    #[serde(default, skip_serializing)]
    pub market: Market,
    /// A TOML file with the same settings (flags given here win); see README.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// `[compression]`, and the `--compression*` flags.
#[derive(Args, Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Compression {
    /// Whether permessage-deflate is offered; `--no-compression` says false.
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Disable permessage-deflate.
    #[arg(long = "no-compression")]
    #[serde(skip)]
    pub disabled: bool,
    /// What permessage-deflate keeps per connection: `fast` (nothing; no context takeover),
    /// `balanced` (the last 8 KiB sent; the client compresses each message afresh) or `max`
    /// (a zlib compressor and decompressor, ~430 KiB).
    #[arg(long = "compression", value_name = "POLICY", help = default_is("What permessage-deflate keeps per connection: `fast` (nothing; no context takeover), `balanced` (the last 8 KiB sent; the client compresses each message afresh) or `max` (a zlib compressor and decompressor, ~430 KiB)", format!("{:?}", sockeye::CompressionPolicy::default()).to_lowercase()))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// Bytes of sent data kept for context takeover with a shared compressor (a file key only).
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retained_window: Option<usize>,
    /// zlib compressors shared by the connections (~380 KiB each): how many connections may
    /// send compressed messages at once without one resetting another's.
    #[arg(long = "shared-compressors", value_name = "N", help = default_is("zlib compressors shared by the connections (~380 KiB each): how many connections may send compressed messages at once without one resetting another's", sockeye::proto::deflate::DEFAULT_SHARED_COMPRESSORS))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_compressors: Option<usize>,
    /// zlib level of permessage-deflate, 0-9: 1 is several times cheaper in CPU than 6 for a
    /// somewhat larger output.
    #[arg(long = "compression-level", value_name = "LEVEL", value_parser = parse_level, help = default_is("zlib level of permessage-deflate, 0-9: 1 is several times cheaper in CPU than 6 for a somewhat larger output", sockeye::DeflateConfig::default().level))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<u32>,
    /// Messages shorter than this many bytes are sent uncompressed.
    #[arg(long = "compression-threshold", value_name = "BYTES", help = default_is("Messages shorter than this many bytes are sent uncompressed", sockeye::DeflateConfig::default().threshold))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<usize>,
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_max_window_bits: Option<u8>,
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_no_context_takeover: Option<bool>,
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_no_context_takeover: Option<bool>,
}

/// `[compression] policy` and `--compression`, as [`sockeye::CompressionPolicy`] spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Fast,
    Balanced,
    Max,
}

impl From<Policy> for sockeye::CompressionPolicy {
    fn from(policy: Policy) -> Self {
        match policy {
            Policy::Fast => sockeye::CompressionPolicy::Fast,
            Policy::Balanced => sockeye::CompressionPolicy::Balanced,
            Policy::Max => sockeye::CompressionPolicy::Max,
        }
    }
}

/// The rooms' history when no `[cluster] history` is given.
pub const DEFAULT_HISTORY: usize = 100;

/// `[cluster]`, `--cluster` and `--node-name`: many nodes as one over NATS.
#[derive(Args, Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Join the nodes that use this NATS server (JetStream on): chat rooms, presence and WAMP
    /// events reach every node. Without it the node is alone.
    #[arg(long = "cluster", value_name = "nats://HOST:PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// This node's name in the cluster, unique among the nodes (member ids start with it).
    /// Default: the host name and the process id.
    #[arg(long = "node-name", value_name = "NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// This node's number for the WAMP router, 0-65535, different on every node: it makes
    /// session ids unique across the cluster. Default: derived from the node name (two names
    /// may collide; set it to be sure).
    #[arg(long = "node-id", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<u16>,
    /// Messages each chat room keeps for clients that reconnect (a file key only).
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<usize>,
}

/// A node number for the WAMP router, from the node's name when none is configured: FNV-1a
/// folded to 16 bits. Two names may share one (about 1 in 1,300 for ten nodes); `node_id`
/// in `[cluster]` makes them certain.
fn node_id(name: &str) -> u16 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    ((hash >> 16) ^ (hash & 0xffff)) as u16
}

/// What [`Cluster`] resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// `None`: one node, in process.
    pub url: Option<String>,
    pub node_name: String,
    pub node_id: u16,
    pub history: usize,
}

fn token(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// The node name when none is given: the host name and the process id, made a valid name
/// (host names may hold dots and be up to 64 bytes long), so that `sockeye serve` starts on
/// any host.
fn default_node_name(host: &str, pid: u32) -> String {
    let pid = format!("-{pid}");
    let host: String = host
        .chars()
        .map(|c| if token(c) { c } else { '-' })
        .take(64 - pid.len())
        .collect();
    let host = if host.is_empty() { "node" } else { &host };
    format!("{host}{pid}")
}

impl Cluster {
    fn resolve(&self) -> Result<ClusterSettings, String> {
        let node_name = match &self.node_name {
            Some(name) => name.clone(),
            None => {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_owned())
                    .unwrap_or_else(|_| "node".into());
                default_node_name(&host, std::process::id())
            }
        };
        if node_name.is_empty() || node_name.len() > 64 || !node_name.chars().all(token) {
            return Err(format!(
                "node name {node_name:?} is not 1 to 64 of A-Z, a-z, 0-9, '-' and '_'"
            ));
        }
        let history = self.history.unwrap_or(DEFAULT_HISTORY);
        if history == 0 {
            return Err("cluster history must be at least 1".into());
        }
        Ok(ClusterSettings {
            url: self.url.clone(),
            node_id: self.node_id.unwrap_or_else(|| node_id(&node_name)),
            node_name,
            history,
        })
    }
}

/// `[market]`: the demo market.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Market {
    /// The WAMP realm its procedures and ticks are in.
    pub realm: String,
    /// The seed of its random walk; the same seed gives the same prices.
    pub seed: u64,
}

impl Default for Market {
    fn default() -> Self {
        Market {
            realm: "realm1".into(),
            seed: 1,
        }
    }
}

/// `[endpoints]`: which endpoints `sockeye serve` mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Endpoints {
    pub page: bool,
    pub echo: bool,
    pub hello: bool,
    pub chat: bool,
    pub wamp: bool,
    pub metrics: bool,
    /// The demo market: its WAMP procedures and ticks in the router, and `/soap`.
    pub market: bool,
    /// `/soap`: the market's `StockQuote` service in SOAP 1.2 (needs `market`).
    pub soap: bool,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            page: true,
            echo: true,
            hello: true,
            chat: true,
            wamp: true,
            metrics: true,
            market: true,
            soap: true,
        }
    }
}

/// What the server runs with: [`Settings`] with every default applied and every value
/// checked.
#[derive(Debug)]
pub struct Resolved {
    pub listen: Vec<SocketAddr>,
    pub tls: TlsSettings,
    pub allow_origin: Vec<String>,
    pub trust_proxy: Vec<sockeye::forwarded::Cidr>,
    pub config: sockeye::Config,
    pub shared_compressors: Option<usize>,
    pub max_connections: i64,
    pub shutdown_timeout: Duration,
    /// `None`: one per CPU.
    pub workers: Option<usize>,
    pub endpoints: Endpoints,
    pub router: sockeye_wamp::RouterConfig,
    pub transport: sockeye_wamp::TransportConfig,
    pub market: Market,
    pub cluster: ClusterSettings,
}

impl Settings {
    /// The file alone (`--config FILE` with no flags), checked.
    pub fn parse(text: &str) -> Result<Self, String> {
        let settings: Settings = toml::from_str(text).map_err(|e| e.to_string())?;
        settings.check()?;
        Ok(settings)
    }

    /// The flags over the file they name, if any.
    pub fn load(flags: Settings) -> Result<Self, String> {
        let Some(path) = flags.config.clone() else {
            flags.check()?;
            return Ok(flags);
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        Self::merge(&text, flags).map_err(|e| format!("config {}: {e}", path.display()))
    }

    /// `flags` laid over the file `text`: a flag given wins, a flag not given leaves the
    /// file's value.
    pub fn merge(text: &str, mut flags: Settings) -> Result<Self, String> {
        let mut file: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        // Read the file alone first, so that its errors name the key as the file spells it.
        Self::parse(text)?;
        if flags.compression.disabled {
            flags.compression.enabled = Some(false);
        }
        let given = toml::Table::try_from(&flags).map_err(|e| e.to_string())?;
        lay_over(&mut file, given);
        let mut merged: Settings = toml::Table::try_into(file).map_err(|e| e.to_string())?;
        // What serde does not carry: the flags that are flags only.
        merged.tls_sni = flags.tls_sni;
        merged.config = flags.config;
        merged.compression.disabled = flags.compression.disabled;
        merged.check()?;
        Ok(merged)
    }

    /// What the types do not say.
    fn check(&self) -> Result<(), String> {
        if let Some(level) = self.compression.level {
            check_level(level)?;
        }
        if let Some(bits) = self.compression.server_max_window_bits {
            check_window_bits(bits)?;
        }
        for entry in &self.trust_proxy {
            check_cidr(entry)?;
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("--tls-cert needs --tls-key, and --tls-key needs --tls-cert (tls_cert, tls_key in a file)".into());
        }
        self.wamp.router_config().map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Every default applied: what the server runs with.
    pub fn resolve(&self) -> Result<Resolved, String> {
        self.check()?;
        let tls = TlsSettings {
            listen_tls: self.listen_tls.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            sni: self.tls_sni.clone(),
            client_ca: self.tls_client_ca.clone(),
        };
        let secs = Duration::from_secs;
        let mut config = sockeye::Config::default();
        if let Some(size) = self.max_message_size {
            config = config.max_message_size(size);
        }
        let ping_interval = self.ping_interval.unwrap_or(DEFAULT_PING_INTERVAL);
        config.ping_interval = (ping_interval > 0).then(|| secs(ping_interval));
        if let Some(s) = self.handshake_timeout {
            config.handshake_timeout = secs(s);
        }
        if let Some(s) = self.close_timeout {
            config.close_timeout = secs(s);
        }
        if let Some(s) = self.ping_timeout {
            config.ping_timeout = secs(s);
        }
        if let Some(s) = self.write_timeout {
            config.write_timeout = (s > 0).then(|| secs(s));
        }
        let c = &self.compression;
        config.deflate = if c.disabled || c.enabled == Some(false) {
            None
        } else {
            let policy = c.policy.map(Into::into).unwrap_or_default();
            let mut deflate = sockeye::DeflateConfig::with_policy(policy);
            deflate.level = c.level.unwrap_or(deflate.level);
            deflate.threshold = c.threshold.unwrap_or(deflate.threshold);
            if let Some(bits) = c.server_max_window_bits {
                deflate.server_max_window_bits = bits;
            }
            if let Some(nct) = c.server_no_context_takeover {
                deflate.server_no_context_takeover = nct;
            }
            if let Some(nct) = c.client_no_context_takeover {
                deflate.client_no_context_takeover = nct;
            }
            if let Some(bytes) = c.retained_window {
                deflate.retained_window = Some(bytes);
            }
            Some(deflate)
        };
        Ok(Resolved {
            listen: self.listen.clone(),
            tls,
            allow_origin: self.allow_origin.clone(),
            trust_proxy: self
                .trust_proxy
                .iter()
                .map(|t| t.parse())
                .collect::<Result<_, _>>()?,
            config,
            shared_compressors: c.shared_compressors,
            max_connections: self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
            shutdown_timeout: secs(self.shutdown_timeout.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT)),
            workers: match self.workers {
                Some(0) => return Err("workers must be at least 1".into()),
                n => n,
            },
            endpoints: self.endpoints,
            router: self.wamp.router_config().map_err(|e| e.to_string())?,
            transport: sockeye_wamp::TransportConfig::from_settings(&self.wamp),
            market: self.market.clone(),
            cluster: self.cluster.resolve()?,
        })
    }
}

/// Lays `over` on `under`: tables merge key by key, anything else in `over` replaces.
fn lay_over(under: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (under.get_mut(&key), value) {
            (Some(toml::Value::Table(u)), toml::Value::Table(o)) => lay_over(u, o),
            (_, value) => {
                under.insert(key, value);
            }
        }
    }
}

pub fn check_level(level: u32) -> Result<u32, String> {
    if level <= 9 {
        Ok(level)
    } else {
        Err(format!("compression level {level} is not 0..=9"))
    }
}

fn parse_level(s: &str) -> Result<u32, String> {
    s.parse::<u32>()
        .map_err(|e| e.to_string())
        .and_then(check_level)
}

pub fn check_window_bits(bits: u8) -> Result<u8, String> {
    if (8..=15).contains(&bits) {
        Ok(bits)
    } else {
        Err(format!("window bits {bits} is not 8..=15"))
    }
}

fn check_cidr(entry: &str) -> Result<String, String> {
    entry
        .parse::<sockeye::forwarded::Cidr>()
        .map(|_| entry.to_owned())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// `sockeye serve`'s flags, as `main` parses them.
    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        settings: Settings,
    }

    fn flags(args: &[&str]) -> Settings {
        let argv = std::iter::once("serve").chain(args.iter().copied());
        Serve::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{e}"))
            .settings
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// What `EVERY_FLAG` and `EVERY_KEY` both set, to the same values.
    fn assert_the_values_both_tests_give(r: &Resolved) {
        assert_eq!(r.listen, ["127.0.0.1:9001".parse().unwrap()]);
        assert_eq!(r.tls.listen_tls, ["127.0.0.1:9002".parse().unwrap()]);
        assert_eq!(r.tls.tls_cert, Some("c.pem".into()));
        assert_eq!(r.tls.tls_key, Some("k.pem".into()));
        assert_eq!(r.tls.client_ca, Some("ca.pem".into()));
        assert_eq!(r.allow_origin, ["https://example.com"]);
        let c = &r.config;
        assert_eq!(c.ping_interval, Some(secs(11)));
        assert_eq!(c.protocol.max_message_size, 1000);
        assert_eq!(r.max_connections, 12);
        assert_eq!(r.shutdown_timeout, secs(13));
        assert_eq!(c.handshake_timeout, secs(14));
        assert_eq!(c.close_timeout, secs(15));
        assert_eq!(c.ping_timeout, secs(16));
        assert_eq!(r.workers, Some(1));
        assert_eq!(r.cluster.url.as_deref(), Some("nats://127.0.0.1:4999"));
        assert_eq!(r.cluster.node_name, "node-7");
        assert_eq!(r.cluster.node_id, 77);
    }

    /// Every flag with a value that is not its default.
    const EVERY_FLAG: &[&str] = &[
        "--listen=127.0.0.1:9001",
        "--listen-tls=127.0.0.1:9002",
        "--tls-cert=c.pem",
        "--tls-key=k.pem",
        "--tls-sni=example.com=e.pem,ek.pem",
        "--tls-client-ca=ca.pem",
        "--allow-origin=https://example.com",
        "--trust-proxy=10.0.0.0/8",
        "--ping-interval=11",
        "--max-message-size=1000",
        "--max-connections=12",
        "--shutdown-timeout=13",
        "--handshake-timeout=14",
        "--close-timeout=15",
        "--ping-timeout=16",
        "--write-timeout=17",
        "--compression=max",
        "--shared-compressors=18",
        "--compression-level=1",
        "--compression-threshold=19",
        "--workers=1",
        "--cluster=nats://127.0.0.1:4999",
        "--node-name=node-7",
        "--node-id=77",
    ];

    #[test]
    fn the_default_node_name_is_valid_for_any_host_name() {
        assert_eq!(default_node_name("vm", 42), "vm-42");
        assert_eq!(
            default_node_name("ip-10-0-0-1.ec2.internal", 7),
            "ip-10-0-0-1-ec2-internal-7"
        );
        let long = default_node_name(&"h".repeat(64), u32::MAX);
        assert_eq!(long.len(), 64);
        assert!(long.ends_with(&format!("-{}", u32::MAX)));
        assert_eq!(default_node_name("", 3), "node-3");
        let given = Cluster {
            node_name: None,
            ..Cluster::default()
        };
        assert!(given.resolve().is_ok(), "whatever this host is called");
    }

    #[test]
    fn node_ids_from_names_are_stable_and_spread() {
        assert_eq!(node_id("a"), node_id("a"));
        let ids: std::collections::HashSet<u16> =
            (0..100).map(|i| node_id(&format!("node-{i}"))).collect();
        assert_eq!(ids.len(), 100);
    }

    #[test]
    fn every_flag_reaches_the_server() {
        let r = Settings::load(flags(EVERY_FLAG))
            .unwrap()
            .resolve()
            .unwrap();
        assert_the_values_both_tests_give(&r);
        assert_eq!(r.tls.sni.len(), 1);
        assert_eq!(r.trust_proxy.len(), 1);
        let c = &r.config;
        assert_eq!(c.write_timeout, Some(secs(17)));
        let d = c.deflate.as_ref().unwrap();
        let max = sockeye::DeflateConfig::with_policy(sockeye::CompressionPolicy::Max);
        assert_eq!(d.retained_window, max.retained_window);
        assert_eq!(d.client_no_context_takeover, max.client_no_context_takeover);
        assert_eq!(r.shared_compressors, Some(18));
        assert_eq!(d.level, 1);
        assert_eq!(d.threshold, 19);

        let off = Settings::load(flags(&["--no-compression"]))
            .unwrap()
            .resolve()
            .unwrap();
        assert!(off.config.deflate.is_none());

        // A flag added without a line above fails here.
        let tested: Vec<String> = EVERY_FLAG
            .iter()
            .chain(&["--no-compression", "--config="])
            .map(|f| {
                f.trim_start_matches("--")
                    .split('=')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        for arg in Serve::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            assert!(tested.iter().any(|t| t == long), "--{long} is not tested");
        }
    }

    /// Every key of the file, with a value that is not its default.
    const EVERY_KEY: &str = r#"
        listen = ["127.0.0.1:9001"]
        listen_tls = ["127.0.0.1:9002"]
        tls_cert = "c.pem"
        tls_key = "k.pem"
        tls_client_ca = "ca.pem"
        allow_origin = ["https://example.com"]
        trust_proxy = ["127.0.0.1", "10.0.0.0/8", "fd00::/8"]
        ping_interval = 11
        max_message_size = 1000
        max_connections = 12
        shutdown_timeout = 13
        handshake_timeout = 14
        close_timeout = 15
        ping_timeout = 16
        write_timeout = 0
        workers = 1
        [compression]
        policy = "fast"
        retained_window = 2048
        shared_compressors = 18
        level = 1
        threshold = 19
        server_max_window_bits = 12
        server_no_context_takeover = true
        client_no_context_takeover = true
        [endpoints]
        page = false
        echo = false
        hello = false
        chat = false
        wamp = false
        metrics = false
        market = false
        soap = false
        [wamp]
        auto_create_realms = false
        max_auto_realms = 3
        max_retained_events = 4
        max_retained_bytes = 5
        session_queue_bytes = 6
        [[wamp.realm]]
        name = "shop"
        [market]
        realm = "trading"
        seed = 7
        [cluster]
        url = "nats://127.0.0.1:4999"
        node_name = "node-7"
        node_id = 77
        history = 20
    "#;

    #[test]
    fn every_file_key_reaches_the_server() {
        let r = Settings::parse(EVERY_KEY).unwrap().resolve().unwrap();
        assert_the_values_both_tests_give(&r);
        assert_eq!(r.cluster.history, 20);
        assert_eq!(r.trust_proxy.len(), 3);
        let c = &r.config;
        assert_eq!(c.write_timeout, None);
        let d = c.deflate.as_ref().unwrap();
        assert_eq!(d.retained_window, Some(2048));
        assert_eq!(r.shared_compressors, Some(18));
        assert_eq!((d.level, d.threshold), (1, 19));
        assert_eq!(d.server_max_window_bits, 12);
        assert!(d.server_no_context_takeover && d.client_no_context_takeover);
        let e = r.endpoints;
        assert!(
            !(e.page || e.echo || e.hello || e.chat || e.wamp || e.metrics || e.market || e.soap)
        );
        let w = &r.router;
        assert!(!w.auto_create_realms);
        assert_eq!(
            (
                w.max_auto_realms,
                w.max_retained_events,
                w.max_retained_bytes
            ),
            (3, 4, 5)
        );
        assert_eq!(w.realm_configs[0].name, "shop");
        assert_eq!(r.transport.queue_bytes, 6);
        assert_eq!((r.market.realm.as_str(), r.market.seed), ("trading", 7));

        let off = Settings::parse("[compression]\nenabled = false").unwrap();
        assert!(off.resolve().unwrap().config.deflate.is_none());
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_fills_the_rest() {
        let file = "ping_interval = 10\nmax_connections = 5\nlisten = [\"127.0.0.1:9001\"]\n\
                    [compression]\nlevel = 1\nthreshold = 7\n[market]\nseed = 9";
        let given = flags(&["--ping-interval=20", "--compression-level=2"]);
        let r = Settings::merge(file, given).unwrap().resolve().unwrap();
        assert_eq!(r.config.ping_interval, Some(secs(20)));
        let d = r.config.deflate.as_ref().unwrap();
        assert_eq!((d.level, d.threshold), (2, 7));
        assert_eq!(r.max_connections, 5);
        assert_eq!(r.listen, ["127.0.0.1:9001".parse().unwrap()]);
        assert_eq!(r.market.seed, 9);
        let off = Settings::merge("[compression]\nlevel = 1", flags(&["--no-compression"]));
        assert!(off.unwrap().resolve().unwrap().config.deflate.is_none());
    }

    #[test]
    fn nothing_given_is_the_documented_defaults() {
        let r = Settings::load(flags(&[])).unwrap().resolve().unwrap();
        assert!(r.listen.is_empty(), "tls::bind picks 127.0.0.1:8080");
        assert_eq!(r.config.ping_interval, Some(secs(DEFAULT_PING_INTERVAL)));
        assert_eq!(r.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(r.workers, None);
        assert_eq!(r.shutdown_timeout, secs(DEFAULT_SHUTDOWN_TIMEOUT));
        let library = sockeye::Config::default();
        assert_eq!(
            r.config.protocol.max_message_size,
            library.protocol.max_message_size
        );
        assert_eq!(r.config.write_timeout, library.write_timeout);
        assert_eq!(r.endpoints, Endpoints::default());
        assert_eq!(r.market.seed, 1);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_that_name_them() {
        let bad = |text: &str, says: &str| {
            let err = Settings::parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        };
        bad("listne = []", "listne");
        bad("[compression]\nlevel = 12", "12");
        bad("[compression]\nserver_max_window_bits = 16", "16");
        bad("[compression]\npolicy = \"tiny\"", "tiny");
        bad("ping_interval = \"often\"", "often");
        bad("listen = [\"not an address\"]", "not an address");
        bad("[endpoints]\nchatt = true", "chatt");
        bad("trust_proxy = [\"10.0.0.0/40\"]", "10.0.0.0/40");
        bad("tls_cert = \"c.pem\"", "tls_key");
        bad("config = \"x.toml\"", "config");
        // The [wamp] section is sockeye-wamp's, its checks included.
        bad("[wamp]\nauto_create = true", "auto_create");
        bad("[[wamp.realm]]\nname = \"bad realm\"", "not a valid URI");
        // A flag's bad value is refused by clap, naming the flag.
        let argv = ["serve", "--compression-level=12"];
        let err = Serve::try_parse_from(argv).err().unwrap().to_string();
        assert!(err.contains("--compression-level"), "{err}");
    }
}
