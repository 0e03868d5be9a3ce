//! The router's settings: [`RouterConfig`] as code builds it, and [`Settings`], the `[wamp]`
//! section of a settings file, read with serde and turned into a [`RouterConfig`] by
//! [`Settings::router_config`], which says what is wrong with it.

use serde::Deserialize;

use crate::auth::{AuthConfig, AuthRole, Operation, Permission, Salt, Secret, User};
use crate::cluster::ClusterConfig;
use crate::uri::{self, MatchPolicy, UriCheck};

/// Router settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RouterConfig {
    /// Realms that exist from the start. Default `["realm1"]`.
    pub realms: Vec<String>,
    /// Whether a HELLO for any other (valid) realm creates it, instead of ABORT
    /// `wamp.error.no_such_realm`. Default `true`.
    pub auto_create_realms: bool,
    /// Which URI rules apply to realms, topics and procedures. Default [`UriCheck::Loose`].
    pub uri_check: UriCheck,
    /// Whether the router closes the transport after answering a client's GOODBYE. WAMP lets
    /// a client start a new session on the same transport, but Autobahn clients close it right
    /// away, and autobahn-js reports a close without status code 1000 as "lost": closing
    /// first (1000) is what makes its close clean. `false` keeps the transport open. Default
    /// `true`.
    pub close_after_goodbye: bool,
    /// Who may join, and how they authenticate (realms without their own `auth`). Default:
    /// anonymous only.
    pub auth: AuthConfig,
    /// Realms with their own users or roles; they exist from the start, like `realms`. Default
    /// none.
    pub realm_configs: Vec<RealmConfig>,
    /// Realms that HELLOs may create at once (`auto_create_realms`); a HELLO for one more gets
    /// ABORT `wamp.error.no_such_realm`. A created realm is freed when its last session leaves.
    /// Default 1000.
    pub max_auto_realms: usize,
    /// Retained events a realm keeps at most; past it the oldest is forgotten. Default 1000.
    pub max_retained_events: usize,
    /// Bytes of retained events (as [`crate::Message::size_hint`] measures them) a realm keeps
    /// at most; past it the oldest are forgotten, and a larger event is not retained at all.
    /// Default 16 MiB.
    pub max_retained_bytes: usize,
    /// `Some`: this router is one node of several, and its broker works across them (see
    /// [`crate::cluster`]): it emits [`crate::Action::Forward`] for every publication it
    /// accepts and [`crate::Action::Interest`] as local subscriptions come and go, and takes
    /// other nodes' publications with [`crate::Router::deliver_remote`]. `None`, the default: a
    /// single node, and neither action is ever emitted.
    pub cluster: Option<ClusterConfig>,
}

/// A realm's own authentication and authorization.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RealmConfig {
    /// The realm's URI, as HELLO names it.
    pub name: String,
    /// Who may join this realm; `None` means the router-wide [`RouterConfig::auth`].
    pub auth: Option<AuthConfig>,
    /// `None`: every session may publish, subscribe, register and call anything (as in the
    /// default realm `realm1`). `Some`: a session may do only what a rule of its `authrole`
    /// allows (see [`crate::auth::authorize`]); anything else gets ERROR
    /// `wamp.error.not_authorized`.
    pub roles: Option<Vec<AuthRole>>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            realms: vec!["realm1".to_owned()],
            auto_create_realms: true,
            uri_check: UriCheck::Loose,
            close_after_goodbye: true,
            auth: AuthConfig::default(),
            realm_configs: Vec::new(),
            max_auto_realms: 1000,
            max_retained_events: 1000,
            max_retained_bytes: 16 << 20,
            cluster: None,
        }
    }
}

/// Bytes queued for one session before it counts as slow, unless [`Settings`] says otherwise.
/// The transport queues; the core only carries the number.
pub const DEFAULT_SESSION_QUEUE_BYTES: usize = 8 << 20;

