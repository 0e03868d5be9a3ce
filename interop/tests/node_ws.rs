//! Sockeye against Node's `ws` (an independent implementation, with zlib underneath), both
//! directions, with permessage-deflate as `ws` does it by default (`perMessageDeflate: true`),
//! with no context takeover on both sides, and with 9-bit windows on both sides (the peer asks
//! for them): text and binary messages from 1 byte to 8 MiB
//! (every frame-length boundary), compressible and not, each checked byte for byte; the
//! negotiated extension checked on both sides and the compression seen on the wire; a close with
//! a code and reason, clean on both sides.
//!
//! The peer scripts live in `interop/node` (`scripts/setup-node.sh` installs them). Without node
//! or `interop/node/node_modules` these tests say so and pass vacuously, unless
//! `SOCKEYE_REQUIRE_INTEROP=1` (set by `scripts/test.sh`, which CI runs), when a missing peer is a
//! failure.

mod common;

use common::{expect_close, expect_message_within};

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use sockeye::proto::CloseCode;
use sockeye::{ClientRequest, CloseEvent, CompressionPolicy, Config, Message};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;

const MIB: usize = 1 << 20;
/// Around every frame-length boundary of RFC 6455 (7-bit, 16-bit, 64-bit lengths), up to 8 MiB
/// (well under the 64 MiB default `max_message_size`).
const SIZES: [usize; 7] = [1, 125, 126, 65535, 65536, MIB, 8 * MIB];
/// Generous: a debug build deflates and inflates 8 MiB several times per message.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn node_dir() -> PathBuf {
    repo().join("interop/node")
}

/// The node binary, when it and the installed `ws` package are there.
fn node() -> Option<PathBuf> {
    let node = match std::env::var_os("SOCKEYE_NODE") {
        Some(path) => Some(PathBuf::from(path)).filter(|p| p.is_file()),
        None => std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join("node"))
            .find(|p| p.is_file()),
    };
    let ws = node_dir().join("node_modules/ws/package.json");
    let missing = match &node {
        None => "no node (SOCKEYE_NODE or PATH)".to_owned(),
        Some(_) if !ws.exists() => format!("no {}", ws.display()),
        Some(_) => return node,
    };
    if std::env::var("SOCKEYE_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("{missing}: run scripts/setup-node.sh");
    }
    eprintln!("skipping: {missing} (run scripts/setup-node.sh)");
    None
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// Compressible UTF-8 (JSON-like records with multi-byte characters).
    Text,
    /// Compressible bytes.
    Binary,
    /// Incompressible bytes: deflate falls back to stored blocks.
    Random,
}

const KINDS: [Kind; 3] = [Kind::Text, Kind::Binary, Kind::Random];

struct XorShift(u32);

