//! This crate's client logging in to this crate's router over loopback WebSockets with
//! `ticket`, `wampcra` (plain and salted: the client derives the key with PBKDF2 from the
//! challenge's salt) and `cryptosign` (Ed25519), and being refused with wrong secrets.

// The user `joe` is the one the sans-I/O authentication tests know too.
#[path = "../../sockeye-wamp-proto/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use sockeye_wamp::client::{Client, ClientError, Credentials};
use sockeye_wamp::proto::auth::{AuthConfig, Salt, Secret, User};
use sockeye_wamp::{Dict, RouterConfig, Serializer, TransportConfig, WampRouter};
use tokio::time::timeout;

mod support;
use support::serve;

const SEED: [u8; 32] = [7; 32];
/// The Ed25519 public key of `SEED`.
const PUBKEY: &str = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";

async fn router() -> String {
    let salted = Salt {
        salt: "salt123".into(),
        iterations: 100,
        keylen: 16,
    };
    let mut config = RouterConfig::default();
    config.auth = {
        let mut config = AuthConfig::default();
        config.allow_anonymous = false;
        config.users = vec![
            common::joe(),
            User {
                authid: "peter".into(),
                authrole: "backend".into(),
                secrets: vec![
                    // Salted: the challenge carries the salt, the client derives the key.
                    Secret::WampCra {
                        secret: "peters-secret".into(),
                        salt: Some(salted),
                    },
                    Secret::Cryptosign {
                        public_keys: vec![sockeye_wamp::proto::auth::hex32(PUBKEY).unwrap()],
                    },
                ],
            },
        ];
        config
    };
    serve(WampRouter::new(config, TransportConfig::default())).await
}

async fn login(url: &str, credentials: Credentials) -> Result<Client, ClientError> {
    timeout(
        Duration::from_secs(10),
        Client::connect_with(url, "realm1", Serializer::Json, &credentials),
    )
    .await
    .expect("no answer within 10 s")
}

/// (authid, authrole, authmethod) from WELCOME.
fn who(client: &Client) -> (String, String, String) {
    let w = client.welcome();
    let s = |k: &str| w.get_str(k).unwrap_or_default().to_owned();
    (s("authid"), s("authrole"), s("authmethod"))
}

fn triple(a: &str, b: &str, c: &str) -> (String, String, String) {
    (a.into(), b.into(), c.into())
}

fn refused_with(r: Result<Client, ClientError>, reason: &str) {
    match r {
        Err(ClientError::Aborted { reason: got, .. }) => assert_eq!(got, reason),
        Err(other) => panic!("refused otherwise: {other}"),
        Ok(_) => panic!("not refused"),
    }
}

#[tokio::test]
async fn client_joins_with_a_ticket() {
    let url = router().await;
    let c = login(
        &url,
        Credentials::Ticket {
            authid: "joe".into(),
            ticket: "secret!!!".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(who(&c), triple("joe", "frontend", "ticket"));
    // The session works like any other.
    let r = c
        .call("wamp.session.count", Default::default(), Dict::new())
        .await
        .unwrap();
    assert_eq!(r.payload.args()[0].as_u64(), Some(1));
}

#[tokio::test]
async fn client_joins_with_wampcra_plain_and_salted() {
    let url = router().await;
    let c = login(
        &url,
        Credentials::WampCra {
            authid: "joe".into(),
            secret: "cra-secret".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(who(&c), triple("joe", "frontend", "wampcra"));
    let c = login(
        &url,
        Credentials::WampCra {
            authid: "peter".into(),
            secret: "peters-secret".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(who(&c), triple("peter", "backend", "wampcra"));
}

#[tokio::test]
async fn client_joins_with_cryptosign_with_or_without_an_authid() {
    let url = router().await;
    for authid in [Some("peter".to_owned()), None] {
        let c = login(
            &url,
            Credentials::Cryptosign {
                authid: authid.clone(),
                seed: SEED,
            },
        )
        .await
        .unwrap();
        assert_eq!(
            who(&c),
            triple("peter", "backend", "cryptosign"),
            "{authid:?}"
        );
    }
}

#[tokio::test]
async fn client_with_wrong_secrets_is_refused() {
    let url = router().await;
    refused_with(
        login(
            &url,
            Credentials::Ticket {
                authid: "joe".into(),
                ticket: "nope".into(),
            },
        )
        .await,
        "wamp.error.authentication_failed",
    );
    refused_with(
        login(
            &url,
            Credentials::WampCra {
                authid: "peter".into(),
                secret: "nope".into(),
            },
        )
        .await,
        "wamp.error.authentication_failed",
    );
    // Another key: the router knows no user for it, so no method is possible.
    refused_with(
        login(
            &url,
            Credentials::Cryptosign {
                authid: None,
                seed: [8; 32],
            },
        )
        .await,
        "wamp.error.no_auth_method",
    );
    refused_with(
        login(&url, Credentials::Anonymous).await,
        "wamp.error.no_auth_method",
    );
}
