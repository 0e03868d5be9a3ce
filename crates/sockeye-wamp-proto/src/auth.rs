//! Authentication (WAMP spec, "Authentication"): the router's side of `ticket`, `wampcra`
//! (with salted keys, PBKDF2) and `cryptosign` (Ed25519), plus `anonymous`.
//!
//! ```text
//!   client                          router
//!   HELLO {authmethods, authid, authextra} ──>
//!                                  <── CHALLENGE (method, extra)
//!   AUTHENTICATE (signature) ──────>
//!                                  <── WELCOME {authid, authrole, authmethod}  or  ABORT
//! ```
//!
//! The router picks the first method in the client's `authmethods` that it can do for that
//! client (no `authmethods` means `["anonymous"]`). Pure functions of their inputs: the router
//! core supplies the randomness for challenges.

use base64::Engine as _;
use ring::{hmac, pbkdf2, signature};

use crate::uri::MatchPolicy;
use crate::value::Dict;

/// How a user proves who they are.
#[derive(Debug, Clone)]
pub enum Secret {
    /// `ticket`: a shared secret sent as is (use over TLS only).
    Ticket(String),
    /// `wampcra`: the client signs a challenge with HMAC-SHA256. With `salt`, the key is not
    /// the secret but PBKDF2-HMAC-SHA256(secret, salt, iterations, keylen), base64-encoded, as
    /// Autobahn derives it — so the router can store the derived key instead of the secret.
    WampCra {
        /// The shared secret (the password, when salted).
        secret: String,
        /// How the key is derived from `secret`; `None` signs with the secret itself.
        salt: Option<Salt>,
    },
    /// `cryptosign`: the client signs a random challenge with an Ed25519 key; these are the
    /// accepted public keys.
    Cryptosign {
        /// Raw Ed25519 public keys; a signature by any of them is accepted.
        public_keys: Vec<[u8; 32]>,
    },
}

/// PBKDF2 parameters of a salted WAMP-CRA secret.
#[derive(Debug, Clone)]
pub struct Salt {
    /// The salt, sent to the client in the CHALLENGE so it can derive the same key.
    pub salt: String,
    /// PBKDF2 iterations (Autobahn's default is 1000).
    pub iterations: u32,
    /// Length in bytes of the derived key (Autobahn's default is 32).
    pub keylen: u32,
}

/// A principal the router knows.
#[derive(Debug, Clone)]
pub struct User {
    /// The name the user authenticates as (HELLO's `authid`), reported in WELCOME.
    pub authid: String,
    /// The role the user's sessions get, which authorization judges them by.
    pub authrole: String,
    /// One secret per method the user may use.
    pub secrets: Vec<Secret>,
}

/// Who may join.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthConfig {
    /// Whether `anonymous` is accepted (and assumed when a HELLO names no authmethods).
    pub allow_anonymous: bool,
    /// The users who may authenticate with `ticket`, `wampcra` or `cryptosign`, found by the
    /// HELLO's `authid`.
    pub users: Vec<User>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            allow_anonymous: true,
            users: Vec::new(),
        }
    }
}

/// Something a session does with a URI, each authorized separately (WAMP spec,
/// "Authorization").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// PUBLISH to a topic.
    Publish,
    /// SUBSCRIBE to a topic or topic pattern.
    Subscribe,
    /// REGISTER a procedure or procedure pattern.
    Register,
    /// CALL a procedure.
    Call,
}

/// One rule of a role: which operations are allowed on the URIs a pattern matches.
#[derive(Debug, Clone)]
pub struct Permission {
    /// The URI pattern, matched as subscriptions are: `exact`, `prefix` (on the string) or
    /// `wildcard` (empty components match any one component). A `prefix` of `""` matches
    /// every URI.
    pub uri: String,
    /// How `uri` matches.
    pub policy: MatchPolicy,
    /// Whether the rule allows PUBLISH.
    pub publish: bool,
    /// Whether the rule allows SUBSCRIBE.
    pub subscribe: bool,
    /// Whether the rule allows REGISTER.
    pub register: bool,
    /// Whether the rule allows CALL.
    pub call: bool,
    /// Calls and publications this rule allows always name their caller or publisher to the
    /// callee or subscribers, as if they had asked with `disclose_me`.
    pub disclose: bool,
}

impl Permission {
    /// Every operation on the URIs `uri` matches with `policy`.
    pub fn all(uri: &str, policy: MatchPolicy) -> Self {
        Permission {
            uri: uri.to_owned(),
            policy,
            publish: true,
            subscribe: true,
            register: true,
            call: true,
            disclose: false,
        }
    }

    /// Only the given operations.
    pub fn only(uri: &str, policy: MatchPolicy, ops: &[Operation]) -> Self {
        Permission {
            publish: ops.contains(&Operation::Publish),
            subscribe: ops.contains(&Operation::Subscribe),
            register: ops.contains(&Operation::Register),
            call: ops.contains(&Operation::Call),
            ..Permission::all(uri, policy)
        }
    }