impl XorShift {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

/// A deterministic message of exactly `size` bytes.
fn make_message(kind: Kind, size: usize) -> Message {
    let mut rng = XorShift((size as u32).wrapping_mul(2654435761) | 1);
    match kind {
        Kind::Random => Message::binary(
            (0..size)
                .map(|_| (rng.next() >> 24) as u8)
                .collect::<Vec<u8>>(),
        ),
        Kind::Binary => {
            let mut v = 0;
            let data: Vec<u8> = (0..size)
                .map(|i| {
                    if i % 64 == 0 {
                        v = rng.next();
                    }
                    if i % 16 < 8 {
                        i as u8
                    } else {
                        (v >> (8 * (i % 4))) as u8
                    }
                })
                .collect();
            Message::binary(data)
        }
        Kind::Text => {
            let mut text = String::with_capacity(size + 128);
            let mut seq = 0;
            while text.len() < size {
                let r = rng.next();
                text.push_str(&format!(
                    "{{\"seq\":{seq},\"sym\":\"ÉTH-€\",\"px\":{}.{:02},\"qty\":{},\"side\":\"{}\",\"note\":\"naïve café 🐟\"}}\n",
                    r % 1_000_000 / 100,
                    r % 100,
                    r >> 22,
                    if r & 1 == 1 { "buy" } else { "sell" }
                ));
                seq += 1;
            }
            let mut cut = size;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.extend(std::iter::repeat_n(' ', size - cut));
            Message::text(text)
        }
    }
}

fn payload(msg: &Message) -> &[u8] {
    match msg {
        Message::Text(text) => text.as_bytes(),
        Message::Binary(data) => data,
        _ => &[],
    }
}

/// CRC-32 (IEEE), as node's `zlib.crc32` computes it.
fn crc32(data: &[u8]) -> u32 {
    let table: [u32; 256] = std::array::from_fn(|i| {
        (0..8).fold(i as u32, |c, _| {
            if c & 1 == 1 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            }
        })
    });
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

/// What our echo server saw of one connection.
#[derive(Debug)]
struct Seen {
    extensions: String,
    messages: usize,
    close: Option<CloseEvent>,
}

/// `sockeye::serve` with permessage-deflate under `policy`, echoing every message.
async fn echo_server(policy: CompressionPolicy) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(sockeye::serve(
        listener,
        Config::default().compression(policy),
        move |upgrade, _| {
            let tx = tx.clone();
            async move {
                let Ok(mut ws) = upgrade.accept(None).await else {
                    return;
                };
                let mut seen = Seen {
                    extensions: ws.extensions().to_owned(),
                    messages: 0,
                    close: None,
                };
                while let Some(msg) = ws.recv().await {
                    match msg {
                        Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                            seen.messages += 1;
                            if ws.send(msg).await.is_err() {
                                break;
                            }
                        }
                        Ok(Message::Close(event)) => seen.close = Some(event),
                        Ok(_) | Err(_) => {}
                    }
                }
                let _ = tx.send(seen);
            }
        },
    ));
    (format!("ws://{addr}/"), rx)
}

fn assert_negotiated(extensions: &str, mode: &str) {
    assert!(
        extensions.starts_with("permessage-deflate"),
        "permessage-deflate not negotiated: {extensions:?}"
    );
    let params: &[&str] = match mode {
        "nct" => &["server_no_context_takeover", "client_no_context_takeover"],
        "bits9" => &["server_max_window_bits=9", "client_max_window_bits=9"],
        _ => &[],
    };
    for param in params {
        assert!(
            extensions.contains(param),
            "{param} missing: {extensions:?}"
        );
    }
}

/// Whether `ws` must see this message shrink on the wire, both ways.
fn must_shrink(mode: &str, kind: Kind, size: usize) -> bool {
    // The binary kind has too few short repeats for a 512-byte window.
    size >= 65536 && (kind == Kind::Text || (kind == Kind::Binary && mode != "bits9"))
}

async fn node_client_against_sockeye_server(mode: &str, policy: CompressionPolicy) {
    let Some(node) = node() else { return };
    let (url, mut seen) = echo_server(policy).await;
    let output = timeout(
        Duration::from_secs(600),
        Command::new(&node)
            .arg(node_dir().join("ws_client.mjs"))
            .arg(&url)
            .args(["--mode", mode])
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("ws client timed out")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut checks = 0;
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["ok"], true, "ws client check failed: {line}\n{stdout}");
        checks += 1;
    }
    // negotiated + every size and kind + close
    assert_eq!(checks, 2 + SIZES.len() * KINDS.len(), "{stdout}");
    assert!(output.status.success(), "{stdout}");

    let seen = timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the server did not finish")
        .unwrap();
    assert_negotiated(&seen.extensions, mode);
    assert_eq!(seen.messages, SIZES.len() * KINDS.len());
    let close = seen.close.expect("no close event on our side");
    assert_eq!(
        (close.code, close.reason.as_str(), close.was_clean),
        (CloseCode(4001), "node client done", true)
    );
}

#[tokio::test]
async fn node_ws_client_against_sockeye_server_with_permessage_deflate() {
    node_client_against_sockeye_server("deflate", CompressionPolicy::Balanced).await;
}

#[tokio::test]
async fn node_ws_client_against_sockeye_server_with_the_fast_and_max_compression_policies() {
    for policy in [CompressionPolicy::Fast, CompressionPolicy::Max] {
        node_client_against_sockeye_server("deflate", policy).await;
    }
}

