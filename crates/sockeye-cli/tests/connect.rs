//! `sockeye connect` as a user runs it: the real binary driven through its stdin, stdout and
//! stderr, against a real `sockeye serve` process, a small server written here where the test
//! must see what arrives (headers, pings), and Python `websockets` (an independent peer).
//!
//! The Python peer runs from the venv that `scripts/setup-python.sh` makes ($SOCKEYE_PYTHON or
//! interop/.venv/bin/python). Without it those tests say so and pass vacuously, unless
//! `SOCKEYE_REQUIRE_INTEROP=1` (set by `scripts/test.sh`), when a missing peer is a failure.

mod common;

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sockeye::Message;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn start_server(extra: &[&str]) -> (Child, String) {
    common::start_on_loopback(extra).await
}

async fn http_get(addr: &str, path: &str) -> String {
    common::http_get(addr, path, "").await
}

/// The next line from a child's stdout or stderr (`name`), without its newline.
async fn next_line<R: AsyncBufRead + Unpin>(reader: &mut R, name: &str) -> String {
    let mut line = String::new();
    let n = timeout(WAIT, reader.read_line(&mut line))
        .await
        .unwrap_or_else(|_| panic!("no line on {name} within 10 s"))
        .unwrap();
    assert!(n > 0, "{name} ended");
    line.trim_end_matches('\n').to_owned()
}

/// A running `sockeye connect`, its three pipes held by the test.
struct Connect {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: BufReader<ChildStderr>,
}