    fn allows(&self, op: Operation) -> bool {
        match op {
            Operation::Publish => self.publish,
            Operation::Subscribe => self.subscribe,
            Operation::Register => self.register,
            Operation::Call => self.call,
        }
    }
}

/// A role of a realm: the `authrole` sessions get from authentication, and its rules.
#[derive(Debug, Clone)]
pub struct AuthRole {
    /// The authrole this role applies to.
    pub name: String,
    /// The role's rules; see [`authorize`] for which one decides.
    pub permissions: Vec<Permission>,
}

/// The verdict on one operation: denied, or allowed by a rule (which may ask for disclosure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No rule allows it: the router answers ERROR `wamp.error.not_authorized`.
    Denied,
    /// The deciding rule allows it.
    Allowed {
        /// Whether the rule asks to name the caller or publisher (see [`Permission::disclose`]).
        disclose: bool,
    },
}

/// Decides an operation on `uri` for a session of role `authrole`, among `roles`.
///
/// Of the role's rules whose pattern matches the URI, the most specific one decides, as the
/// dealer picks a registration: an exact rule first, then the longest matching prefix, then
/// the wildcard with the most literal components. No matching rule, or an unknown role,
/// denies. For SUBSCRIBE and REGISTER with a pattern, the pattern itself is the URI judged.
pub fn authorize(roles: &[AuthRole], authrole: &str, op: Operation, uri: &str) -> Verdict {
    let Some(role) = roles.iter().find(|r| r.name == authrole) else {
        return Verdict::Denied;
    };
    let matching = || {
        role.permissions
            .iter()
            .filter(move |p| crate::uri::matches(&p.uri, p.policy, uri))
    };
    let best = matching()
        .find(|p| p.policy == MatchPolicy::Exact)
        .or_else(|| {
            matching()
                .filter(|p| p.policy == MatchPolicy::Prefix)
                .max_by_key(|p| p.uri.len())
        })
        .or_else(|| {
            matching()
                .filter(|p| p.policy == MatchPolicy::Wildcard)
                .max_by_key(|p| crate::uri::wildcard_specificity(&p.uri))
        });
    match best {
        Some(p) if p.allows(op) => Verdict::Allowed {
            disclose: p.disclose,
        },
        _ => Verdict::Denied,
    }
}

/// What the router decided for a HELLO.
#[derive(Debug)]
pub(crate) enum Decision {
    Anonymous,
    /// Send CHALLENGE(method, extra) and wait for AUTHENTICATE.
    Challenge {
        method: &'static str,
        extra: Dict,
        pending: Pending,
    },
    /// No method the client offered can succeed.
    NoMethod,
}

/// A challenge waiting for its AUTHENTICATE.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub authid: String,
    pub authrole: String,
    pub method: &'static str,
    expect: Expect,
}

#[derive(Debug, Clone)]
enum Expect {
    Ticket(String),
    /// The expected base64 HMAC.
    WampCra(String),
    Cryptosign {
        key: [u8; 32],
        challenge: [u8; 32],
    },
}

