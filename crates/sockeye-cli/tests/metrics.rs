//! `/metrics` of a running `sockeye serve`, read by a strict reader of the Prometheus text
//! format: the Python client's parser (`prometheus_client.parser`), plus the rules that parser
//! lets through (it reads interleaved samples as extra families of type `unknown`): every
//! family has exactly one `# HELP` and one `# TYPE`, both before its samples, and its samples
//! are together.
//!
//! `prometheus_client` comes from the venv of `scripts/setup-python.sh` ($SOCKEYE_PYTHON or
//! interop/.venv); without it the tests skip, unless SOCKEYE_REQUIRE_INTEROP=1.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use sockeye::{ClientRequest, Config, Message};
use tokio::time::timeout;

/// Reads the exposition on stdin; prints one line per rule broken and exits 1, or prints the
/// families and exits 0.
const CHECKER: &str = r##"
import re, sys
from prometheus_client.parser import text_string_to_metric_families

text = sys.stdin.read()
errors = []
families = list(text_string_to_metric_families(text))
seen = set()
for f in families:
    if f.name in seen:
        errors.append(f"family {f.name} is split: its samples are not together")
    seen.add(f.name)
    if f.type == "unknown":
        errors.append(f"family {f.name} has no TYPE")
    if not f.documentation:
        errors.append(f"family {f.name} has no HELP")

# The same rules on the lines themselves, whatever the parser made of them.
helps, types, finished = {}, {}, set()
current = None
for n, line in enumerate(text.splitlines(), 1):
    if not line.strip():
        continue
    m = re.match(r"# (HELP|TYPE) (\S+)", line)
    if m:
        kind, name = m.groups()
        seen_in = helps if kind == "HELP" else types
        seen_in[name] = seen_in.get(name, 0) + 1
        if seen_in[name] > 1:
            errors.append(f"line {n}: a second {kind} for {name}")
        if name != current:
            if current is not None:
                finished.add(current)
            if name in finished:
                errors.append(f"line {n}: {name} starts again after another family")
            current = name
        continue
    if line.startswith("#"):
        continue
    name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
    if name != current:
        errors.append(f"line {n}: sample {name} is not under its own HELP and TYPE (in {current})")
    elif not (helps.get(name) and types.get(name)):
        errors.append(f"line {n}: sample {name} without a HELP and a TYPE before it")

if errors:
    print("\n".join(errors))
    sys.exit(1)
for f in families:
    print(f.name, f.type, len(f.samples))
"##;

/// A part of what `/metrics` printed before prometheus-client: no HELP, and two TYPE lines
/// followed by their samples interleaved.
const OLD_OUTPUT: &str = "\
# TYPE sockeye_connections_open gauge
sockeye_connections_open 0
# TYPE sockeye_deflate_bytes_total counter
# TYPE sockeye_deflate_ratio gauge
sockeye_deflate_bytes_total{direction=\"sent\",stage=\"raw\"} 1100
sockeye_deflate_bytes_total{direction=\"sent\",stage=\"compressed\"} 90
sockeye_deflate_ratio{direction=\"sent\"} 0.0818
sockeye_deflate_bytes_total{direction=\"received\",stage=\"raw\"} 1100
sockeye_deflate_bytes_total{direction=\"received\",stage=\"compressed\"} 95
sockeye_deflate_ratio{direction=\"received\"} 0.0864
";

/// Runs [`CHECKER`] on `text`: Ok with the families it read, or Err with the rules broken.
fn check(py: &PathBuf, text: &str) -> Result<String, String> {
    let mut child = std::process::Command::new(py)
        .args(["-c", CHECKER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// GET `/metrics` over HTTP/1.1: the Content-Type and the body.
async fn scrape(addr: &str) -> (String, String) {
    let out = common::http_get(addr, "/metrics", "").await;
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_owned();
    (content_type, body.to_owned())
}

#[tokio::test]
async fn the_checker_rejects_the_old_interleaved_output_without_help() {
    let Some(py) = common::python_with("prometheus_client").await else {
        return;
    };
    let errors = check(&py, OLD_OUTPUT).expect_err("the old output passed");
    for rule in [
        "has no HELP",
        "is split",
        "is not under its own HELP and TYPE",
    ] {
        assert!(errors.contains(rule), "no {rule:?} in\n{errors}");
    }
}

#[tokio::test]
async fn metrics_of_a_running_server_pass_a_strict_prometheus_parser() {
    let Some(py) = common::python_with("prometheus_client").await else {
        return;
    };
    let (_server, addrs) = common::start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--allow-origin",
            "https://good.example",
        ],
        1,
    )
    .await;
    let addr = &addrs[0];
    // Something in every family that shows only once it has a sample: a refusal, a close
    // code, a compression ratio (the client offers permessage-deflate by default).
    let bad = ClientRequest::new(&format!("ws://{addr}/echo"))
        .unwrap()
        .header("Origin", "https://evil.example");
    assert!(sockeye::connect_with(bad, Config::default()).await.is_err());
    let mut ws = sockeye::connect(&format!("ws://{addr}/echo"))
        .await
        .unwrap();
    let text = "tick ".repeat(100);
    ws.send(text.as_str()).await.unwrap();
    let echoed = timeout(Duration::from_secs(10), ws.recv()).await.unwrap();
    assert_eq!(echoed.unwrap().unwrap(), Message::text(text));
    ws.close(Some(4000), "").await.unwrap();
    while ws.recv().await.is_some() {}

    let mut body = String::new();
    for _ in 0..50 {
        body = scrape(addr).await.1;
        if body.contains("sockeye_closes_total{code=\"4000\"} 1\n") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (content_type, _) = scrape(addr).await;
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let families = check(&py, &body).unwrap_or_else(|e| panic!("{e}\nin\n{body}"));
    for family in [
        "sockeye_connections_open gauge 1",
        "sockeye_tasks_alive gauge 1",
        "sockeye_chat_slow_closes counter 1",
        "sockeye_handshakes_accepted counter 2",
        "sockeye_handshakes_refused counter 1",
        "sockeye_messages_received counter 2",
        "sockeye_bytes_received counter 2",
        "sockeye_messages_sent counter 2",
        "sockeye_bytes_sent counter 2",
        "sockeye_deflate_bytes counter 4",
        "sockeye_deflate_ratio gauge 2",
        "sockeye_deflate_state_bytes gauge 2",
        "sockeye_deflate_connections_holding_state gauge 1",
        "sockeye_closes counter 1",
    ] {
        assert!(
            families.lines().any(|l| l == family),
            "no {family:?} in\n{families}\n{body}"
        );
    }
    for sample in [
        "sockeye_messages_received_total{type=\"text\"} 1\n",
        "sockeye_bytes_received_total{type=\"text\"} 500\n",
        "sockeye_messages_sent_total{type=\"text\"} 1\n",
        "sockeye_handshakes_refused_total{reason=\"origin\"} 1\n",
    ] {
        assert!(body.contains(sample), "missing {sample:?} in\n{body}");
    }
}
