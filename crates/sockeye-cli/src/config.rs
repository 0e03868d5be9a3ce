//! The optional TOML file of `sockeye serve --config FILE`: the same settings as the flags.
//! A flag given on the command line wins over the file; unknown keys and bad values are errors
//! at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<Vec<SocketAddr>>,
    pub listen_tls: Option<Vec<SocketAddr>>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub allow_origin: Option<Vec<String>>,
    /// Reverse proxies (IP addresses or CIDR blocks) whose `Forwarded`/`X-Forwarded-For`
    /// headers name the client.
    pub trust_proxy: Option<Vec<String>>,
    pub ping_interval: Option<u64>,
    pub max_message_size: Option<usize>,
    pub max_connections: Option<i64>,
    pub shutdown_timeout: Option<u64>,
    pub handshake_timeout: Option<u64>,
    pub close_timeout: Option<u64>,
    pub ping_timeout: Option<u64>,
    pub write_timeout: Option<u64>,
    #[serde(default)]
    pub compression: Compression,
    #[serde(default)]
    pub endpoints: Endpoints,
    /// `[wamp]`: the router at `/wamp`. Without it: realm `realm1`, anonymous, everything
    /// allowed.
    #[serde(default)]
    pub wamp: sockeye_wamp::Settings,
    #[serde(default)]
    pub market: Market,
}

/// `[market]`: the demo market.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Market {
    /// The WAMP realm its procedures and ticks are in. Default `realm1`.
    pub realm: Option<String>,
    /// The seed of its random walk; the same seed gives the same prices. Default 1.
    pub seed: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compression {
    pub enabled: Option<bool>,
    /// `fast`, `balanced` (default) or `max`; the other keys adjust it.
    pub policy: Option<Policy>,
    /// Bytes of sent data kept for context takeover with a shared compressor.
    pub retained_window: Option<usize>,
    /// Compressors the process keeps for the connections sending at once.
    pub shared_compressors: Option<usize>,
    pub level: Option<u32>,
    pub threshold: Option<usize>,
    pub server_max_window_bits: Option<u8>,
    pub server_no_context_takeover: Option<bool>,
    pub client_no_context_takeover: Option<bool>,
}

/// `[compression] policy`, as [`sockeye::CompressionPolicy`] spells it.
#[derive(Debug, Clone, Copy, Deserialize)]
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

/// Which endpoints `sockeye serve` mounts.
#[derive(Debug, Clone, Copy, Deserialize)]
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

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("config {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let config: FileConfig = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        if let Some(level) = config.compression.level {
            check_level(level)?;
        }
        if let Some(bits) = config.compression.server_max_window_bits {
            check_window_bits(bits)?;
        }
        for entry in config.trust_proxy.iter().flatten() {
            entry.parse::<sockeye::forwarded::Cidr>()?;
        }
        config.wamp.router_config().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

pub fn check_level(level: u32) -> Result<u32, String> {
    if level <= 9 {
        Ok(level)
    } else {
        Err(format!("compression level {level} is not 0..=9"))
    }
}

pub fn check_window_bits(bits: u8) -> Result<u8, String> {
    if (8..=15).contains(&bits) {
        Ok(bits)
    } else {
        Err(format!("window bits {bits} is not 8..=15"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_parses() {
        let c = FileConfig::parse(
            r#"
            listen = ["127.0.0.1:9000"]
            allow_origin = ["https://example.com"]
            trust_proxy = ["127.0.0.1", "10.0.0.0/8", "fd00::/8"]
            ping_interval = 10
            max_message_size = 1048576
            max_connections = 5
            shutdown_timeout = 3
            handshake_timeout = 7
            close_timeout = 2
            [compression]
            enabled = true
            level = 1
            threshold = 64
            server_max_window_bits = 12
            server_no_context_takeover = true
            [endpoints]
            chat = false
            "#,
        )
        .unwrap();
        assert_eq!(c.listen.unwrap(), ["127.0.0.1:9000".parse().unwrap()]);
        assert_eq!(c.trust_proxy.unwrap().len(), 3);
        assert_eq!(c.compression.level, Some(1));
        assert_eq!((c.handshake_timeout, c.close_timeout), (Some(7), Some(2)));
        assert_eq!(c.compression.server_max_window_bits, Some(12));
        assert!(!c.endpoints.chat);
        assert!(c.endpoints.echo);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(FileConfig::parse("listne = []")
            .unwrap_err()
            .contains("listne"));
        assert!(FileConfig::parse("[compression]\nlevel = 12").is_err());
        assert!(FileConfig::parse("[compression]\nserver_max_window_bits = 16").is_err());
        assert!(FileConfig::parse("ping_interval = \"often\"").is_err());
        assert!(FileConfig::parse("listen = [\"not an address\"]").is_err());
        assert!(FileConfig::parse("[endpoints]\nchatt = true").is_err());
        assert!(FileConfig::parse("trust_proxy = [\"10.0.0.0/40\"]")
            .unwrap_err()
            .contains("10.0.0.0/40"));
        // The [wamp] section is sockeye-wamp's, its checks included.
        assert!(
            FileConfig::parse("[wamp]\nmax_auto_realms = 3\nauto_create = true")
                .unwrap_err()
                .contains("auto_create")
        );
        assert!(FileConfig::parse("[[wamp.realm]]\nname = \"bad realm\"")
            .unwrap_err()
            .contains("not a valid URI"));
    }
}