/// The `[wamp]` section of a settings file. Every key is optional; what is absent keeps the
/// default of [`RouterConfig`] (realm `realm1`, anonymous, everything allowed). Unknown keys
/// are refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Whether a HELLO for a realm not configured creates it (anonymous, everything
    /// allowed), as `realm1` is. Default `true`.
    pub auto_create_realms: Option<bool>,
    /// Realms HELLOs may create at once; past it a HELLO gets ABORT
    /// `wamp.error.no_such_realm`. Default 1000.
    pub max_auto_realms: Option<usize>,
    /// Retained events a realm keeps; past it the oldest is forgotten. Default 1000.
    pub max_retained_events: Option<usize>,
    /// Bytes of retained events a realm keeps; past it the oldest are forgotten. Default 16 MiB.
    pub max_retained_bytes: Option<usize>,
    /// Bytes queued for one session before it counts as slow (read by the transport).
    /// Default [`DEFAULT_SESSION_QUEUE_BYTES`], 8 MiB.
    pub session_queue_bytes: Option<usize>,
    /// `[[wamp.realm]]` tables: realms with their own users and roles, which exist from the
    /// start. None by default (only `realm1`).
    #[serde(default, rename = "realm")]
    pub realms: Vec<RealmSettings>,
}

/// `[[wamp.realm]]`: a realm with its own users and roles.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealmSettings {
    /// The realm's URI, as HELLO names it; must be a valid URI and configured once.
    pub name: String,
    /// Whether sessions may join without authenticating (authrole `anonymous`). Default `true`.
    #[serde(default = "yes")]
    pub anonymous: bool,
    /// Without roles every session may do everything; with roles only what its role allows.
    #[serde(rename = "role")]
    pub roles: Option<Vec<RoleSettings>>,
    /// `[[wamp.realm.user]]` tables: who may authenticate to this realm. None by default.
    #[serde(default, rename = "user")]
    pub users: Vec<UserSettings>,
}

fn yes() -> bool {
    true
}

/// `[[wamp.realm.role]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSettings {
    /// The authrole this role's rules apply to; users name it in their `role`.
    pub name: String,
    /// `[[wamp.realm.role.permission]]` tables, the role's rules; none means it may do nothing.
    #[serde(default, rename = "permission")]
    pub permissions: Vec<PermissionSettings>,
}

/// `[[wamp.realm.role.permission]]`: what a role may do on the URIs a pattern matches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionSettings {
    /// The URI pattern the rule covers, read under `match`; `""` with `prefix` covers every URI.
    pub uri: String,
    /// `match`: how `uri` matches (`exact`, `prefix`, `wildcard`). Default `exact`.
    #[serde(default, rename = "match")]
    pub policy: MatchPolicy,
    /// The operations allowed (`publish`, `subscribe`, `register`, `call`); empty by default,
    /// so a rule without `allow` denies what it matches.
    #[serde(default)]
    pub allow: Vec<Operation>,
    /// Calls and publications allowed by this rule name their caller or publisher.
    #[serde(default)]
    pub disclose: bool,
}

/// `[[wamp.realm.user]]`: a principal and its secrets, one per authentication method.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    /// The name the user authenticates as (HELLO's `authid`).
    pub authid: String,
    /// The authrole the user's sessions get; with `[[wamp.realm.role]]`s it must be one of them.
    pub role: String,
    /// The user's ticket, for the `ticket` method.
    pub ticket: Option<String>,
    /// The user's secret for the `wampcra` method.
    pub wampcra: Option<WampCraSettings>,
    /// Ed25519 public keys, 64 hex digits each.
    #[serde(default)]
    pub cryptosign: Vec<String>,
}

/// A user's WAMP-CRA secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WampCraSettings {
    /// The shared secret, or the password the key is derived from when there is a salt.
    pub secret: String,
    /// With a salt the key is PBKDF2(secret, salt, iterations, keylen), as Autobahn derives it.
    pub salt: Option<String>,
    /// PBKDF2 iterations, with a salt only. Default 1000, as in Autobahn.
    pub iterations: Option<u32>,
    /// Length in bytes of the derived key, with a salt only. Default 32, as in Autobahn.
    pub keylen: Option<u32>,
}

/// What is wrong with [`Settings`], naming the realm, role or user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("wamp realm {realm:?}{}: {problem}", who.as_deref().map(|w| format!(" {w}")).unwrap_or_default())]
pub struct ConfigError {
    /// The name of the realm whose settings are wrong.
    pub realm: String,
    /// `role "NAME"` or `user "AUTHID"`, where the problem is in one.
    pub who: Option<String>,
    /// What is wrong, for people: "not a valid URI", "no ticket, wampcra or cryptosign", ...
    pub problem: String,
}

