//! Three `sockeye serve` nodes, each attached to its own server of a three-server NATS cluster
//! (JetStream on), driven by peers that are not ours: Python `websockets` chat clients
//! (`interop/python/chat_client.py`), autobahn-python (`interop/python/wamp_peer.py`) and
//! autobahn-js (`interop/wamp-js/peer.js`) WAMP peers, each on a different node. Then what those
//! clients see when a node is killed mid-call, a NATS server restarts, or a node is stopped and
//! resumed.
//!
//! Without nats-server, the venv or autobahn-js these tests say so and pass, unless
//! `SOCKEYE_REQUIRE_INTEROP=1`, when a missing peer is a failure.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value as J};
use sockeye_cluster::test_support::NatsCluster;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::timeout;

use common::{http_get, python_with, start_on_loopback};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Node `i` of three, attached to server `i` of `nats`, once /healthz says it is ready.
async fn node(nats: &NatsCluster, i: usize) -> (Child, String) {
    let (child, addr) = start_on_loopback(&[
        "--cluster",
        &nats.url(i),
        "--node-name",
        &format!("n{i}"),
        "--node-id",
        &(i + 1).to_string(),
        "--no-compression",
    ])
    .await;
    ready(&addr).await;
    (child, addr)
}

async fn ready(addr: &str) {
    for _ in 0..300 {
        let answer = http_get(addr, "/healthz", "Connection: close\r\n").await;
        if answer.starts_with("HTTP/1.1 200") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/healthz of {addr} never said ready");
}

/// The NATS cluster and three nodes on it, or `None` (skipped) without nats-server.
async fn three_nodes() -> Option<(NatsCluster, Vec<Child>, Vec<String>)> {
    let nats = NatsCluster::start()?;
    let (mut children, mut addrs) = (Vec::new(), Vec::new());
    for i in 0..3 {
        let (child, addr) = node(&nats, i).await;
        children.push(child);
        addrs.push(addr);
    }
    Some((nats, children, addrs))
}

fn signal(child: &Child, signal: &str) {
    let pid = child.id().expect("the node runs").to_string();
    let status = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// A peer process: JSON commands on its stdin, one JSON object a line on its stdout. Every
/// line read is kept in `seen`, so that a test can look back at what came in between.
struct Peer {
    // Held for kill_on_drop: the peer ends with the test.
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    name: String,
    seen: Vec<J>,
}

impl Peer {
    fn spawn(mut command: Command, name: String) -> Peer {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        Peer {
            stdin: child.stdin.take().unwrap(),
            lines: BufReader::new(child.stdout.take().unwrap()).lines(),
            _child: child,
            name,
            seen: Vec::new(),
        }
    }

    async fn send(&mut self, command: J) {
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The next line within `wait`; `None` if none came.
    async fn line_within(&mut self, wait: Duration) -> Option<J> {
        let line = match timeout(wait, self.lines.next_line()).await {
            Err(_) => return None,
            Ok(line) => line
                .unwrap()
                .unwrap_or_else(|| panic!("{}: exited; it said {:?}", self.name, self.seen)),
        };
        let v: J = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", self.name));
        if v.get("check").is_some() {
            assert_eq!(v["ok"], true, "{}: check failed: {v}", self.name);
        }
        self.seen.push(v.clone());
        Some(v)
    }

    /// Reads until a line satisfies `want`, within `wait`.
    async fn until_within(&mut self, wait: Duration, want: impl Fn(&J) -> bool) -> J {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.line_within(left).await {
                Some(v) if want(&v) => return v,
                Some(_) => {}
                None => panic!(
                    "{}: nothing wanted within {wait:?}; it said {:?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// Reads until a line satisfies `want`; `None` if none did within `wait`.
    async fn first_within(&mut self, wait: Duration, want: impl Fn(&J) -> bool) -> Option<J> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.line_within(left).await {
                Some(v) if want(&v) => return Some(v),
                Some(_) => {}
                None => return None,
            }
        }
    }

    /// The first line seen so far, or read from now on, that satisfies `want`.
    async fn seen_or_until(&mut self, want: impl Fn(&J) -> bool) -> J {
        if let Some(v) = self.seen.iter().find(|v| want(v)) {
            return v.clone();
        }
        self.until(want).await
    }

    async fn until(&mut self, want: impl Fn(&J) -> bool) -> J {
        self.until_within(Duration::from_secs(20), want).await
    }

    /// Reads whatever comes until `quiet` passes without a line.
    async fn drain(&mut self, quiet: Duration) {
        while self.line_within(quiet).await.is_some() {}
    }
}

// ---- chat ----

/// A Python `websockets` chat client at `node` (address) and `path` (with its query).
async fn chat(python: &PathBuf, node: &str, path: &str) -> (Peer, J) {
    let mut command = Command::new(python);
    command
        .arg(repo().join("interop/python/chat_client.py"))
        .arg(format!("ws://{node}{path}"));
    let mut peer = Peer::spawn(command, format!("chat {path} at {node}"));
    let welcome = peer.until(|v| v.get("type").is_some()).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (peer, welcome)
}

fn presence(event: &'static str, name: &'static str) -> impl Fn(&J) -> bool {
    move |v| v["type"] == "presence" && v["event"] == event && v["member"]["name"] == name
}

fn is_message(v: &J) -> bool {
    v["type"] == "message"
}

/// The messages a chat client has seen, as (offset, text).
fn messages(peer: &Peer) -> Vec<(u64, String)> {
    peer.seen
        .iter()
        .filter(|v| is_message(v))
        .map(|v| {
            let offset = v["offset"]
                .as_u64()
                .unwrap_or_else(|| panic!("{}: no offset: {v}", peer.name));
            (offset, v["text"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn python_chat_clients_on_three_nodes_see_each_message_once_in_order_and_a_reconnect_gets_exactly_what_it_missed(
) {
    let Some(python) = python_with("websockets").await else {
        return;
    };
    let Some((_nats, _children, nodes)) = three_nodes().await else {
        return;
    };
    let (mut ann, welcome) = chat(&python, &nodes[0], "/chat/peers?name=ann").await;
    let epoch = welcome["epoch"].as_str().unwrap().to_owned();
    let (mut bob, _) = chat(&python, &nodes[1], "/chat/peers?name=bob").await;
    let (mut cat, welcome) = chat(&python, &nodes[2], "/chat/peers?name=cat").await;
    assert_eq!(welcome["epoch"], epoch.as_str(), "one log, one epoch");
    // Everyone is known everywhere: each node follows the room by now.
    ann.until(presence("join", "bob")).await;
    ann.until(presence("join", "cat")).await;
    bob.until(presence("join", "cat")).await;

    for i in 1..=5 {
        for (peer, who) in [(&mut ann, "a"), (&mut bob, "b"), (&mut cat, "c")] {
            peer.send(json!({ "say": format!("{who}{i}") })).await;
        }
    }
    let mut logs = Vec::new();
    for peer in [&mut ann, &mut bob, &mut cat] {
        for _ in 0..15 {
            peer.until(is_message).await;
        }
        peer.drain(Duration::from_millis(300)).await;
        logs.push(messages(peer));
    }
    let log = &logs[0];
    assert_eq!(
        log.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (1..=15).collect::<Vec<u64>>(),
        "offsets count up from 1 without gaps, nothing twice: {log:?}"
    );
    assert_eq!(logs[1], *log, "bob saw what ann saw, in the same order");
    assert_eq!(logs[2], *log, "cat saw what ann saw, in the same order");
    for who in ["a", "b", "c"] {
        let theirs: Vec<&str> = log
            .iter()
            .map(|(_, t)| t.as_str())
            .filter(|t| t.starts_with(who))
            .collect();
        let sent: Vec<String> = (1..=5).map(|i| format!("{who}{i}")).collect();
        assert_eq!(theirs, sent, "each sender's order is kept");
    }

    // Cat leaves; two messages while it is away; it comes back on another node with the offset
    // and epoch it had.
    cat.send(json!({ "close": true })).await;
    cat.until(|v| v.get("closed").is_some()).await;
    ann.until(presence("leave", "cat")).await;
    ann.send(json!({ "say": "missed 1" })).await;
    bob.send(json!({ "say": "missed 2" })).await;
    for _ in 0..2 {
        ann.until(is_message).await;
    }
    let (mut cat, welcome) = chat(
        &python,
        &nodes[1],
        &format!("/chat/peers?name=cat&since=15&epoch={epoch}"),
    )
    .await;
    assert_eq!(welcome["recovered"], true, "{welcome}");
    for _ in 0..2 {
        cat.until(is_message).await;
    }
    let missed = messages(&cat);
    assert_eq!(
        missed,
        messages(&ann)[15..],
        "exactly what it missed, in the log's order"
    );
    assert_eq!(missed.iter().map(|(o, _)| *o).collect::<Vec<_>>(), [16, 17]);
    bob.send(json!({ "say": "live" })).await;
    cat.until(is_message).await;
    cat.drain(Duration::from_millis(300)).await;
    assert_eq!(
        messages(&cat)[2..],
        [(18, "live".to_owned())],
        "then live, nothing twice"
    );
}

// ---- WAMP ----

fn required() -> bool {
    std::env::var("SOCKEYE_REQUIRE_INTEROP").as_deref() == Ok("1")
}

/// Whether autobahn-js is set up; if not, says so (a failure when the peers are required).
fn js_installed() -> bool {
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if node_ok
        && repo()
            .join("interop/wamp-js/node_modules/autobahn")
            .exists()
    {
        return true;
    }
    assert!(
        !required(),
        "autobahn-js is missing: run scripts/setup-wamp-js.sh"
    );
    eprintln!("skipping: autobahn-js is missing (run scripts/setup-wamp-js.sh)");
    false
}

#[derive(Clone, Copy, Debug)]
enum Lang {
    Python,
    Js,
}

/// The Python with autobahn, if both Autobahns are installed.
async fn autobahns() -> Option<PathBuf> {
    let python = python_with("autobahn.asyncio, msgpack").await?;
    js_installed().then_some(python)
}

/// A `driven` WAMP peer (see wamp_peer.py) on realm1 at node `addr`, once it has joined; its
/// session id.
async fn wamp(python: &PathBuf, lang: Lang, addr: &str, serializer: &str) -> (Peer, u64) {
    let mut command = match lang {
        Lang::Python => {
            let mut c = Command::new(python);
            c.arg(repo().join("interop/python/wamp_peer.py"));
            c
        }
        Lang::Js => {
            let mut c = Command::new("node");
            c.arg(repo().join("interop/wamp-js/peer.js"));
            c
        }
    };
    command.args([&format!("ws://{addr}/wamp"), "realm1", serializer, "driven"]);
    let mut peer = Peer::spawn(command, format!("{lang:?} ({serializer}) at {addr}"));
    let ready = peer.until(|v| v.get("ready").is_some()).await;
    let session = ready["session"].as_u64().unwrap();
    (peer, session)
}

fn tagged<'a>(key: &'a str, tag: &'a str) -> impl Fn(&J) -> bool + 'a {
    move |v| v[key] == tag
}

fn is_probe(v: &J) -> bool {
    v["args"][0] == "probe"
}

/// The first argument of each event of subscription `tag` a peer has seen, probes left out.
fn events(peer: &Peer, tag: &str) -> Vec<i64> {
    peer.seen
        .iter()
        .filter(|v| v["event"] == tag && !is_probe(v))
        .map(|v| v["args"][0].as_i64().unwrap())
        .collect()
}

/// The event of subscription `tag` with first argument `n`.
fn event<'a>(peer: &'a Peer, tag: &str, n: i64) -> &'a J {
    peer.seen
        .iter()
        .find(|v| v["event"] == tag && v["args"][0] == n)
        .unwrap_or_else(|| panic!("{}: no event {n} on {tag}", peer.name))
}

async fn publish(peer: &mut Peer, tag: &str, topic: &str, args: J, options: J) {
    peer.send(
        json!({"op": "publish", "tag": tag, "topic": topic, "args": args, "options": options}),
    )
    .await;
    let answer = peer
        .until(|v| v["published"] == tag || v["error"] == tag)
        .await;
    assert_eq!(answer["published"], tag, "{answer}");
}

async fn subscribe(peer: &mut Peer, tag: &str, topic: &str, policy: &str) {
    peer.send(json!({"op": "subscribe", "tag": tag, "topic": topic, "match": policy}))
        .await;
    peer.until(tagged("subscribed", tag)).await;
}

/// Publishes probes from `from` until each of `to`'s subscriptions (peer, tags) has had one:
/// a subscription reaches NATS shortly after SUBSCRIBED, through another server than the
/// publisher's node uses.
async fn probe(from: &mut Peer, topic: &str, options: J, to: &mut [(&mut Peer, &[&str])]) {
    for n in 0..100 {
        publish(
            from,
            &format!("probe {n}"),
            topic,
            json!(["probe"]),
            options.clone(),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (peer, _) in to.iter_mut() {
            while peer.line_within(Duration::from_millis(1)).await.is_some() {}
        }
        let probed =
            |peer: &Peer, tag: &str| peer.seen.iter().any(|v| v["event"] == tag && is_probe(v));
        if to
            .iter()
            .all(|(peer, tags)| tags.iter().all(|tag| probed(peer, tag)))
        {
            return;
        }
    }
    panic!("no probe on {topic} reached every subscriber");
}

#[tokio::test]
async fn autobahn_python_and_js_on_three_nodes_get_exact_prefix_and_wildcard_events_with_exclude_me_exclude_eligible_and_disclose_me(
) {
    let Some(python) = autobahns().await else {
        return;
    };
    let Some((_nats, _children, nodes)) = three_nodes().await else {
        return;
    };
    let (mut py_pub, py_pub_id) = wamp(&python, Lang::Python, &nodes[0], "json").await;
    let (mut py_sub, py_sub_id) = wamp(&python, Lang::Python, &nodes[1], "msgpack").await;
    let (mut js, js_id) = wamp(&python, Lang::Js, &nodes[2], "json").await;
    let ids = [py_pub_id, py_sub_id, js_id];
    assert!(
        ids.iter()
            .all(|id| ids.iter().filter(|x| *x == id).count() == 1),
        "session ids are unique across nodes: {ids:?}"
    );
    subscribe(&mut py_pub, "own", "com.peers.tick", "exact").await;
    subscribe(&mut py_sub, "exact", "com.peers.tick", "exact").await;
    subscribe(&mut py_sub, "prefix", "com.peers", "prefix").await;
    subscribe(&mut py_sub, "wild", "com..tick", "wildcard").await;
    subscribe(&mut js, "exact", "com.peers.tick", "exact").await;
    subscribe(&mut js, "prefix", "com.peers", "prefix").await;
    subscribe(&mut js, "wild", "com..tick", "wildcard").await;
    probe(
        &mut py_pub,
        "com.peers.tick",
        json!({}),
        &mut [
            (&mut py_sub, &["exact", "prefix", "wild"]),
            (&mut js, &["exact", "prefix", "wild"]),
        ],
    )
    .await;
    probe(
        &mut js,
        "com.peers.tick",
        json!({}),
        &mut [(&mut py_pub, &["own"])],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for peer in [&mut py_pub, &mut py_sub, &mut js] {
        peer.drain(Duration::from_millis(100)).await;
    }

    let tick = "com.peers.tick";
    publish(&mut py_pub, "1", tick, json!([1]), json!({})).await;
    // autobahn-python 26 has no disclose_me: autobahn-js asks for it (6), on another node.
    publish(
        &mut py_pub,
        "2",
        tick,
        json!([2]),
        json!({"exclude": [js_id]}),
    )
    .await;
    publish(
        &mut py_pub,
        "3",
        tick,
        json!([3]),
        json!({"exclude_me": false}),
    )
    .await;
    publish(
        &mut py_pub,
        "4",
        tick,
        json!([4]),
        json!({"exclude": [py_sub_id]}),
    )
    .await;
    publish(
        &mut py_pub,
        "5",
        tick,
        json!([5]),
        json!({"eligible": [py_sub_id]}),
    )
    .await;
    let from_js = json!({"disclose_me": true, "exclude_me": false});
    publish(&mut js, "6", tick, json!([6]), from_js).await;
    publish(&mut js, "7", "com.other.tick", json!([7]), json!({})).await;
    publish(&mut js, "8", "com.peers.x", json!([8]), json!({})).await;
    publish(&mut py_pub, "9", tick, json!([9]), json!({})).await;
    publish(&mut js, "10", tick, json!([10]), json!({})).await;
    let last = |tag: &'static str, n: i64| move |v: &J| v["event"] == tag && v["args"][0] == n;
    py_sub.seen_or_until(last("exact", 9)).await;
    py_sub.seen_or_until(last("exact", 10)).await;
    js.seen_or_until(last("exact", 9)).await;
    py_pub.seen_or_until(last("own", 10)).await;
    for peer in [&mut py_pub, &mut py_sub, &mut js] {
        peer.drain(Duration::from_millis(500)).await;
    }

    // Each publisher's events in its order, each once, to whom they were meant for.
    let sorted = |mut v: Vec<i64>| {
        v.sort();
        v
    };
    let py_order = |v: Vec<i64>| {
        v.into_iter()
            .filter(|n| [1, 2, 3, 4, 5, 9].contains(n))
            .collect::<Vec<_>>()
    };
    let exact = events(&py_sub, "exact");
    assert_eq!(
        sorted(exact.clone()),
        [1, 2, 3, 5, 6, 9, 10],
        "excluded from 4"
    );
    assert_eq!(py_order(exact), [1, 2, 3, 5, 9]);
    let prefix = events(&py_sub, "prefix");
    assert_eq!(sorted(prefix.clone()), [1, 2, 3, 5, 6, 8, 9, 10]);
    assert_eq!(py_order(prefix), [1, 2, 3, 5, 9]);
    let wild = events(&py_sub, "wild");
    assert_eq!(sorted(wild.clone()), [1, 2, 3, 5, 6, 7, 9, 10]);
    assert_eq!(py_order(wild), [1, 2, 3, 5, 9]);
    // Not 5 (only py_sub was eligible), nor its own 10 (exclude_me by default).
    let exact = events(&js, "exact");
    assert_eq!(
        sorted(exact.clone()),
        [1, 3, 4, 6, 9],
        "not 2, which excluded it"
    );
    assert_eq!(py_order(exact), [1, 3, 4, 9]);
    // Nor its own 7 and 8, which its prefix and wildcard subscriptions match.
    assert_eq!(sorted(events(&js, "prefix")), [1, 3, 4, 6, 9]);
    assert_eq!(sorted(events(&js, "wild")), [1, 3, 4, 6, 9]);
    // Only what was published with exclude_me false, on its node or another.
    assert_eq!(sorted(events(&py_pub, "own")), [3, 6, 10]);

    assert_eq!(event(&py_sub, "prefix", 8)["topic"], "com.peers.x");
    assert_eq!(event(&py_sub, "wild", 7)["topic"], "com.other.tick");
    assert_eq!(event(&js, "prefix", 1)["topic"], "com.peers.tick");
    assert_eq!(event(&js, "wild", 1)["topic"], "com.peers.tick");
    assert_eq!(event(&py_sub, "exact", 1)["publisher"], J::Null);
    assert_eq!(event(&py_sub, "exact", 6)["publisher"], js_id);
    assert_eq!(event(&py_pub, "own", 6)["publisher"], js_id);
    assert_eq!(event(&py_sub, "exact", 10)["publisher"], J::Null);
}

async fn register(peer: &mut Peer, procedure: &str, kind: &str) {
    peer.send(json!({"op": "register", "procedure": procedure, "kind": kind}))
        .await;
    peer.until(tagged("registered", procedure)).await;
}

/// Calls `procedure` from `caller` as call `tag` until it is registered where NATS can route
/// it (a registration reaches NATS shortly after REGISTERED): the first answer that is not
/// no_such_procedure.
async fn call_when_routed(caller: &mut Peer, tag: &str, procedure: &str, args: J, options: J) -> J {
    for attempt in 0..50 {
        let attempt_tag = format!("{tag} {attempt}");
        caller
            .send(json!({"op": "call", "tag": attempt_tag, "procedure": procedure, "args": args, "options": options}))
            .await;
        let first = caller
            .until(|v| {
                v["progress"] == attempt_tag.as_str()
                    || v["result"] == attempt_tag.as_str()
                    || v["error"] == attempt_tag.as_str()
            })
            .await;
        if first["uri"] != "wamp.error.no_such_procedure" {
            return first;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{procedure} was never routed");
}

/// The lines of call `tag` (its progress, result and error lines) a peer has seen.
fn answers<'a>(peer: &'a Peer, tag: &str) -> Vec<&'a J> {
    peer.seen
        .iter()
        .filter(|v| v["progress"] == tag || v["result"] == tag || v["error"] == tag)
        .collect()
}

/// A progressive countdown from 3 called by `caller` on a callee of another node.
async fn countdown(caller: &mut Peer, procedure: &str) {
    let first = call_when_routed(
        caller,
        "countdown",
        procedure,
        json!([3]),
        json!({"receive_progress": true}),
    )
    .await;
    let tag = first["progress"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: {first}", caller.name))
        .to_owned();
    caller.until(tagged("result", &tag)).await;
    caller.drain(Duration::from_millis(200)).await;
    let got: Vec<J> = answers(caller, &tag)
        .into_iter()
        .map(|v| {
            let kind = if v.get("progress").is_some() {
                "progress"
            } else {
                "result"
            };
            json!([kind, v["args"]])
        })
        .collect();
    assert_eq!(
        got,
        [
            json!(["progress", [3]]),
            json!(["progress", [2]]),
            json!(["progress", [1]]),
            json!(["result", ["liftoff"]])
        ],
        "{}",
        caller.name
    );
}

#[tokio::test]
async fn autobahn_python_and_js_calls_across_nodes_get_progressive_results_cancel_and_time_out() {
    let Some(python) = autobahns().await else {
        return;
    };
    let Some((_nats, _children, nodes)) = three_nodes().await else {
        return;
    };
    let (mut py_callee, _) = wamp(&python, Lang::Python, &nodes[1], "msgpack").await;
    let (mut js_callee, _) = wamp(&python, Lang::Js, &nodes[2], "msgpack").await;
    let (mut js_caller, _) = wamp(&python, Lang::Js, &nodes[0], "json").await;
    let (mut py_caller, _) = wamp(&python, Lang::Python, &nodes[2], "json").await;
    register(&mut py_callee, "com.peers.py.countdown", "countdown").await;
    register(&mut py_callee, "com.peers.py.never", "never").await;
    register(&mut js_callee, "com.peers.js.countdown", "countdown").await;

    countdown(&mut js_caller, "com.peers.py.countdown").await;
    countdown(&mut py_caller, "com.peers.js.countdown").await;

    // Cancelled by autobahn-js mid-call, mode kill: the autobahn-python callee on another
    // node is interrupted, and its answer to that (autobahn-python fails the invocation with
    // wamp.error.runtime_error) is what ends the call, as the WAMP spec says of kill.
    js_caller
        .send(json!({"op": "call", "tag": "cancelled", "procedure": "com.peers.py.never"}))
        .await;
    py_callee
        .until(tagged("invoked", "com.peers.py.never"))
        .await;
    js_caller
        .send(json!({"op": "cancel", "tag": "cancelled"}))
        .await;
    py_callee
        .until(tagged("interrupted", "com.peers.py.never"))
        .await;
    let answer = js_caller.until(tagged("error", "cancelled")).await;
    assert_eq!(answer["uri"], "wamp.error.runtime_error");

    // A call timeout, run on the caller's node: the caller gets wamp.error.timeout, the callee
    // on another node is interrupted.
    for caller in [&mut py_caller, &mut js_caller] {
        let started = Instant::now();
        caller
            .send(
                json!({"op": "call", "tag": "timed", "procedure": "com.peers.py.never",
                         "options": {"timeout": 500}}),
            )
            .await;
        let answer = caller.until(tagged("error", "timed")).await;
        assert_eq!(answer["uri"], "wamp.error.timeout", "{}", caller.name);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        py_callee
            .until(tagged("interrupted", "com.peers.py.never"))
            .await;
    }
    for caller in [&mut py_caller, &mut js_caller] {
        caller.drain(Duration::from_millis(300)).await;
        for tag in ["cancelled", "timed"] {
            assert!(
                answers(caller, tag).len() <= 1,
                "{}: {tag} answered twice",
                caller.name
            );
        }
    }
}

// ---- failures ----

#[tokio::test]
async fn when_the_callee_s_node_is_killed_mid_call_autobahn_callers_get_an_error_within_their_timeout_and_nothing_more(
) {
    let Some(python) = autobahns().await else {
        return;
    };
    let Some((_nats, mut children, nodes)) = three_nodes().await else {
        return;
    };
    let (mut callee, _) = wamp(&python, Lang::Python, &nodes[2], "json").await;
    let (mut js_caller, _) = wamp(&python, Lang::Js, &nodes[0], "json").await;
    let (mut py_caller, _) = wamp(&python, Lang::Python, &nodes[1], "msgpack").await;
    register(&mut callee, "com.peers.never", "never").await;
    let options = json!({"timeout": 25_000});
    let mut pending = Vec::new();
    for caller in [&mut js_caller, &mut py_caller] {
        // Routed once the registration is on NATS: until then no_such_procedure comes back at
        // once; the call kept is the one the callee was invoked for.
        let mut routed = None;
        for attempt in 0..50 {
            let tag = format!("pending {attempt}");
            caller
                .send(json!({"op": "call", "tag": tag, "procedure": "com.peers.never", "options": options}))
                .await;
            if let Some(refused) = caller
                .first_within(Duration::from_millis(300), tagged("error", &tag))
                .await
            {
                assert_eq!(refused["uri"], "wamp.error.no_such_procedure", "{refused}");
                continue;
            }
            callee
                .until_within(Duration::from_secs(5), tagged("invoked", "com.peers.never"))
                .await;
            routed = Some(tag);
            break;
        }
        pending.push(routed.unwrap_or_else(|| panic!("{}: never routed", caller.name)));
    }
    let killed = Instant::now();
    children[2].start_kill().unwrap();
    for (caller, tag) in [&mut js_caller, &mut py_caller].into_iter().zip(&pending) {
        let answer = caller
            .until_within(Duration::from_secs(25), tagged("error", tag))
            .await;
        assert_eq!(
            answer["uri"], "wamp.error.canceled",
            "{}: told the callee is gone, before the call's timeout",
            caller.name
        );
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "{:?}",
            killed.elapsed()
        );
    }
    for (caller, tag) in [&mut js_caller, &mut py_caller].into_iter().zip(&pending) {
        caller.drain(Duration::from_secs(1)).await;
        assert_eq!(
            answers(caller, tag).len(),
            1,
            "{}: a second answer",
            caller.name
        );
    }
}

#[tokio::test]
async fn after_a_nats_server_of_three_restarts_chat_and_wamp_delivery_resume_for_the_clients_of_its_node(
) {
    let Some(python) = autobahns().await else {
        return;
    };
    let Some((mut nats, _children, nodes)) = three_nodes().await else {
        return;
    };
    // The room's stream is made by the first join; the server that holds it (one replica) is
    // the one restarted, and ann's node is attached to it: her node loses its link, and the
    // room is away for everyone until the server is back.
    let (first, _) = chat(&python, &nodes[0], "/chat/restart?name=first").await;
    drop(first);
    let held = nats
        .holder(&sockeye_cluster::room::stream_name("restart"))
        .expect("a server holds the room's stream");
    let (mut ann, _) = chat(&python, &nodes[held], "/chat/restart?name=ann").await;
    let (mut bob, _) = chat(&python, &nodes[(held + 1) % 3], "/chat/restart?name=bob").await;
    ann.until(presence("join", "bob")).await;
    bob.send(json!({"say": "before"})).await;
    let before = ann.until(is_message).await["offset"].as_u64().unwrap();
    let (mut sub, _) = wamp(&python, Lang::Python, &nodes[held], "json").await;
    let (mut publisher, _) = wamp(&python, Lang::Js, &nodes[(held + 1) % 3], "json").await;
    subscribe(&mut sub, "exact", "com.peers.restart", "exact").await;
    probe(
        &mut publisher,
        "com.peers.restart",
        json!({}),
        &mut [(&mut sub, &["exact"])],
    )
    .await;

    // The node reconnects (to that server or, having learned them from it, to another of the
    // cluster) and follows the room again.
    nats.kill(held);
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.run(held);

    // Both ways through the room's log again, with offsets after the ones before: retried,
    // since a message whose append fails while the room's stream is unavailable is dropped.
    let mut resumed = None;
    for attempt in 0..100 {
        bob.send(json!({"say": format!("after {attempt}")})).await;
        if let Some(v) = ann.line_within(Duration::from_millis(200)).await {
            if is_message(&v) {
                resumed = Some(v);
                break;
            }
        }
    }
    let resumed = resumed.expect("ann got bob's messages again");
    assert!(resumed["offset"].as_u64().unwrap() > before, "{resumed}");
    ann.send(json!({"say": "from ann"})).await;
    let m = bob
        .until(|v| is_message(v) && v["text"] == "from ann")
        .await;
    assert!(m["offset"].as_u64().unwrap() > before, "{m}");
    let seen = ann
        .until(|v| is_message(v) && v["text"] == "from ann")
        .await;
    assert_eq!(seen["offset"], m["offset"], "one log");

    // Events from node 1 reach the subscriber on node 0 again: published until one arrives.
    let mut arrived = false;
    for n in 1000..1100 {
        publish(
            &mut publisher,
            &n.to_string(),
            "com.peers.restart",
            json!([n]),
            json!({}),
        )
        .await;
        if sub
            .first_within(Duration::from_millis(200), |v| {
                v["event"] == "exact" && v["args"][0].as_i64() >= Some(1000)
            })
            .await
            .is_some()
        {
            arrived = true;
            break;
        }
    }
    assert!(
        arrived,
        "no event reached node 0 after its NATS server restarted"
    );
}

#[tokio::test]
async fn a_node_stopped_with_sigstop_leaves_presence_elsewhere_and_after_sigcont_its_clients_chat_again(
) {
    let Some(python) = python_with("websockets").await else {
        return;
    };
    let Some((_nats, children, nodes)) = three_nodes().await else {
        return;
    };
    let (mut ann, _) = chat(&python, &nodes[0], "/chat/stop?name=ann").await;
    let (mut bob, _) = chat(&python, &nodes[1], "/chat/stop?name=bob").await;
    let (mut cat, _) = chat(&python, &nodes[2], "/chat/stop?name=cat").await;
    ann.until(presence("join", "cat")).await;
    bob.until(presence("join", "cat")).await;

    let stopped = Instant::now();
    signal(&children[2], "-STOP");
    for peer in [&mut ann, &mut bob] {
        peer.until_within(Duration::from_secs(30), presence("leave", "cat"))
            .await;
    }
    let silent_for = stopped.elapsed();
    assert!(silent_for < Duration::from_secs(30), "{silent_for:?}");
    signal(&children[2], "-CONT");

    // Back: the others see cat again, and it chats both ways through the log.
    for peer in [&mut ann, &mut bob] {
        peer.until_within(Duration::from_secs(15), presence("join", "cat"))
            .await;
    }
    cat.send(json!({"say": "back"})).await;
    for peer in [&mut ann, &mut bob] {
        let m = peer.until(|v| is_message(v) && v["text"] == "back").await;
        assert!(m["offset"].as_u64().is_some(), "{m}");
    }
    ann.send(json!({"say": "welcome back"})).await;
    let m = cat
        .until(|v| is_message(v) && v["text"] == "welcome back")
        .await;
    assert!(m["offset"].as_u64().is_some(), "{m}");
}
