//! Our WAMP router between Autobahn peers of two languages — autobahn-python (asyncio, from the
//! venv that `scripts/setup-python.sh` makes) and autobahn-js (Node, from `interop/wamp-js`,
//! set up by `scripts/setup-wamp-js.sh`) — plus this repository's own Rust client:
//!
//! - RPC: a callee in one language, a caller in another: plain results, args/kwargs round
//!   trips, progressive results, errors with args/kwargs, `no_such_procedure`, caller
//!   disclosure;
//! - PubSub: a subscriber in one language, a publisher in another, exact and prefix
//!   subscriptions;
//! - each with JSON and MessagePack, on the same serializer and crossed (and CBOR once each);
//! - this crate's Rust client as a caller and a subscriber against both Autobahns;
//! - authentication: ticket, WAMP-CRA (plain and salted) and cryptosign (autobahn-js only: the
//!   venv has no `autobahn[encryption]`), accepted and refused;
//! - authorization (autobahn-python refused by its role with `not_authorized`), call timeouts
//!   (the router cancels the call for a Python and a JS caller and interrupts the Python
//!   callee), registration meta events (seen by autobahn-python when autobahn-js registers).
//!
//! The router runs in-process on a loopback port, as `sockeye serve` mounts it. Without a peer
//! these tests say so and pass, unless `SOCKEYE_REQUIRE_INTEROP=1` (set by `scripts/test.sh`),
//! when a missing peer is a failure.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value as J;
use sockeye_wamp::client::{Client, ClientError};
use sockeye_wamp::proto::auth::{
    hex32, AuthConfig, AuthRole, Operation, Permission, Salt, Secret, User,
};
use sockeye_wamp::proto::router::RealmConfig;
use sockeye_wamp::{
    dict, Dict, MatchPolicy, Payload, RouterConfig, Serializer, TransportConfig, Value, WampRouter,
};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdout, Command};
use tokio::time::timeout;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn required() -> bool {
    std::env::var("SOCKEYE_REQUIRE_INTEROP").as_deref() == Ok("1")
}

fn missing(what: &str, fix: &str) {
    if required() {
        panic!("{what} is missing: {fix}");
    }
    eprintln!("skipping: {what} is missing ({fix})");
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Lang {
    Python,
    Js,
}

/// The command that runs a peer of `lang`, if it is installed.
fn peer_command(lang: Lang) -> Option<Command> {
    match lang {
        Lang::Python => {
            let py = std::env::var_os("SOCKEYE_PYTHON")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo().join("interop/.venv/bin/python"));
            let ok = std::process::Command::new(&py)
                .args(["-c", "import autobahn.asyncio, msgpack"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                missing("autobahn-python", "run scripts/setup-python.sh");
                return None;
            }
            let mut cmd = Command::new(py);
            cmd.arg(repo().join("interop/python/wamp_peer.py"));
            Some(cmd)
        }
        Lang::Js => {
            let dir = repo().join("interop/wamp-js");
            let node_ok = std::process::Command::new("node")
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !node_ok || !dir.join("node_modules/autobahn").exists() {
                missing("autobahn-js", "run scripts/setup-wamp-js.sh");
                return None;
            }
            let mut cmd = Command::new("node");
            cmd.arg(dir.join("peer.js"));
            Some(cmd)
        }
    }
}

async fn router() -> String {
    router_with(RouterConfig::default()).await
}

async fn router_with(config: RouterConfig) -> String {
    let router = WampRouter::new(config, TransportConfig::default());
    listen(move |upgrade, _| {
        let router = router.clone();
        async move {
            let _ = router.serve(upgrade).await;
        }
    })
    .await
}

/// Serves `handler` on a free loopback port, as `sockeye serve` mounts the router; the URL.
async fn listen<F, Fut>(handler: F) -> String
where
    F: Fn(sockeye::Upgrade<tokio::net::TcpStream>, std::net::SocketAddr) -> Fut
        + Clone
        + Send
        + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/wamp", listener.local_addr().unwrap());
    tokio::spawn(sockeye::serve(
        listener,
        sockeye::Config::default(),
        handler,
    ));
    url
}

