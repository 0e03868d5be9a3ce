//! `sockeye bench` over `wss://` against `sockeye serve` with certificates from a CA made at run
//! time: it measures when told to trust that CA with `--ca`, and refuses the server otherwise.

mod bench_support;
mod common;
#[path = "../../sockeye/tests/support/mod.rs"]
mod support;

use bench_support::{bench, field};
use support::{Ca, TempDir};
use tokio::process::Child;

/// The tests that put load on the machine take turns: the broadcast test's publisher counts a
/// stall when a delivery takes over a second, which another bench running beside it on two
/// cores can cause (seen in CI).
static LOAD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `sockeye serve` with TLS on a free loopback port; returns the child and the port.
/// Its certificate, signed by `ca`, names `names`.
async fn serve_tls(dir: &TempDir, ca: &Ca, names: &[&str]) -> (Child, u16) {
    let (cert, key) = ca.server(names).write(dir, "server");
    let (child, addr) = common::start_on_loopback(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ])
    .await;
    let port = addr.rsplit(':').next().unwrap().parse().unwrap();
    (child, port)
}

#[tokio::test]
async fn bench_echo_over_wss_trusting_the_test_ca_counts_echoed_messages() {
    let _load = LOAD.lock().await;
    let ca = Ca::new("Sockeye bench test CA");
    let dir = TempDir::new("bench-wss");
    let ca_file = dir.write("ca.pem", &ca.cert_pem);
    let (_server, port) = serve_tls(&dir, &ca, &["localhost", "127.0.0.1"]).await;
    for (url, extra) in [
        (format!("wss://localhost:{port}/echo"), &["--binary"][..]),
        (format!("wss://127.0.0.1:{port}/echo"), &[][..]),
    ] {
        let mut args = vec![
            url.as_str(),
            "--mode",
            "echo",
            "-c",
            "4",
            "-s",
            "1024",
            "-d",
            "1",
            "-w",
            "0.2",
            "--ca",
            ca_file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (status, line, stderr) = bench(&args).await;
        assert!(status.success(), "{url}: {stderr}\n{line}");
        assert!(field(&line, "messages").as_u64().unwrap() > 0, "{line}");
        assert_eq!(field(&line, "failed_connections"), 0, "{line}");
        assert_eq!(field(&line, "stuck_connections"), 0, "{line}");
        assert!(field(&line, "first_error").is_null(), "{line}");
        assert!(field(&line, "mib_per_s").as_f64().unwrap() > 0.0, "{line}");
    }
}

#[tokio::test]
async fn bench_over_wss_refuses_a_certificate_it_was_not_told_to_trust() {
    let ca = Ca::new("Sockeye bench untrusted CA");
    let dir = TempDir::new("bench-wss-untrusted");
    let (_server, port) = serve_tls(&dir, &ca, &["example.com"]).await;
    let url = format!("wss://localhost:{port}/echo");
    let (status, line, stderr) = bench(&[&url, "-d", "0.5", "-w", "0"]).await;
    assert!(!status.success(), "measured an unverified server: {line}");
    assert!(
        stderr.contains("certificate") && stderr.contains("UnknownIssuer"),
        "{stderr}"
    );
    // Trusting the CA is not enough: the certificate is for example.com, not localhost.
    let ca_file = dir.write("ca.pem", &ca.cert_pem);
    let ca_arg = ca_file.to_str().unwrap();
    let (status, line, stderr) = bench(&[&url, "-d", "0.5", "-w", "0", "--ca", ca_arg]).await;
    assert!(
        !status.success(),
        "measured a server of another name: {line}"
    );
    assert!(
        stderr.contains("not valid for name \"localhost\""),
        "{stderr}"
    );
}

#[tokio::test]
async fn bench_refuses_ca_for_a_plain_url() {
    let (status, _, stderr) = bench(&["ws://127.0.0.1:9/echo", "--ca", "/nonexistent.pem"]).await;
    assert!(!status.success());
    assert!(stderr.contains("--ca is for wss:// URLs"), "{stderr}");
}

#[tokio::test]
async fn bench_progress_shows_the_count_rising_once_a_second() {
    let _load = LOAD.lock().await;
    let ca = Ca::new("Sockeye bench progress CA");
    let dir = TempDir::new("bench-progress");
    let ca_file = dir.write("ca.pem", &ca.cert_pem);
    let (_server, port) = serve_tls(&dir, &ca, &["localhost"]).await;
    let url = format!("wss://localhost:{port}/echo");
    let args = [
        url.as_str(),
        "-c",
        "2",
        "-d",
        "3.5",
        "-w",
        "0.2",
        "--progress",
        "--ca",
        ca_file.to_str().unwrap(),
    ];
    let (status, line, stderr) = bench(&args).await;
    assert!(status.success(), "{stderr}\n{line}");
    // "   1/4 s        12345 messages       12000 msg/s", one per second, each after a \r.
    let counts: Vec<u64> = stderr
        .split('\r')
        .filter(|update| update.contains(" msg/s"))
        .map(|update| {
            let words: Vec<&str> = update.split_whitespace().collect();
            let at = words
                .iter()
                .position(|w| *w == "messages")
                .expect("a count");
            words[at - 1].parse().expect("a number")
        })
        .collect();
    assert!(counts.len() >= 3, "three updates in 3.5 s: {stderr:?}");
    assert!(counts.windows(2).all(|w| w[0] < w[1]), "{counts:?}");
    let total = field(&line, "messages").as_u64().unwrap();
    assert!(*counts.last().unwrap() <= total, "{counts:?} vs {total}");
}

#[tokio::test]
async fn bench_broadcast_counts_every_delivery_to_hundreds_of_subscribers() {
    let _load = LOAD.lock().await;
    let ca = Ca::new("Sockeye bench broadcast CA");
    let dir = TempDir::new("bench-broadcast");
    let ca_file = dir.write("ca.pem", &ca.cert_pem);
    let (_server, port) = serve_tls(&dir, &ca, &["localhost"]).await;
    let url = format!("wss://localhost:{port}/chat");
    let subscribers = 500;
    let args = [
        url.as_str(),
        "--mode",
        "broadcast",
        "-c",
        &subscribers.to_string(),
        "-d",
        "1.5",
        "-w",
        "0.5",
        "--ca",
        ca_file.to_str().unwrap(),
    ];
    let (status, line, stderr) = bench(&args).await;
    assert!(status.success(), "{stderr}\n{line}");
    let published = field(&line, "published").as_u64().unwrap();
    let delivered = field(&line, "messages").as_u64().unwrap();
    assert!(published > 0, "{line}");
    assert_eq!(field(&line, "stalls"), 0, "{line}");
    // Every published message reached every subscriber. At each edge of the measured window
    // one message can have some deliveries counted and not itself, or the reverse.
    let expected = published * subscribers;
    assert!(
        delivered + subscribers >= expected && delivered <= expected + 2 * subscribers,
        "{delivered} deliveries for {published} messages to {subscribers}: {line}"
    );
}