impl Settings {
    /// Bytes queued for one session before it counts as slow.
    pub fn session_queue_bytes(&self) -> usize {
        self.session_queue_bytes
            .unwrap_or(DEFAULT_SESSION_QUEUE_BYTES)
    }

    /// The router settings, or what is wrong with them.
    pub fn router_config(&self) -> Result<RouterConfig, ConfigError> {
        let defaults = RouterConfig::default();
        let mut config = RouterConfig {
            auto_create_realms: self
                .auto_create_realms
                .unwrap_or(defaults.auto_create_realms),
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
            let fail = |who: Option<String>, problem: String| ConfigError {
                realm: realm.name.clone(),
                who,
                problem,
            };
            if !uri::is_valid(&realm.name, UriCheck::Loose) {
                return Err(fail(None, "not a valid URI".into()));
            }
            if self.realms[..i].iter().any(|r| r.name == realm.name) {
                return Err(fail(None, "configured twice".into()));
            }
            let roles = match &realm.roles {
                None => None,
                Some(roles) => Some(
                    roles
                        .iter()
                        .map(|r| {
                            r.role()
                                .map_err(|p| fail(Some(format!("role {:?}", r.name)), p))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let mut users = Vec::new();
            for u in &realm.users {
                let who = || Some(format!("user {:?}", u.authid));
                if let Some(roles) = &roles {
                    if !roles.iter().any(|r| r.name == u.role) {
                        return Err(fail(who(), format!("no role {:?} in this realm", u.role)));
                    }
                }
                users.push(u.user().map_err(|p| fail(who(), p))?);
            }
            config.realm_configs.push(RealmConfig {
                name: realm.name.clone(),
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

impl RoleSettings {
    fn role(&self) -> Result<AuthRole, String> {
        let mut permissions = Vec::new();
        for p in &self.permissions {
            if !uri::is_valid_pattern(&p.uri, p.policy, UriCheck::Loose) {
                return Err(format!(
                    "{:?} is not a valid {} pattern",
                    p.uri,
                    p.policy.as_str()
                ));
            }
            let mut permission = Permission::only(&p.uri, p.policy, &p.allow);
            permission.disclose = p.disclose;
            permissions.push(permission);
        }
        Ok(AuthRole {
            name: self.name.clone(),
            permissions,
        })
    }
}

impl UserSettings {
    fn user(&self) -> Result<User, String> {
        let mut secrets = Vec::new();
        if let Some(t) = &self.ticket {
            secrets.push(Secret::Ticket(t.clone()));
        }
        if let Some(cra) = &self.wampcra {
            let salt = match (&cra.salt, cra.iterations, cra.keylen) {
                (None, None, None) => None,
                (Some(salt), iterations, keylen) => Some(Salt {
                    salt: salt.clone(),
                    // Autobahn's defaults.
                    iterations: iterations.unwrap_or(1000),
                    keylen: keylen.unwrap_or(32),
                }),
                _ => return Err("iterations and keylen need a salt".into()),
            };
            secrets.push(Secret::WampCra {
                secret: cra.secret.clone(),
                salt,
            });
        }
        if !self.cryptosign.is_empty() {
            let keys = self
                .cryptosign
                .iter()
                .map(|k| {
                    crate::auth::hex32(k)
                        .ok_or_else(|| format!("cryptosign key {k:?} is not 64 hex digits"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            secrets.push(Secret::Cryptosign { public_keys: keys });
        }
        if secrets.is_empty() {
            return Err("no ticket, wampcra or cryptosign".into());
        }
        Ok(User {
            authid: self.authid.clone(),
            authrole: self.role.clone(),
            secrets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `text` as a settings file with a `[wamp]` section, as `sockeye serve` does.
    fn parse(text: &str) -> Result<RouterConfig, String> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            wamp: Settings,
        }
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        file.wamp.router_config().map_err(|e| e.to_string())
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
        use crate::auth::{authorize, Operation, Secret, Verdict};
        let c = parse(WAMP).unwrap();
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
            let err = parse(text).unwrap_err();
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