struct Peer {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    name: String,
}

impl Peer {
    async fn spawn(lang: Lang, url: &str, serializer: &str, role: &str) -> Option<Peer> {
        Self::spawn_env(lang, url, serializer, role, None).await
    }

    async fn spawn_env(
        lang: Lang,
        url: &str,
        serializer: &str,
        role: &str,
        auth: Option<J>,
    ) -> Option<Peer> {
        Self::spawn_in(lang, url, "realm1", serializer, role, auth).await
    }

    async fn spawn_in(
        lang: Lang,
        url: &str,
        realm: &str,
        serializer: &str,
        role: &str,
        auth: Option<J>,
    ) -> Option<Peer> {
        let mut cmd = peer_command(lang)?;
        if let Some(auth) = auth {
            cmd.env("WAMP_AUTH", auth.to_string());
        }
        let mut child = cmd
            .args([url, realm, serializer, role])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn peer");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Some(Peer {
            child,
            lines,
            name: format!("{lang:?} {role} ({serializer})"),
        })
    }

    async fn line(&mut self) -> J {
        let line = timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{}: no output within 30 s", self.name))
            .unwrap()
            .unwrap_or_else(|| panic!("{}: exited early", self.name));
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", self.name))
    }

    /// Reads lines until one has `key`; fails on any failed check on the way.
    async fn until(&mut self, key: &str) -> (J, Vec<J>) {
        let mut checks = Vec::new();
        loop {
            let v = self.line().await;
            if v.get("check").is_some() {
                assert_eq!(v["ok"], true, "{}: check failed: {v}", self.name);
                checks.push(v);
            } else if v.get(key).is_some() {
                return (v, checks);
            } else if v.get("closed").is_some() {
                panic!("{}: session closed: {v}", self.name);
            }
        }
    }

    async fn exits_cleanly(mut self) {
        let status = timeout(Duration::from_secs(20), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{}: did not exit", self.name))
            .unwrap();
        assert!(status.success(), "{}: {status}", self.name);
    }
}

/// Starts the peer `first` (language, serializer, role) and, once it is ready (registered or
/// subscribed), `second`: what `second` does must not race ahead of it. None when either
/// language's peer is not installed.
async fn ready_then(
    url: &str,
    first: (Lang, &str, &str),
    second: (Lang, &str, &str),
) -> Option<(Peer, Peer)> {
    let mut a = Peer::spawn(first.0, url, first.1, first.2).await?;
    a.until("ready").await;
    let b = Peer::spawn(second.0, url, second.1, second.2).await?;
    Some((a, b))
}

/// The names of the checks a peer passed, in order.
fn check_names(checks: &[J]) -> Vec<&str> {
    checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect()
}

/// A callee in one language, a caller in another.
async fn rpc(callee: Lang, callee_ser: &str, caller: Lang, caller_ser: &str) {
    let url = router().await;
    let Some((c, mut k)) = ready_then(
        &url,
        (callee, callee_ser, "callee"),
        (caller, caller_ser, "caller"),
    )
    .await
    else {
        return;
    };
    let (_, checks) = k.until("done").await;
    assert_eq!(
        check_names(&checks),
        [
            "add2",
            "echo args/kwargs",
            "progressive results",
            "error with args/kwargs",
            "no such procedure",
            "caller disclosure"
        ],
        "{} -> {}",
        k.name,
        c.name
    );
    // Disclosure is asked for by the JS caller (disclose_me) or the JS callee
    // (disclose_caller); autobahn-python 26 can do neither.
    let who = &checks.last().unwrap()["detail"];
    if callee == Lang::Js || caller == Lang::Js {
        assert_eq!(who["who"], who["me"], "{} -> {}", k.name, c.name);
    } else {
        assert_eq!(who["who"], J::Null, "{} -> {}", k.name, c.name);
    }
    k.exits_cleanly().await;
}

