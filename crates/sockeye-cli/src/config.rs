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
    #[serde(default)]
    pub wamp: Wamp,
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

/// `[wamp]`: the router at `/wamp`. Without it: realm `realm1`, anonymous, everything allowed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wamp {
    /// Whether a HELLO for a realm not configured creates it (anonymous, everything
    /// allowed), as `realm1` is. Default true.
    pub auto_create_realms: Option<bool>,
    /// Realms HELLOs may create at once. Default 1000.
    pub max_auto_realms: Option<usize>,
    /// Retained events a realm keeps. Default 1000.
    pub max_retained_events: Option<usize>,
    /// Bytes of retained events a realm keeps. Default 16 MiB.
    pub max_retained_bytes: Option<usize>,
    /// Bytes queued for one session before it counts as slow. Default 8 MiB.
    pub session_queue_bytes: Option<usize>,
    #[serde(default, rename = "realm")]
    pub realms: Vec<WampRealm>,
}

/// `[[wamp.realm]]`: a realm with its own users and roles.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WampRealm {
    pub name: String,
    /// Whether sessions may join without authenticating (authrole `anonymous`). Default true.
    #[serde(default = "yes")]
    pub anonymous: bool,
    /// Without roles every session may do everything; with roles only what its role allows.
    #[serde(rename = "role")]
    pub roles: Option<Vec<WampRole>>,
    #[serde(default, rename = "user")]
    pub users: Vec<WampUser>,
}

fn yes() -> bool {
    true
}

/// `[[wamp.realm.role]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WampRole {
    pub name: String,
    #[serde(default, rename = "permission")]
    pub permissions: Vec<WampPermission>,
}

/// `[[wamp.realm.role.permission]]`: what a role may do on the URIs a pattern matches.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WampPermission {
    pub uri: String,
    /// `exact` (default), `prefix` or `wildcard`.
    #[serde(rename = "match")]
    pub policy: Option<String>,
    /// Any of `publish`, `subscribe`, `register`, `call`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Calls and publications allowed by this rule name their caller or publisher.
    #[serde(default)]
    pub disclose: bool,
}

/// `[[wamp.realm.user]]`: a principal and its secrets, one per authentication method.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WampUser {
    pub authid: String,
    pub role: String,
    pub ticket: Option<String>,
    pub wampcra: Option<WampCra>,
    /// Ed25519 public keys, 64 hex digits each.
    #[serde(default)]
    pub cryptosign: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WampCra {
    pub secret: String,
    /// With a salt the key is PBKDF2(secret, salt, iterations, keylen), as Autobahn derives it.
    pub salt: Option<String>,
    pub iterations: Option<u32>,
    pub keylen: Option<u32>,
}

impl Wamp {
    /// The transport settings of the router.
    pub fn transport_config(&self) -> sockeye_wamp::TransportConfig {
        let defaults = sockeye_wamp::TransportConfig::default();
        sockeye_wamp::TransportConfig {
            queue_bytes: self.session_queue_bytes.unwrap_or(defaults.queue_bytes),
            ..defaults
        }
    }

