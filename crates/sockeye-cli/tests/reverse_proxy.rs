//! `sockeye serve` behind a real nginx (Debian package `nginx`, run by the test on a free
//! loopback port with its own configuration, prefix, pid and logs): WebSocket upgrades pass
//! through, and with `--trust-proxy` the logged client address is the one nginx forwards, in
//! `X-Forwarded-For` or `Forwarded`. Without `--trust-proxy` nobody's headers change it.
//!
//! Without nginx the nginx tests are skipped, unless `SOCKEYE_REQUIRE_INTEROP=1` (then they fail).

mod common;
#[path = "../../sockeye/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sockeye::{ClientRequest, CloseCode, Config, Message};
use support::TempDir;
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// `sockeye serve ARGS` with its log (stderr) in a file.
struct Server {
    _child: Child,
    addr: String,
    log: PathBuf,
}

impl Server {
    async fn start(dir: &TempDir, args: &[&str]) -> Server {
        let log = dir.path().join("sockeye.log");
        let mut command = common::serve_command(&[&["--listen", "127.0.0.1:0"], args].concat());
        command
            .env("NO_COLOR", "1")
            .stderr(std::fs::File::create(&log).unwrap());
        let (child, mut addrs) = common::spawn_listening(command, 1).await;
        let addr = addrs.remove(0);
        Server {
            _child: child,
            addr,
            log,
        }
    }