/// A subscriber in one language, a publisher in another.
async fn pubsub(subscriber: Lang, sub_ser: &str, publisher: Lang, pub_ser: &str) {
    let url = router().await;
    let Some((mut s, mut p)) = ready_then(
        &url,
        (subscriber, sub_ser, "subscriber"),
        (publisher, pub_ser, "publisher"),
    )
    .await
    else {
        return;
    };
    let (published, _) = p.until("published").await;
    assert_eq!(published["published"], 5);
    let (events, _) = s.until("events").await;
    let want = serde_json::json!([
        {"args": [1, "msg 1"], "kwargs": {"i": 1, "s": "ü"}, "topic": "com.interop.topic"},
        {"args": [2, "msg 2"], "kwargs": {"i": 2, "s": "ü"}, "topic": "com.interop.topic"},
        {"args": [3, "msg 3"], "kwargs": {"i": 3, "s": "ü"}, "topic": "com.interop.topic"},
        {"args": ["via prefix"], "kwargs": {}, "topic": "com.interop.prefix.sub"},
        {"args": [], "kwargs": {"last": true}, "topic": "com.interop.topic"},
    ]);
    // Both Autobahns fill in `topic` themselves for exact subscriptions; for the prefix one it
    // comes from the router.
    assert_eq!(events["events"], want, "{} -> {}", p.name, s.name);
    p.exits_cleanly().await;
    s.exits_cleanly().await;
}

macro_rules! matrix {
    ($($name:ident: $f:ident($a:ident, $as:literal, $b:ident, $bs:literal);)*) => {$(
        #[tokio::test]
        async fn $name() {
            $f(Lang::$a, $as, Lang::$b, $bs).await;
        }
    )*};
}

matrix! {
    rpc_python_callee_js_caller_json: rpc(Python, "json", Js, "json");
    rpc_python_callee_js_caller_msgpack: rpc(Python, "msgpack", Js, "msgpack");
    rpc_js_callee_python_caller_json: rpc(Js, "json", Python, "json");
    rpc_js_callee_python_caller_msgpack: rpc(Js, "msgpack", Python, "msgpack");
    rpc_python_json_callee_js_msgpack_caller: rpc(Python, "json", Js, "msgpack");
    rpc_js_msgpack_callee_python_json_caller: rpc(Js, "msgpack", Python, "json");
    rpc_python_callee_python_caller_cbor: rpc(Python, "cbor", Python, "cbor");
    rpc_js_callee_js_caller_cbor: rpc(Js, "cbor", Js, "cbor");
    pubsub_python_subscriber_js_publisher_json: pubsub(Python, "json", Js, "json");
    pubsub_python_subscriber_js_publisher_msgpack: pubsub(Python, "msgpack", Js, "msgpack");
    pubsub_js_subscriber_python_publisher_json: pubsub(Js, "json", Python, "json");
    pubsub_js_subscriber_python_publisher_msgpack: pubsub(Js, "msgpack", Python, "msgpack");
    pubsub_js_json_subscriber_python_msgpack_publisher: pubsub(Js, "json", Python, "msgpack");
    pubsub_python_msgpack_subscriber_js_json_publisher: pubsub(Python, "msgpack", Js, "json");
}

