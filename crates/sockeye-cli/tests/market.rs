//! The demo market of `sockeye serve` over WAMP at `/wamp` (issue 17): ticks, quotes, errors
//! and progressive history for this repository's own WAMP client, autobahn-python and
//! autobahn-js, against the real binary; the market ticks only while someone watches; and it
//! can be turned off.
//!
//! autobahn-python comes from the venv of `scripts/setup-python.sh` (`SOCKEYE_PYTHON`),
//! autobahn-js from `interop/wamp-js` (`scripts/setup-wamp-js.sh`). Without them those tests
//! say so and pass, unless `SOCKEYE_REQUIRE_INTEROP=1`, when a missing peer is a failure.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use sockeye_wamp::client::Client;
use sockeye_wamp::{Dict, Payload, Serializer, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::timeout;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn missing(what: &str, fix: &str) {
    if std::env::var("SOCKEYE_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("{what} is missing: {fix}");
    }
    eprintln!("skipping: {what} is missing ({fix})");
}

fn tick_of(payload: &Payload) -> &Dict {
    match payload.args().first() {
        Some(Value::Dict(tick)) => tick,
        other => panic!("not a tick: {other:?}"),
    }
}

fn seq(tick: &Dict) -> u64 {
    tick.get("seq").and_then(Value::as_u64).unwrap()
}

fn number(tick: &Dict, key: &str) -> f64 {
    match tick.get(key) {
        Some(Value::Float(x)) => *x,
        Some(v) => v.as_u64().unwrap() as f64,
        None => panic!("no {key} in {tick:?}"),
    }
}

/// Calls `procedure` with positional `args`.
async fn call(
    client: &Client,
    procedure: &str,
    args: Vec<Value>,
) -> Result<sockeye_wamp::client::CallResult, sockeye_wamp::client::ClientError> {
    client
        .call(procedure, Payload::Args(args), Dict::new())
        .await
}

async fn quote_seq(client: &Client, symbol: &str) -> u64 {
    let result = call(client, "demo.market.quote", vec![symbol.into()])
        .await
        .unwrap();
    seq(tick_of(&result.payload))
}

#[tokio::test]
async fn the_sockeye_client_gets_ticks_by_prefix_quotes_errors_and_progressive_history() {
    let (_server, addr) = common::start_one(&["--listen", "127.0.0.1:0"]).await;
    let url = format!("ws://{addr}/wamp");
    let client = Client::connect(&url, "realm1", Serializer::Json)
        .await
        .unwrap();
    let mut ticks = client
        .subscribe("demo.market.tick.", Dict::new().with("match", "prefix"))
        .await
        .unwrap();
    let mut last_seq = std::collections::HashMap::new();
    let started = std::time::Instant::now();
    // Ten rounds of ticks (enough for the default history): every symbol, each on its own
    // topic, in order.
    while last_seq.len() < 5 || last_seq.values().any(|(_, n)| *n < 10) {
        let event = timeout(Duration::from_secs(5), ticks.next())
            .await
            .expect("a tick within 5 s")
            .unwrap();
        let tick = tick_of(&event.payload);
        let symbol = tick.get_str("symbol").unwrap().to_owned();
        assert_eq!(
            event.details.get_str("topic"),
            Some(format!("demo.market.tick.{symbol}").as_str())
        );
        assert!(number(tick, "bid") < number(tick, "ask"), "{tick:?}");
        let entry = last_seq.entry(symbol).or_insert((0, 0));
        assert!(seq(tick) > entry.0, "ticks out of order: {tick:?}");
        *entry = (seq(tick), entry.1 + 1);
    }
    // Ten ticks a second per symbol: ten rounds take about a second.
    assert!(started.elapsed() < Duration::from_secs(3));

    let quote = call(&client, "demo.market.quote", vec!["SOCK".into()])
        .await
        .unwrap();
    let tick = tick_of(&quote.payload);
    assert_eq!(tick.get_str("symbol"), Some("SOCK"));
    assert!(tick.get_str("time").unwrap().ends_with('Z'));

    let unknown = call(&client, "demo.market.quote", vec!["NOPE".into()])
        .await
        .unwrap_err();
    assert_eq!(
        unknown.error_uri(),
        Some("demo.market.error.unknown_symbol")
    );
    let bad = call(&client, "demo.market.quote", vec![7.into()])
        .await
        .unwrap_err();
    assert_eq!(bad.error_uri(), Some("wamp.error.invalid_argument"));

    let mut history = client
        .start_call(
            "demo.market.history",
            Payload::Args(vec!["TOKIO".into(), 4u64.into()]),
            Dict::new().with("receive_progress", true),
        )
        .unwrap();
    let mut seqs = Vec::new();
    let last = loop {
        let result = history.next().await.unwrap().unwrap();
        if !result.is_progress() {
            break result;
        }
        let tick = tick_of(&result.payload);
        assert_eq!(tick.get_str("symbol"), Some("TOKIO"));
        seqs.push(seq(tick));
    };
    assert_eq!(last.payload.args(), &[Value::from(4u64)]);
    assert_eq!(seqs.len(), 4);
    assert!(seqs.windows(2).all(|w| w[0] + 1 == w[1]), "{seqs:?}");

    let all = call(&client, "demo.market.history", vec!["TOKIO".into()])
        .await
        .unwrap();
    match all.payload.args() {
        [Value::List(ticks)] => assert_eq!(ticks.len(), 10),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_market_ticks_only_while_a_subscription_watches_it() {
    let (_server, addr) = common::start_one(&["--listen", "127.0.0.1:0"]).await;
    let url = format!("ws://{addr}/wamp");
    let client = Client::connect(&url, "realm1", Serializer::Json)
        .await
        .unwrap();
    let idle = quote_seq(&client, "EYE").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        quote_seq(&client, "EYE").await,
        idle,
        "ticked with nobody watching"
    );

    // A wildcard subscription on one symbol's topic watches too.
    let mut one = client
        .subscribe("demo.market..EYE", Dict::new().with("match", "wildcard"))
        .await
        .unwrap();
    let event = timeout(Duration::from_secs(5), one.next())
        .await
        .expect("a tick once watched")
        .unwrap();
    assert_eq!(tick_of(&event.payload).get_str("symbol"), Some("EYE"));
    client.unsubscribe(one.id).await.unwrap();
    // The last tick may have been on its way; after that the market stands still again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = quote_seq(&client, "EYE").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        quote_seq(&client, "EYE").await,
        stopped,
        "ticked after the unsubscribe"
    );

    // A subscriber that goes away without unsubscribing stops it as well.
    let watcher = Client::connect(&url, "realm1", Serializer::MsgPack)
        .await
        .unwrap();
    let mut all = watcher
        .subscribe("demo.market.tick.", Dict::new().with("match", "prefix"))
        .await
        .unwrap();
    timeout(Duration::from_secs(5), all.next())
        .await
        .unwrap()
        .unwrap();
    drop(all);
    drop(watcher);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = quote_seq(&client, "EYE").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        quote_seq(&client, "EYE").await,
        stopped,
        "ticked after the subscriber left"
    );
}