    /// The router settings, or what is wrong with them.
    pub fn router_config(&self) -> Result<sockeye_wamp::RouterConfig, String> {
        use sockeye_wamp::auth::{AuthConfig, Permission, Role, Salt, Secret, User};
        use sockeye_wamp::core::RealmConfig;
        use sockeye_wamp::{uri, MatchPolicy, UriCheck};

        let defaults = sockeye_wamp::RouterConfig::default();
        let mut config = sockeye_wamp::RouterConfig {
            auto_create_realms: self.auto_create_realms.unwrap_or(true),
            max_auto_realms: self.max_auto_realms.unwrap_or(defaults.max_auto_realms),
            max_retained_events: self
                .max_retained_events
                .unwrap_or(defaults.max_retained_events),
            max_retained_bytes: self
                .max_retained_bytes
                .unwrap_or(defaults.max_retained_bytes),
            ..defaults
        };
        for (i, realm) in self.realms.iter().enumerate() {
            let name = &realm.name;
            if !uri::is_valid(name, UriCheck::Loose) {
                return Err(format!("wamp realm {name:?} is not a valid URI"));
            }
            if self.realms[..i].iter().any(|r| &r.name == name) {
                return Err(format!("wamp realm {name:?} is configured twice"));
            }
            let roles = match &realm.roles {
                None => None,
                Some(roles) => {
                    let mut out = Vec::new();
                    for role in roles {
                        let mut permissions = Vec::new();
                        for p in &role.permissions {
                            let policy = match p.policy.as_deref() {
                                None => MatchPolicy::Exact,
                                Some(m) => MatchPolicy::parse(m).ok_or_else(|| {
                                    format!("wamp realm {name:?} role {:?}: match {m:?} is not exact, prefix or wildcard", role.name)
                                })?,
                            };
                            if !uri::is_valid_pattern(&p.uri, policy, UriCheck::Loose) {
                                return Err(format!(
                                    "wamp realm {name:?} role {:?}: {:?} is not a valid {} pattern",
                                    role.name,
                                    p.uri,
                                    policy.as_str()
                                ));
                            }
                            let mut permission = Permission::only(&p.uri, policy, &[]);
                            permission.disclose = p.disclose;
                            for action in &p.allow {
                                match action.as_str() {
                                    "publish" => permission.publish = true,
                                    "subscribe" => permission.subscribe = true,
                                    "register" => permission.register = true,
                                    "call" => permission.call = true,
                                    other => {
                                        return Err(format!(
                                            "wamp realm {name:?} role {:?}: {other:?} is not publish, subscribe, register or call",
                                            role.name
                                        ))
                                    }
                                }
                            }
                            permissions.push(permission);
                        }
                        out.push(Role {
                            name: role.name.clone(),
                            permissions,
                        });
                    }
                    Some(out)
                }
            };
            let mut users = Vec::new();
            for u in &realm.users {
                if let Some(roles) = &roles {
                    if !roles.iter().any(|r: &Role| r.name == u.role) {
                        return Err(format!(
                            "wamp realm {name:?} user {:?}: no role {:?} in this realm",
                            u.authid, u.role
                        ));
                    }
                }
                let mut secrets = Vec::new();
                if let Some(t) = &u.ticket {
                    secrets.push(Secret::Ticket(t.clone()));
                }
                if let Some(cra) = &u.wampcra {
                    let salt = match (&cra.salt, cra.iterations, cra.keylen) {
                        (None, None, None) => None,
                        (Some(salt), iterations, keylen) => Some(Salt {
                            salt: salt.clone(),
                            // Autobahn's defaults.
                            iterations: iterations.unwrap_or(1000),
                            keylen: keylen.unwrap_or(32),
                        }),
                        _ => {
                            return Err(format!(
                                "wamp realm {name:?} user {:?}: iterations and keylen need a salt",
                                u.authid
                            ))
                        }
                    };
                    secrets.push(Secret::WampCra {
                        secret: cra.secret.clone(),
                        salt,
                    });
                }
                if !u.cryptosign.is_empty() {
                    let keys = u
                        .cryptosign
                        .iter()
                        .map(|k| {
                            sockeye_wamp::auth::hex32(k).ok_or_else(|| {
                                format!(
                                    "wamp realm {name:?} user {:?}: cryptosign key {k:?} is not 64 hex digits",
                                    u.authid
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    secrets.push(Secret::Cryptosign { public_keys: keys });
                }
                if secrets.is_empty() {
                    return Err(format!(
                        "wamp realm {name:?} user {:?}: no ticket, wampcra or cryptosign",
                        u.authid
                    ));
                }
                users.push(User {
                    authid: u.authid.clone(),
                    authrole: u.role.clone(),
                    secrets,
                });
            }
            config.realm_configs.push(RealmConfig {
                name: name.clone(),
                auth: Some(AuthConfig {
                    allow_anonymous: realm.anonymous,
                    users,
                }),
                roles,
            });
        }
        Ok(config)
    }
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
        config.wamp.router_config()?;
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
    }
    const WAMP: &str = r#"
        [wamp]
        auto_create_realms = false
        [[wamp.realm]]
        name = "shop"
        anonymous = false
        [[wamp.realm.role]]
        name = "staff"
        [[wamp.realm.role.permission]]
        uri = "com.shop."
        match = "prefix"
        allow = ["publish", "subscribe", "register", "call"]
        [[wamp.realm.role.permission]]
        uri = "com.shop.audit"
        allow = ["call"]
        disclose = true
        [[wamp.realm.role]]
        name = "visitor"
        [[wamp.realm.role.permission]]
        uri = "com.shop..price"
        match = "wildcard"
        allow = ["subscribe"]
        [[wamp.realm.user]]
        authid = "clerk"
        role = "staff"
        ticket = "counter"
        wampcra = { secret = "s3cret", salt = "pepper", iterations = 100, keylen = 16 }
        cryptosign = ["ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c"]
        [[wamp.realm.user]]
        authid = "guest"
        role = "visitor"
        wampcra = { secret = "plain" }
        [[wamp.realm]]
        name = "open"
    "#;

    #[test]
    fn wamp_realms_roles_and_users_become_the_router_config() {
        use sockeye_wamp::auth::{authorize, Operation, Secret, Verdict};
        let c = FileConfig::parse(WAMP)
            .unwrap()
            .wamp
            .router_config()
            .unwrap();
        assert!(!c.auto_create_realms);
        // realm1 stays as it is: anonymous, no roles.
        assert_eq!(c.realms, ["realm1"]);
        assert!(c.auth.allow_anonymous);
        let [shop, open] = &c.realm_configs[..] else {
            panic!("{:?}", c.realm_configs)
        };
        let auth = shop.auth.as_ref().unwrap();
        assert!(!auth.allow_anonymous);
        assert_eq!(auth.users.len(), 2);
        let clerk = &auth.users[0];
        assert_eq!(
            (clerk.authid.as_str(), clerk.authrole.as_str()),
            ("clerk", "staff")
        );
        assert!(matches!(&clerk.secrets[..], [
            Secret::Ticket(t),
            Secret::WampCra { salt: Some(salt), .. },
            Secret::Cryptosign { public_keys },
        ] if t == "counter" && salt.salt == "pepper" && salt.iterations == 100 && salt.keylen == 16 && public_keys.len() == 1));
        let roles = shop.roles.as_ref().unwrap();
        let allowed = Verdict::Allowed { disclose: false };
        assert_eq!(
            authorize(roles, "staff", Operation::Register, "com.shop.x"),
            allowed
        );
        assert_eq!(
            authorize(roles, "staff", Operation::Call, "com.shop.audit"),
            Verdict::Allowed { disclose: true }
        );
        assert_eq!(
            authorize(roles, "staff", Operation::Register, "com.shop.audit"),
            Verdict::Denied
        );
        assert_eq!(
            authorize(roles, "visitor", Operation::Subscribe, "com.shop.tea.price"),
            allowed
        );
        assert_eq!(
            authorize(roles, "visitor", Operation::Call, "com.shop.tea.price"),
            Verdict::Denied
        );
        // A realm with no roles and no users: anonymous, everything allowed.
        assert!(open.roles.is_none());
        assert!(open.auth.as_ref().unwrap().allow_anonymous);
    }

    #[test]
    fn bad_wamp_settings_are_errors_that_say_what_is_wrong() {
        let bad = |text: &str, says: &str| {
            let err = FileConfig::parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        };
        bad("[[wamp.realm]]\nname = \"a\"\nanonymus = true", "anonymus");
        bad("[[wamp.realm]]\nname = \"bad realm\"", "not a valid URI");
        bad(
            "[[wamp.realm]]\nname = \"a\"\n[[wamp.realm]]\nname = \"a\"",
            "twice",
        );
        let role = "[[wamp.realm]]\nname = \"a\"\n[[wamp.realm.role]]\nname = \"r\"\n[[wamp.realm.role.permission]]\n";
        bad(&format!("{role}uri = \"x\"\nmatch = \"regex\""), "regex");
        bad(
            &format!("{role}uri = \"x\"\nallow = [\"delete\"]"),
            "delete",
        );
        bad(
            &format!("{role}uri = \"a..b\""),
            "not a valid exact pattern",
        );
        let user =
            "[[wamp.realm]]\nname = \"a\"\n[[wamp.realm.user]]\nauthid = \"u\"\nrole = \"r\"\n";
        bad(user, "no ticket, wampcra or cryptosign");
        bad(&format!("{user}cryptosign = [\"abc\"]"), "64 hex digits");
        bad(
            &format!("{user}wampcra = {{ secret = \"s\", iterations = 5 }}"),
            "need a salt",
        );
        bad(
            &format!("{role}uri = \"x\"\n[[wamp.realm.user]]\nauthid = \"u\"\nrole = \"nobody\"\nticket = \"t\""),
            "no role \"nobody\"",
        );
    }
}