    /// The log so far, without colours.
    fn log(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Waits for the `nth` (from 0) `connection` log line and returns the client address it
    /// names.
    async fn logged_client(&self, nth: usize) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            let clients: Vec<String> = log
                .lines()
                .filter(|l| l.contains(" connection "))
                .filter_map(|l| l.split("client=").nth(1))
                .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
                .collect();
            if let Some(client) = clients.get(nth) {
                return client.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no connection line #{nth} in the log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx in the foreground on two free loopback ports, both proxying to `upstream` with the
/// WebSocket upgrade headers:
/// - `plain`: `X-Forwarded-For $proxy_add_x_forwarded_for`, as most sites configure it;
/// - `forwarded`: a fixed `X-Forwarded-For 203.0.113.7` and an RFC 7239 `Forwarded` header with
///   a quoted IPv6 address and port, which wins.
struct Nginx {
    child: std::process::Child,
    plain: u16,
    forwarded: u16,
    dir: TempDir,
}

impl Nginx {
    fn start(upstream: &str) -> Option<Nginx> {
        let Some(bin) = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
        else {
            support::require_or_skip("nginx (Debian package nginx)");
            return None;
        };
        let dir = TempDir::new("nginx");
        let d = dir.path().display();
        let (plain, forwarded) = (free_port(), free_port());
        let common = format!(
            "proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection \"upgrade\";
            proxy_read_timeout 60s;"
        );
        let conf = dir.write(
            "nginx.conf",
            format!(
                "daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{plain};
        location / {{
            {common}
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
    server {{
        listen 127.0.0.1:{forwarded};
        location / {{
            {common}
            proxy_set_header X-Forwarded-For 203.0.113.7;
            proxy_set_header Forwarded 'for=\"[2001:db8::7]:4711\";proto=http, for=$remote_addr';
        }}
    }}
}}
"
            ),
        );
        let out = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = std::process::Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx {
            child,
            plain,
            forwarded,
            dir,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        for port in [plain, forwarded] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = nginx.child.try_wait() {
                    panic!("nginx exited with {status}:\n{}", nginx.logs());
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "nginx did not listen:\n{}",
                    nginx.logs()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some(nginx)
    }

    fn logs(&self) -> String {
        let read = |name: &str| read_or_empty(&self.dir.path().join(name));
        format!("{}{}", read("stderr.log"), read("error.log"))
    }
}

fn read_or_empty(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(
    url: &str,
    headers: &[(&str, &str)],
) -> sockeye::WebSocket<sockeye::MaybeTlsStream> {
    let mut request = ClientRequest::new(url).unwrap().no_proxy();
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    timeout(
        Duration::from_secs(10),
        sockeye::connect_with(request, Config::default()),
    )
    .await
    .expect("no handshake within 10 s")
    .unwrap()
}

async fn next(ws: &mut sockeye::WebSocket<sockeye::MaybeTlsStream>) -> Message {
    timeout(Duration::from_secs(10), ws.recv())
        .await
        .expect("nothing within 10 s")
        .expect("stream ended")
        .expect("error")
}

#[tokio::test]
async fn echo_through_nginx_with_the_forwarded_client_address() {
    let dir = TempDir::new("rproxy");
    let server = Server::start(&dir, &["--trust-proxy", "127.0.0.1"]).await;
    let Some(nginx) = Nginx::start(&server.addr) else {
        return;
    };

    // Text, binary (large enough for several nginx buffers), and the close code and reason.
    let mut ws = connect(
        &format!("ws://127.0.0.1:{}/echo", nginx.plain),
        &[("X-Forwarded-For", "203.0.113.7")],
    )
    .await;
    ws.send("through nginx").await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("through nginx"));
    let binary: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    ws.send(Message::binary(binary.clone())).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::binary(binary));
    ws.close(Some(4321), "done here").await.unwrap();
    match next(&mut ws).await {
        Message::Close(event) => {
            assert_eq!(event.code, CloseCode(4321));
            assert_eq!(event.reason, "done here");
            assert!(event.was_clean);
        }
        other => panic!("expected the close echo, got {other:?}"),
    }
    // nginx appended 127.0.0.1 (its peer, trusted); the right-most untrusted hop is the client.
    assert_eq!(
        server.logged_client(0).await,
        "203.0.113.7",
        "{}",
        server.log()
    );

    // Forwarded (quoted IPv6 with a port) wins over X-Forwarded-For.
    let mut ws = connect(&format!("ws://127.0.0.1:{}/echo", nginx.forwarded), &[]).await;
    ws.send("forwarded").await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("forwarded"));
    ws.close(Some(1000), "").await.unwrap();
    assert_eq!(
        server.logged_client(1).await,
        "2001:db8::7",
        "{}",
        server.log()
    );
    assert!(!nginx.logs().contains("[emerg]"), "{}", nginx.logs());
}

#[tokio::test]
async fn forwarded_headers_are_ignored_without_trust_proxy() {
    let dir = TempDir::new("rproxy-untrusted");
    let server = Server::start(&dir, &[]).await;
    // A client sends forged headers straight to sockeye.
    let mut ws = connect(
        &format!("ws://{}/echo", server.addr),
        &[
            ("X-Forwarded-For", "203.0.113.66"),
            ("Forwarded", "for=203.0.113.67"),
        ],
    )
    .await;
    ws.send("hi").await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("hi"));
    assert_eq!(
        server.logged_client(0).await,
        "127.0.0.1",
        "{}",
        server.log()
    );
    assert!(!server.log().contains("203.0.113.6"), "{}", server.log());

    // Trusting some other proxy does not make loopback's headers believable either.
    let dir = TempDir::new("rproxy-other");
    let server = Server::start(&dir, &["--trust-proxy", "10.0.0.0/8"]).await;
    let _ws = connect(
        &format!("ws://{}/echo", server.addr),
        &[("X-Forwarded-For", "203.0.113.66")],
    )
    .await;
    assert_eq!(
        server.logged_client(0).await,
        "127.0.0.1",
        "{}",
        server.log()
    );

    // And through nginx without --trust-proxy, the client is nginx.
    let dir = TempDir::new("rproxy-nginx-untrusted");
    let server = Server::start(&dir, &[]).await;
    let Some(nginx) = Nginx::start(&server.addr) else {
        return;
    };
    let _ws = connect(
        &format!("ws://127.0.0.1:{}/echo", nginx.forwarded),
        &[("X-Forwarded-For", "203.0.113.66")],
    )
    .await;
    assert_eq!(
        server.logged_client(0).await,
        "127.0.0.1",
        "{}",
        server.log()
    );
}

#[tokio::test]
async fn a_bad_trust_proxy_is_an_error_at_start() {
    let output = timeout(
        Duration::from_secs(10),
        Command::new(env!("CARGO_BIN_EXE_sockeye"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--trust-proxy",
                "10.0.0.0/99",
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("10.0.0.0/99"), "{stderr}");
}