#[tokio::test]
async fn without_the_market_its_procedures_do_not_exist() {
    let dir = std::env::temp_dir().join(format!("sockeye-market-off-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("serve.toml");
    std::fs::write(&file, "[endpoints]\nmarket = false\n").unwrap();
    let (_server, addr) = common::start_one(&[
        "--listen",
        "127.0.0.1:0",
        "--config",
        file.to_str().unwrap(),
    ])
    .await;
    let client = Client::connect(&format!("ws://{addr}/wamp"), "realm1", Serializer::Json)
        .await
        .unwrap();
    let err = call(&client, "demo.market.quote", vec!["SOCK".into()])
        .await
        .unwrap_err();
    assert_eq!(err.error_uri(), Some("wamp.error.no_such_procedure"));
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs one Autobahn peer's `market` role against a fresh `sockeye serve`; its checks must
/// all pass and it must say it is done.
async fn autobahn_market(mut command: tokio::process::Command, serializer: &str) {
    let (_server, addr) = common::start_one(&["--listen", "127.0.0.1:0"]).await;
    let mut child = command
        .args([&format!("ws://{addr}/wamp"), "realm1", serializer, "market"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut checks = Vec::new();
    loop {
        let line = timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the peer said nothing for 30 s")
            .unwrap()
            .expect("the peer exited before it was done");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v.get("check").is_some() {
            assert_eq!(v["ok"], true, "check failed: {v}");
            checks.push(v["check"].as_str().unwrap().to_owned());
        } else if v.get("done").is_some() {
            break;
        } else if v.get("closed").is_some() {
            panic!("session closed: {v}");
        }
    }
    assert_eq!(
        checks,
        [
            "ticks of every symbol, in order, on their topics",
            "symbols",
            "quote",
            "unknown symbol",
            "progressive history"
        ]
    );
}

#[tokio::test]
async fn autobahn_python_gets_ticks_quotes_errors_and_progressive_history() {
    let py = std::env::var_os("SOCKEYE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("interop/.venv/bin/python"));
    let ok = std::process::Command::new(&py)
        .args(["-c", "import autobahn.asyncio, msgpack"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return missing("autobahn-python", "run scripts/setup-python.sh");
    }
    let mut cmd = tokio::process::Command::new(py);
    cmd.arg(repo().join("interop/python/wamp_peer.py"));
    autobahn_market(cmd, "msgpack").await;
}

#[tokio::test]
async fn autobahn_js_gets_ticks_quotes_errors_and_progressive_history() {
    let dir = repo().join("interop/wamp-js");
    if !dir.join("node_modules/autobahn").exists() {
        return missing("autobahn-js", "run scripts/setup-wamp-js.sh");
    }
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(dir.join("peer.js"));
    autobahn_market(cmd, "json").await;
}