#[tokio::test]
async fn node_ws_client_against_sockeye_server_with_no_context_takeover() {
    node_client_against_sockeye_server("nct", CompressionPolicy::Balanced).await;
}

#[tokio::test]
async fn node_ws_client_against_sockeye_server_with_9_bit_windows() {
    node_client_against_sockeye_server("bits9", CompressionPolicy::Balanced).await;
}

async fn start_node_server(
    node: &PathBuf,
    mode: &str,
) -> (Child, String, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(node)
        .arg(node_dir().join("ws_server.mjs"))
        .args(["--mode", mode, "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("ws server did not start")
        .unwrap()
        .expect("ws server exited");
    let port = line
        .strip_prefix("LISTENING ")
        .expect("LISTENING line")
        .trim()
        .to_owned();
    (child, format!("ws://127.0.0.1:{port}/"), lines)
}

/// The node server's next event line.
async fn next_event(lines: &mut Lines<BufReader<ChildStdout>>) -> serde_json::Value {
    let line = timeout(MESSAGE_TIMEOUT, lines.next_line())
        .await
        .expect("no event from the ws server")
        .unwrap()
        .expect("ws server exited");
    serde_json::from_str(&line).unwrap()
}

async fn sockeye_client_against_node_server(mode: &str) {
    let Some(node) = node() else { return };
    let (_server, url, mut events) = start_node_server(&node, mode).await;
    let mut ws = sockeye::connect_with(ClientRequest::new(&url).unwrap(), Config::default())
        .await
        .unwrap();
    assert_negotiated(ws.extensions(), mode);
    let open = next_event(&mut events).await;
    assert_eq!(open["event"], "open", "{open}");
    assert_eq!(open["extensions"], "permessage-deflate", "{open}");
    assert_negotiated(open["response_extensions"].as_str().unwrap(), mode);

    for size in SIZES {
        for kind in KINDS {
            let msg = make_message(kind, size);
            ws.send(msg.clone()).await.unwrap();
            let echoed = expect_message_within(&mut ws, MESSAGE_TIMEOUT).await;
            assert!(
                echoed == msg,
                "{kind:?} of {size} bytes came back different"
            );
            // What the node server received, independently of the echo.
            let event = next_event(&mut events).await;
            assert_eq!(event["event"], "message", "{event}");
            assert_eq!(event["len"], size, "{kind:?} {size}: {event}");
            assert_eq!(
                event["binary"],
                kind != Kind::Text,
                "{kind:?} {size}: {event}"
            );
            assert_eq!(
                event["crc32"],
                crc32(payload(&msg)),
                "{kind:?} {size}: {event}"
            );
            if must_shrink(mode, kind, size) {
                let (wire_in, wire_out) = (
                    event["wire_in"].as_u64().unwrap() as usize,
                    event["wire_out"].as_u64().unwrap() as usize,
                );
                assert!(
                    wire_in < size / 2 && wire_out < size / 2,
                    "{kind:?} {size}: not compressed on the wire: {event}"
                );
            }
        }
    }

    ws.close(Some(4002), "sockeye client done").await.unwrap();
    let close = expect_close(&mut ws).await;
    assert_eq!(
        (close.code, close.reason.as_str(), close.was_clean),
        (CloseCode(4002), "sockeye client done", true)
    );
    let event = next_event(&mut events).await;
    assert_eq!(event["event"], "close", "{event}");
    assert_eq!(event["code"], 4002, "{event}");
    assert_eq!(event["reason"], "sockeye client done", "{event}");
    assert_eq!(event["wasClean"], true, "{event}");
}

#[tokio::test]
async fn sockeye_client_against_node_ws_server_with_permessage_deflate() {
    sockeye_client_against_node_server("deflate").await;
}

#[tokio::test]
async fn sockeye_client_against_node_ws_server_with_no_context_takeover() {
    sockeye_client_against_node_server("nct").await;
}

#[tokio::test]
async fn sockeye_client_against_node_ws_server_with_9_bit_windows() {
    sockeye_client_against_node_server("bits9").await;
}