impl Connect {
    fn spawn(args: &[&str]) -> Connect {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sockeye"))
            .arg("connect")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Connect {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            stderr: BufReader::new(child.stderr.take().unwrap()),
            child,
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(bytes).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// The next line on stdout, without its newline.
    async fn line(&mut self) -> String {
        next_line(&mut self.stdout, "stdout").await
    }

    /// The next line on stderr, without its newline.
    async fn err_line(&mut self) -> String {
        next_line(&mut self.stderr, "stderr").await
    }

    /// The `close: …` line on stderr, skipping any `error: …` lines before it.
    async fn close_line(&mut self) -> String {
        loop {
            let line = self.err_line().await;
            if line.starts_with("close: ") {
                return line;
            }
            eprintln!("sockeye connect: {line}");
        }
    }

    /// Waits for the `open: …` line, so that the connection is up.
    async fn opened(&mut self) -> String {
        let line = self.err_line().await;
        assert!(line.starts_with("open: "), "{line}");
        line
    }

    /// Closes stdin (EOF), as Ctrl-D does.
    fn eof(&mut self) {
        self.stdin = None;
    }

    /// Closes stdin, waits for the exit, and returns the status with the rest of stdout and
    /// stderr.
    async fn finish(mut self, within: Duration) -> (ExitStatus, Vec<u8>, String) {
        self.stdin = None;
        self.exit(within).await
    }

    /// Waits for an exit that the connection brings about, stdin still open (a user at an idle
    /// terminal): the close must end the process, not wait for one more line.
    async fn exit_with_stdin_open(mut self, within: Duration) -> (ExitStatus, Vec<u8>, String) {
        let _stdin = self.stdin.take().expect("stdin already closed");
        self.exit(within).await
    }

    async fn exit(mut self, within: Duration) -> (ExitStatus, Vec<u8>, String) {
        let (mut out, mut err) = (Vec::new(), String::new());
        let (stdout, stderr) = (&mut self.stdout, &mut self.stderr);
        let status = timeout(within, async {
            let (a, b) = tokio::join!(
                stdout.read_to_end(&mut out),
                stderr.read_to_string(&mut err)
            );
            a.unwrap();
            b.unwrap();
            self.child.wait().await.unwrap()
        })
        .await
        .expect("sockeye connect did not exit in time");
        (status, out, err)
    }
}

#[tokio::test]
async fn stdin_lines_become_messages_and_echoes_print_on_stdout() {
    let (_server, addr) = start_server(&[]).await;
    let mut c = Connect::spawn(&[&format!("ws://{addr}/echo")]);
    let open = c.opened().await;
    assert!(
        open.starts_with("open: protocol \"\", extensions \"permessage-deflate"),
        "{open}"
    );
    c.write(b"hello\n").await;
    assert_eq!(c.line().await, "hello");
    c.write("héllo 🐟, CRLF line\r\n".as_bytes()).await;
    assert_eq!(c.line().await, "héllo 🐟, CRLF line");
    // Lines written in one go are sent one by one, and echoed in order.
    c.write(b"one\ntwo\nthree\n").await;
    for want in ["one", "two", "three"] {
        assert_eq!(c.line().await, want);
    }
    // A last line without its newline is still sent before the close.
    c.write(b"no newline").await;
    let (status, out, err) = c.finish(WAIT).await;
    assert_eq!(String::from_utf8(out).unwrap(), "no newline\n");
    assert!(status.success(), "{status:?} {err}");
    assert!(
        err.contains("close: code 1000 reason \"\" clean true"),
        "{err}"
    );
}

#[tokio::test]
async fn offered_subprotocols_show_the_negotiated_one_on_stderr() {
    let (_server, addr) = start_server(&[]).await;
    let mut c = Connect::spawn(&[
        "--protocol",
        "soap",
        "--protocol",
        "wamp",
        &format!("ws://{addr}/echo"),
    ]);
    let open = c.opened().await;
    assert!(open.starts_with("open: protocol \"soap\", "), "{open}");
    let (status, _, err) = c.finish(WAIT).await;
    assert!(status.success(), "{status:?} {err}");
}

#[tokio::test]
async fn header_and_origin_reach_the_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    tokio::spawn(sockeye::serve(
        listener,
        sockeye::Config::default(),
        move |upgrade, _| {
            let seen_tx = seen_tx.clone();
            async move {
                let header = |name| upgrade.header(name).map(str::to_owned);
                let _ = seen_tx.send((header("x-test"), header("origin")));
                let Ok(mut ws) = upgrade.accept(None).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.recv().await {
                    if let msg @ (Message::Text(_) | Message::Binary(_)) = msg {
                        let _ = ws.send(msg).await;
                    }
                }
            }
        },
    ));
    let mut c = Connect::spawn(&[
        "--header",
        "X-Test: 1",
        "--origin",
        "https://good.example",
        &format!("ws://{addr}/"),
    ]);
    c.opened().await;
    c.write(b"ping?\n").await;
    assert_eq!(c.line().await, "ping?");
    let (status, _, err) = c.finish(WAIT).await;
    assert!(status.success(), "{status:?} {err}");
    assert_eq!(
        seen.recv().await.unwrap(),
        (
            Some("1".to_owned()),
            Some("https://good.example".to_owned())
        )
    );
}

#[tokio::test]
async fn a_refused_origin_is_a_403_and_a_nonzero_exit() {
    let (_server, addr) = start_server(&["--allow-origin", "https://good.example"]).await;
    let url = format!("ws://{addr}/echo");
    let c = Connect::spawn(&["--origin", "https://evil.example", &url]);
    let (status, out, err) = c.finish(WAIT).await;
    assert!(!status.success(), "{status:?}");
    assert_eq!(status.code(), Some(1));
    assert!(out.is_empty());
    assert!(err.contains("403"), "{err}");
    assert!(!err.contains("open: "), "{err}");

    let mut c = Connect::spawn(&["--origin", "https://good.example", &url]);
    c.opened().await;
    let (status, _, err) = c.finish(WAIT).await;
    assert!(status.success(), "{status:?} {err}");
}

/// Ends the stdin of a `sockeye connect --close 4000:done` to an echo server: the close comes
/// back with that code and reason, and the exit is clean.
async fn eof_gets_4000_done_back(mut c: Connect) {
    c.eof();
    assert_eq!(
        c.close_line().await,
        "close: code 4000 reason \"done\" clean true"
    );
    let (status, _, err) = c.finish(WAIT).await;
    assert!(status.success(), "{status:?} {err}");
}

#[tokio::test]
async fn eof_closes_with_the_code_and_reason_of_close_flag() {
    let (_server, addr) = start_server(&[]).await;
    let mut c = Connect::spawn(&["--close", "4000:done", &format!("ws://{addr}/echo")]);
    c.opened().await;
    c.write(b"last words\n").await;
    assert_eq!(c.line().await, "last words");
    // /echo answers with the same code and reason.
    eof_gets_4000_done_back(c).await;
    // And the server saw 4000.
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = http_get(&addr, "/metrics").await;
        if metrics.contains("sockeye_closes_total{code=\"4000\"} 1\n") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        metrics.contains("sockeye_closes_total{code=\"4000\"} 1\n"),
        "{metrics}"
    );