/// This repository's Rust client as the caller, against an Autobahn callee.
async fn rust_caller(callee: Lang, callee_ser: &str, serializer: Serializer) {
    let url = router().await;
    let Some(mut c) = Peer::spawn(callee, &url, callee_ser, "callee").await else {
        return;
    };
    c.until("ready").await;
    let client = Client::connect(&url, "realm1", serializer).await.unwrap();
    let r = client
        .call(
            "com.interop.add2",
            Payload::Args(vec![2.into(), 3.into()]),
            Dict::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.payload.args(), &[Value::from(5)]);
    let echo = Payload::ArgsKwargs(
        vec![
            "héllo 🌍".into(),
            1.5.into(),
            Value::from(-7),
            Value::List(vec![1.into()]),
        ],
        dict! {"nested" => dict!{"s" => "ü"}, "big" => Value::from(9007199254740991u64)},
    );
    let r = client
        .call("com.interop.echo", echo.clone(), Dict::new())
        .await
        .unwrap();
    assert_eq!(r.payload, echo);
    let mut call = client
        .start_call(
            "com.interop.countdown",
            Payload::Args(vec![3.into()]),
            dict! {"receive_progress" => true},
        )
        .unwrap();
    let mut seen = Vec::new();
    while let Some(r) = timeout(Duration::from_secs(10), call.next()).await.unwrap() {
        let r = r.unwrap();
        seen.push((r.is_progress(), r.payload.args()[0].clone()));
    }
    assert_eq!(
        seen,
        [
            (true, 3.into()),
            (true, 2.into()),
            (true, 1.into()),
            (false, "liftoff".into())
        ]
    );
    match client
        .call("com.interop.fail", Payload::Empty, Dict::new())
        .await
    {
        Err(ClientError::Wamp { error, payload, .. }) => {
            assert_eq!(error, "com.interop.error.failed");
            assert_eq!(
                payload,
                Payload::ArgsKwargs(vec![1.into(), "two".into()], dict! {"why" => "because"})
            );
        }
        other => panic!("{other:?}"),
    }
    let who = client
        .call(
            "com.interop.whoami",
            Payload::Empty,
            dict! {"disclose_me" => true},
        )
        .await
        .unwrap();
    assert_eq!(who.payload.args(), &[Value::from(client.session_id())]);
    client.leave().await.unwrap();
}

/// This repository's Rust client as the subscriber, against an Autobahn publisher.
async fn rust_subscriber(publisher: Lang, pub_ser: &str, serializer: Serializer) {
    let url = router().await;
    if peer_command(publisher).is_none() {
        return;
    }
    let client = Client::connect(&url, "realm1", serializer).await.unwrap();
    let mut exact = client
        .subscribe("com.interop.topic", Dict::new())
        .await
        .unwrap();
    let mut prefix = client
        .subscribe("com.interop.prefix", dict! {"match" => "prefix"})
        .await
        .unwrap();
    let mut p = Peer::spawn(publisher, &url, pub_ser, "publisher")
        .await
        .unwrap();
    p.until("published").await;
    for i in 1..=3i64 {
        let ev = timeout(Duration::from_secs(10), exact.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ev.payload,
            Payload::ArgsKwargs(
                vec![i.into(), format!("msg {i}").into()],
                dict! {"i" => i, "s" => "ü"}
            )
        );
    }
    let ev = timeout(Duration::from_secs(10), prefix.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.payload.args(), &[Value::from("via prefix")]);
    assert_eq!(ev.details.get_str("topic"), Some("com.interop.prefix.sub"));
    let last = timeout(Duration::from_secs(10), exact.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        last.payload.kwargs().and_then(|k| k.get_bool("last")),
        Some(true)
    );
    p.exits_cleanly().await;
}

#[tokio::test]
async fn rust_caller_python_callee_msgpack() {
    rust_caller(Lang::Python, "msgpack", Serializer::MsgPack).await;
}

#[tokio::test]
async fn rust_caller_js_callee_json() {
    rust_caller(Lang::Js, "json", Serializer::Json).await;
}

#[tokio::test]
async fn rust_subscriber_python_publisher_json() {
    rust_subscriber(Lang::Python, "json", Serializer::Cbor).await;
}

#[tokio::test]
async fn rust_subscriber_js_publisher_msgpack() {
    rust_subscriber(Lang::Js, "msgpack", Serializer::MsgPack).await;
}

// ---- authentication ----

fn auth_config() -> RouterConfig {
    let mut config = RouterConfig::default();
    config.auth = {
        let mut config = AuthConfig::default();
        config.allow_anonymous = false;
        config.users = vec![
            User {
                authid: "joe".into(),
                authrole: "frontend".into(),
                secrets: vec![
                    Secret::Ticket("secret!!!".into()),
                    Secret::WampCra {
                        secret: "cra-secret".into(),
                        salt: None,
                    },
                ],
            },
            User {
                authid: "peter".into(),
                authrole: "backend".into(),
                secrets: vec![
                    // Stored salted: the router keeps only what PBKDF2 derives.
                    Secret::WampCra {
                        secret: "prq7+YkJ1/KlW1X0YczMHw==".into(),
                        salt: Some(Salt {
                            salt: "salt123".into(),
                            iterations: 100,
                            keylen: 16,
                        }),
                    },
                    // The Ed25519 key whose seed is 32 bytes of 7.
                    Secret::Cryptosign {
                        public_keys: vec![hex32(
                            "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c",
                        )
                        .unwrap()],
                    },
                ],
            },
        ];
        config
    };
    config
}