impl AuthConfig {
    /// Chooses a method for a HELLO and prepares its challenge. `random` is 32 fresh random
    /// bytes; `session` goes into the WAMP-CRA challenge.
    pub(crate) fn decide(&self, details: &Dict, session: u64, random: [u8; 32]) -> Decision {
        let offered: Vec<&str> = match details.get_list("authmethods") {
            Some(l) => l.iter().filter_map(|v| v.as_str()).collect(),
            None => vec!["anonymous"],
        };
        let authid = details.get_str("authid");
        let user = |id: Option<&str>| id.and_then(|id| self.users.iter().find(|u| u.authid == id));
        for method in offered {
            match method {
                "anonymous" if self.allow_anonymous => return Decision::Anonymous,
                "ticket" => {
                    let Some(u) = user(authid) else { continue };
                    let Some(ticket) = u.secrets.iter().find_map(|s| match s {
                        Secret::Ticket(t) => Some(t.clone()),
                        _ => None,
                    }) else {
                        continue;
                    };
                    return Decision::Challenge {
                        method: "ticket",
                        extra: Dict::new(),
                        pending: Pending {
                            authid: u.authid.clone(),
                            authrole: u.authrole.clone(),
                            method: "ticket",
                            expect: Expect::Ticket(ticket),
                        },
                    };
                }
                "wampcra" => {
                    let Some(u) = user(authid) else { continue };
                    let Some((secret, salt)) = u.secrets.iter().find_map(|s| match s {
                        Secret::WampCra { secret, salt } => Some((secret, salt)),
                        _ => None,
                    }) else {
                        continue;
                    };
                    // The challenge is a JSON string the client signs as is; its content is
                    // informative (Autobahn shows it, Crossbar sends the same fields).
                    let nonce = base64::engine::general_purpose::STANDARD.encode(random);
                    let challenge = serde_json::json!({
                        "authid": u.authid,
                        "authrole": u.authrole,
                        "authmethod": "wampcra",
                        "authprovider": "static",
                        "session": session,
                        "nonce": nonce,
                    })
                    .to_string();
                    let key = match salt {
                        Some(s) => derive_key(secret, &s.salt, s.iterations, s.keylen),
                        None => secret.clone(),
                    };
                    let expect = Expect::WampCra(wampcra_sign(&key, &challenge));
                    let mut extra = Dict::new().with("challenge", challenge);
                    if let Some(s) = salt {
                        extra.insert("salt", s.salt.as_str());
                        extra.insert("iterations", u64::from(s.iterations));
                        extra.insert("keylen", u64::from(s.keylen));
                    }
                    return Decision::Challenge {
                        method: "wampcra",
                        extra,
                        pending: Pending {
                            authid: u.authid.clone(),
                            authrole: u.authrole.clone(),
                            method: "wampcra",
                            expect,
                        },
                    };
                }
                "cryptosign" => {
                    let Some(key) = details
                        .get_dict("authextra")
                        .and_then(|x| x.get_str("pubkey"))
                        .and_then(hex32)
                    else {
                        continue;
                    };
                    // The key names the user; an authid, if given, must agree.
                    let Some(u) = self.users.iter().find(|u| {
                        authid.is_none_or(|id| id == u.authid)
                            && u.secrets.iter().any(|s| {
                                matches!(s, Secret::Cryptosign { public_keys } if public_keys.contains(&key))
                            })
                    }) else {
                        continue;
                    };
                    return Decision::Challenge {
                        method: "cryptosign",
                        extra: Dict::new()
                            .with("challenge", hex::encode(random))
                            .with("channel_binding", crate::value::Value::Null),
                        pending: Pending {
                            authid: u.authid.clone(),
                            authrole: u.authrole.clone(),
                            method: "cryptosign",
                            expect: Expect::Cryptosign {
                                key,
                                challenge: random,
                            },
                        },
                    };
                }
                _ => {}
            }
        }
        Decision::NoMethod
    }
}

impl Pending {
    /// Whether AUTHENTICATE's signature answers the challenge.
    pub(crate) fn verify(&self, signature: &str) -> bool {
        match &self.expect {
            Expect::Ticket(t) => constant_time_eq(t.as_bytes(), signature.as_bytes()),
            Expect::WampCra(sig) => constant_time_eq(sig.as_bytes(), signature.as_bytes()),
            Expect::Cryptosign { key, challenge } => {
                // Autobahn sends hex(signature || challenge): 96 bytes; the bare 64-byte
                // signature is accepted too.
                let Ok(bytes) = hex::decode(signature) else {
                    return false;
                };
                let sig = match bytes.len() {
                    64 => &bytes[..],
                    96 if bytes[64..] == challenge[..] => &bytes[..64],
                    _ => return false,
                };
                signature::UnparsedPublicKey::new(&signature::ED25519, key)
                    .verify(challenge, sig)
                    .is_ok()
            }
        }
    }
}

/// WAMP-CRA's salted key: base64(PBKDF2-HMAC-SHA256(secret, salt, iterations, keylen)),
/// the same string autobahn-python's and autobahn-js's `derive_key` return.
pub fn derive_key(secret: &str, salt: &str, iterations: u32, keylen: u32) -> String {
    let mut out = vec![0u8; keylen as usize];
    let iterations = std::num::NonZeroU32::new(iterations.max(1)).expect("at least 1");
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt.as_bytes(),
        secret.as_bytes(),
        &mut out,
    );
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// WAMP-CRA's signature: base64(HMAC-SHA256(key, challenge)).
pub fn wampcra_sign(key: &str, challenge: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, challenge.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A 32-byte key from 64 hex digits.
pub fn hex32(s: &str) -> Option<[u8; 32]> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(s, &mut key).ok()?;
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_key_matches_autobahn() {
        // autobahn.wamp.auth.derive_key("secret123", "salt123", 100, 16) and
        // compute_wcs("key", "challenge"), autobahn-python 26.10.2
        assert_eq!(
            derive_key("secret123", "salt123", 100, 16),
            "DpHHRlQ6UNULJlP9J8WkPw=="
        );
        assert_eq!(
            wampcra_sign("key", "challenge"),
            "/pSWP7rGsIbPhx1COvS7X3o9wOYdN+THjRIqbMdRs+g="
        );
    }

    #[test]
    fn hex_helpers() {
        assert_eq!(hex32(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(hex32("abc"), None);
        assert!(hex32("zz").is_none());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