    // Codes a browser may not send are refused before connecting.
    for close in [
        "1001:bye",
        "999",
        "5000",
        &format!("1000:{}", "x".repeat(124)),
    ] {
        let c = Connect::spawn(&["--close", close, &format!("ws://{addr}/echo")]);
        let (status, _, err) = c.finish(WAIT).await;
        assert_eq!(status.code(), Some(1), "--close {close}");
        assert!(err.starts_with("sockeye: --close"), "{err}");
        assert!(!err.contains("open: "), "{err}");
    }
}

#[tokio::test]
async fn a_killed_server_means_exit_status_2() {
    let (mut server, addr) = start_server(&[]).await;
    kill_under_an_open_connection(&mut server, &format!("ws://{addr}/echo")).await;
}

/// Kills `server` while `sockeye connect URL` is open: the close is 1006 and unclean, and the
/// exit status 2.
async fn kill_under_an_open_connection(server: &mut Child, url: &str) {
    let mut c = Connect::spawn(&[url]);
    c.opened().await;
    c.write(b"still there?\n").await;
    assert_eq!(c.line().await, "still there?");
    server.kill().await.unwrap();
    // stdin stays open: the close comes from the dead connection, and ends the process.
    assert_eq!(
        c.close_line().await,
        "close: code 1006 reason \"\" clean false"
    );
    let (status, _, _) = c.exit_with_stdin_open(WAIT).await;
    assert_eq!(status.code(), Some(2));
}

#[tokio::test]
async fn binary_lines_and_received_binary_as_hex_or_raw() {
    let (_server, addr) = start_server(&[]).await;
    let url = format!("ws://{addr}/echo");
    // --binary: each line's bytes (any bytes, not only UTF-8) go out as a binary message; the
    // binary echo prints as hex.
    let mut c = Connect::spawn(&["--binary", &url]);
    c.opened().await;
    c.write(b"\x00\x01hi\xff\n").await;
    assert_eq!(c.line().await, "00016869ff");
    c.write(b"\r\n").await;
    assert_eq!(c.line().await, "0d");
    let (status, out, err) = c.finish(WAIT).await;
    assert!(status.success(), "{status:?} {err}");
    assert!(out.is_empty());

    // --raw: received binary is written byte for byte, nothing added; text still gets a line.
    let mut c = Connect::spawn(&["--binary", "--raw", &url]);
    c.opened().await;
    c.write(b"\x00\x01hi\xff\n").await;
    c.write(b"\xfe\n").await;
    let (status, out, err) = c.finish(WAIT).await;
    assert!(status.success(), "{status:?} {err}");
    assert_eq!(out, b"\x00\x01hi\xff\xfe");

    // Without --binary, lines are text: one that is not UTF-8 is an error.
    let mut c = Connect::spawn(&[&url]);
    c.opened().await;
    c.write(b"\xff\n").await;
    let (status, _, err) = c.finish(WAIT).await;
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("not UTF-8"), "{err}");
}