/// Joins with `auth` and returns what the peer printed first: its WELCOME or why it closed.
async fn authenticate(lang: Lang, serializer: &str, auth: J) -> Option<J> {
    let url = router_with(auth_config()).await;
    let mut p = Peer::spawn_env(lang, &url, serializer, "auth", Some(auth)).await?;
    let first = p.line().await;
    let _ = timeout(Duration::from_secs(20), p.child.wait()).await;
    Some(first)
}

async fn auth_ok(lang: Lang, serializer: &str, auth: J, authid: &str, authrole: &str) {
    let method = auth["method"].clone();
    let Some(got) = authenticate(lang, serializer, auth).await else {
        return;
    };
    assert_eq!(
        got,
        serde_json::json!({"welcome": {"authid": authid, "authrole": authrole, "authmethod": method}}),
        "{lang:?} {serializer}"
    );
}

async fn auth_refused(lang: Lang, serializer: &str, auth: J) {
    let Some(got) = authenticate(lang, serializer, auth).await else {
        return;
    };
    let text = got.to_string();
    assert!(
        got.get("closed").is_some() && text.contains("wamp.error.authentication_failed"),
        "{lang:?} {serializer}: {text}"
    );
}

/// Tests that each join with the credentials given and must be welcomed as that authid, in
/// that role, by the method the credentials name.
macro_rules! auth_accepted {
    ($(
        $name:ident: $lang:ident $ser:literal, $auth:tt => $authid:literal as $authrole:literal;
    )*) => {$(
        #[tokio::test]
        async fn $name() {
            auth_ok(Lang::$lang, $ser, serde_json::json!($auth), $authid, $authrole).await;
        }
    )*};
}

auth_accepted! {
    auth_ticket_js_json: Js "json",
        {"method": "ticket", "authid": "joe", "secret": "secret!!!"} => "joe" as "frontend";
    auth_ticket_python_msgpack: Python "msgpack",
        {"method": "ticket", "authid": "joe", "secret": "secret!!!"} => "joe" as "frontend";
    auth_wampcra_js_msgpack: Js "msgpack",
        {"method": "wampcra", "authid": "joe", "secret": "cra-secret"} => "joe" as "frontend";
    auth_wampcra_salted_js_json: Js "json",
        {"method": "wampcra", "authid": "peter", "secret": "prq7+YkJ1/KlW1X0YczMHw=="}
        => "peter" as "backend";
    auth_wampcra_salted_python_json: Python "json",
        {"method": "wampcra", "authid": "peter", "secret": "prq7+YkJ1/KlW1X0YczMHw=="}
        => "peter" as "backend";
    auth_cryptosign_js_json: Js "json",
        {"method": "cryptosign", "authid": "peter", "seed_hex": "07".repeat(32)}
        => "peter" as "backend";
}

#[tokio::test]
async fn auth_wrong_secrets_are_refused() {
    let bad_cra = serde_json::json!({"method": "wampcra", "authid": "peter", "secret": "nope"});
    auth_refused(Lang::Js, "json", bad_cra.clone()).await;
    auth_refused(Lang::Python, "msgpack", bad_cra).await;
    let bad_ticket = serde_json::json!({"method": "ticket", "authid": "joe", "secret": "nope"});
    auth_refused(Lang::Python, "json", bad_ticket.clone()).await;
    auth_refused(Lang::Js, "msgpack", bad_ticket).await;
}

// ---- authorization, call timeouts, meta events ----