/// A minimal server written out by hand, to see the client's control frames: reads the
/// request, answers 101 (no extension), and returns the socket.
async fn raw_accept(listener: &TcpListener) -> TcpStream {
    let (mut tcp, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let key = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .unwrap();
    let accept = sockeye::proto::handshake::accept_key(key.as_bytes());
    tcp.write_all(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tcp
}

/// Reads one client frame (small, masked): its first byte (FIN, opcode) and unmasked payload.
async fn read_client_frame(tcp: &mut TcpStream, within: Duration) -> (u8, Vec<u8>) {
    timeout(within, async {
        let mut h = [0u8; 2];
        tcp.read_exact(&mut h).await.unwrap();
        assert_eq!(h[1] & 0x80, 0x80, "client frames are masked");
        let len = usize::from(h[1] & 0x7f);
        assert!(len < 126, "a small frame");
        let mut mask = [0u8; 4];
        tcp.read_exact(&mut mask).await.unwrap();
        let mut payload = vec![0u8; len];
        tcp.read_exact(&mut payload).await.unwrap();
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        (h[0], payload)
    })
    .await
    .expect("no frame in time")
}

#[tokio::test]
async fn ping_interval_sends_pings_while_idle() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());

    // Without the flag, an idle client sends nothing.
    let mut quiet = Connect::spawn(&[&url]);
    let mut tcp = raw_accept(&listener).await;
    quiet.opened().await;
    let mut byte = [0u8; 1];
    assert!(
        timeout(Duration::from_millis(1500), tcp.read(&mut byte))
            .await
            .is_err(),
        "an idle client without --ping-interval sent something"
    );
    drop(quiet);
    drop(tcp);

    let mut c = Connect::spawn(&["--ping-interval", "0.5", &url]);
    let mut tcp = raw_accept(&listener).await;
    c.opened().await;
    let started = Instant::now();
    for round in 0..2 {
        let (first, payload) = read_client_frame(&mut tcp, Duration::from_secs(3)).await;
        assert_eq!(first, 0x89, "round {round}: FIN + ping");
        // Answered, the next ping comes one interval later.
        tcp.write_all(&[&[0x8a, payload.len() as u8][..], &payload].concat())
            .await
            .unwrap();
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "two pings after {elapsed:?}"
    );
    // EOF: the client's close frame (1000), answered, and a clean exit.
    c.eof();
    let (first, payload) = read_client_frame(&mut tcp, WAIT).await;
    assert_eq!((first, payload.as_slice()), (0x88, &[0x03, 0xe8][..]));
    tcp.write_all(&[0x88, 0x02, 0x03, 0xe8]).await.unwrap();
    drop(tcp);
    let (status, _, err) = c.finish(WAIT).await;
    assert!(status.success(), "{status:?} {err}");
}

#[tokio::test]
async fn ping_interval_gives_up_on_a_peer_that_never_answers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let mut c = Connect::spawn(&["--ping-interval", "0.5", &url]);
    let mut tcp = raw_accept(&listener).await;
    c.opened().await;
    let (first, _) = read_client_frame(&mut tcp, Duration::from_secs(3)).await;
    assert_eq!(first, 0x89);
    // No pong: after the 20 s pong timeout the peer is taken for dead. stdin stays open, so
    // that the client has no reason of its own to close.
    let started = Instant::now();
    let (status, _, err) = c.exit_with_stdin_open(Duration::from_secs(40)).await;
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("keepalive") && err.contains("clean false"),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_secs(15));
    drop(tcp);
}

// ---- against Python `websockets` ----

fn python() -> Option<PathBuf> {
    let path = std::env::var_os("SOCKEYE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop/.venv/bin/python")
        });
    if path.exists() {
        return Some(path);
    }
    if std::env::var("SOCKEYE_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!(
            "no Python venv at {}: run scripts/setup-python.sh",
            path.display()
        );
    }
    eprintln!(
        "skipping: no Python venv at {} (run scripts/setup-python.sh)",
        path.display()
    );
    None
}

async fn start_python_server(py: &PathBuf, compression: &str) -> (Child, String) {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop/python/echo_server.py");
    let mut child = Command::new(py)
        .arg(script)
        .args(["--port", "0", "--compression", compression])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn python");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("peer did not start")
        .unwrap()
        .expect("peer exited");
    let port = line.strip_prefix("LISTENING ").expect("LISTENING line");
    let base = format!("ws://127.0.0.1:{}", port.trim());
    (child, base)
}

async fn against_python_server(compression: &str) {
    let Some(py) = python() else { return };
    let (mut server, base) = start_python_server(&py, compression).await;

    let mut c = Connect::spawn(&["--close", "4000:done", &format!("{base}/")]);
    let open = c.opened().await;
    assert_eq!(
        open.contains("extensions \"permessage-deflate"),
        compression == "deflate",
        "{open}"
    );
    c.write("héllo 🌍\n".as_bytes()).await;
    assert_eq!(c.line().await, "héllo 🌍");
    let long = "0123456789abcdeé".repeat(4096);
    c.write(format!("{long}\n").as_bytes()).await;
    assert_eq!(c.line().await, long);
    // websockets echoes the close frame it receives.
    eof_gets_4000_done_back(c).await;

    let mut c = Connect::spawn(&["--binary", &format!("{base}/")]);
    c.opened().await;
    c.write(b"\x00\xff\n").await;
    assert_eq!(c.line().await, "00ff");
    let (status, _, err) = c.finish(WAIT).await;
    assert!(status.success(), "{status:?} {err}");

    // The server pings; the client's automatic pong gets "pong-ok". Then fragmented messages.
    let mut c = Connect::spawn(&[&format!("{base}/ping")]);
    c.opened().await;
    assert_eq!(c.line().await, "pong-ok");
    let (status, _, err) = c.finish(WAIT).await;
    assert!(status.success(), "{status:?} {err}");
    let mut c = Connect::spawn(&[&format!("{base}/fragmented")]);
    c.opened().await;
    assert_eq!(c.line().await, "frag-ment-ed");
    assert_eq!(c.line().await, "000102030405060708");
    let (status, _, err) = c.finish(WAIT).await;
    assert!(status.success(), "{status:?} {err}");

    // The server closes first: its code and reason, and a clean exit.
    let mut c = Connect::spawn(&[&format!("{base}/close-4001")]);
    c.opened().await;
    assert_eq!(
        c.close_line().await,
        "close: code 4001 reason \"server says bye\" clean true"
    );
    let (status, _, err) = c.exit_with_stdin_open(WAIT).await;
    assert!(status.success(), "{status:?} {err}");

    // The server process killed: 1006 and exit status 2.
    kill_under_an_open_connection(&mut server, &format!("{base}/")).await;
}

#[tokio::test]
async fn against_python_websockets_server() {
    against_python_server("none").await;
}

#[tokio::test]
async fn against_python_websockets_server_with_permessage_deflate() {
    against_python_server("deflate").await;
}

#[tokio::test]
async fn the_hello_demo_ends_the_process_when_the_server_says_bye() {
    let (_server, addr) = start_server(&[]).await;
    let mut c = Connect::spawn(&[&format!("ws://{addr}/hello")]);
    c.opened().await;
    c.write(b"My name is John\n").await;
    assert_eq!(c.line().await, "Hello from server, John!");
    assert_eq!(
        c.close_line().await,
        "close: code 1000 reason \"Bye!\" clean true"
    );
    let (status, _, err) = c.exit_with_stdin_open(WAIT).await;
    assert!(status.success(), "{status:?} {err}");
}