#[tokio::test]
async fn authorization_python_denied_by_its_role_gets_not_authorized() {
    // Realm "guarded": anonymous sessions may only subscribe under com.open.
    let url = router_with({
        let mut config = RouterConfig::default();
        config.realm_configs = vec![{
            let mut config = RealmConfig::default();
            config.name = "guarded".into();
            config.auth = None;
            config.roles = Some(vec![AuthRole {
                name: "anonymous".into(),
                permissions: vec![Permission::only(
                    "com.open.",
                    MatchPolicy::Prefix,
                    &[Operation::Subscribe],
                )],
            }]);
            config
        }];
        config
    })
    .await;
    let Some(mut p) = Peer::spawn_in(Lang::Python, &url, "guarded", "json", "denied", None).await
    else {
        return;
    };
    let (_, checks) = p.until("done").await;
    assert_eq!(
        check_names(&checks),
        [
            "call denied",
            "register denied",
            "subscribe denied",
            "publish denied",
            "subscribe allowed"
        ]
    );
    p.exits_cleanly().await;
}

/// A callee that never answers (autobahn-python), called with a 300 ms timeout by `caller`:
/// the router's timer fails the call with wamp.error.timeout and interrupts the callee.
async fn call_timeout(caller: Lang, serializer: &str) {
    let url = router().await;
    let Some((mut callee, mut k)) = ready_then(
        &url,
        (Lang::Python, "msgpack", "slow_callee"),
        (caller, serializer, "timeout_caller"),
    )
    .await
    else {
        return;
    };
    let (_, checks) = k.until("done").await;
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0]["check"], "call timeout");
    let (interrupted, _) = callee.until("interrupted").await;
    assert_eq!(interrupted["interrupted"], true);
    k.exits_cleanly().await;
}

#[tokio::test]
async fn call_timeout_js_caller_python_callee_json() {
    call_timeout(Lang::Js, "json").await;
}

#[tokio::test]
async fn call_timeout_python_caller_python_callee_msgpack() {
    call_timeout(Lang::Python, "msgpack").await;
}

#[tokio::test]
async fn registration_meta_events_reach_a_python_subscriber_when_js_registers() {
    let url = router().await;
    let Some((mut w, mut c)) = ready_then(
        &url,
        (Lang::Python, "json", "meta_watcher"),
        (Lang::Js, "msgpack", "callee"),
    )
    .await
    else {
        return;
    };
    c.until("ready").await;
    let (meta, _) = w.until("meta").await;
    let meta = &meta["meta"];
    assert_eq!(meta["match"], "exact");
    // What the events said agrees with what the meta procedures say.
    let client = Client::connect(&url, "realm1", Serializer::Json)
        .await
        .unwrap();
    let lookup = client
        .call(
            "wamp.registration.lookup",
            Payload::Args(vec!["com.interop.add2".into()]),
            Dict::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        lookup.payload.args()[0].as_u64(),
        meta["registration"].as_u64()
    );
    let callees = client
        .call(
            "wamp.registration.list_callees",
            Payload::Args(vec![lookup.payload.args()[0].clone()]),
            Dict::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        callees.payload.args()[0],
        Value::List(vec![Value::from(meta["session"].as_u64().unwrap())])
    );
    w.exits_cleanly().await;
}

#[tokio::test]
async fn shutdown_goodbye_reaches_autobahn_python_as_system_shutdown() {
    let router = WampRouter::new(RouterConfig::default(), TransportConfig::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let url = listen(move |upgrade, _| {
        let router = router.clone();
        let mut stopped = stopped.clone();
        async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            let _ = router.serve_until(upgrade, shutdown).await;
        }
    })
    .await;
    let Some(mut s) = Peer::spawn(Lang::Python, &url, "json", "subscriber").await else {
        return;
    };
    s.until("ready").await;
    stop.send(true).unwrap();
    // autobahn-python's onLeave sees the router's GOODBYE reason, then the peer exits.
    let (closed, _) = s.until("closed_by_router").await;
    assert_eq!(closed["closed_by_router"], "wamp.close.system_shutdown");
    s.exits_cleanly().await;
}
