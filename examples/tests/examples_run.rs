//! Runs every example of this package as the process a user would run, on loopback, against
//! real peers: Sockeye clients for the two servers, a Sockeye TLS server with a CA made here for
//! `tls_client`, and a `WampRouter` for `wamp_client`. Each test checks what the example printed
//! and what its peers saw.
//!
//! `cargo test -p sockeye-examples` builds the examples before it runs this; they are found
//! next to the test binary's folder (`target/debug/deps/` → `target/debug/examples/`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sockeye::tls::{rustls, CertResolver, CertSet, PrivateKeyDer};
use sockeye::{Bytes, ClientRequest, CloseEvent, Config, Error, Message};
use sockeye_wamp::client::Client;
use sockeye_wamp::{Dict, RouterConfig, Serializer, TransportConfig, Value, WampRouter};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// The longest any step may take: a line of output, a message, a whole run.
const STEP: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    timeout(STEP, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {STEP:?}: {what}"))
}

/// `target/<profile>/examples/<name>`, built by `cargo test` before the tests run.
fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent() // deps/
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps/");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} does not exist: run `cargo test -p sockeye-examples` (which builds the examples), \
         or `cargo build -p sockeye-examples --examples` first when picking one test target",
        path.display()
    );
    path
}

fn command(name: &str, args: &[&str]) -> Command {
    let mut command = Command::new(example_path(name));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// An example that runs until the test ends (a server), killed on drop.
struct Running {
    name: String,
    // Kept for `kill_on_drop`.
    _child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Running {
    fn start(name: &str, args: &[&str]) -> Running {
        let mut child = command(name, args)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        Running {
            name: name.to_owned(),
            _child: child,
            stdout,
        }
    }

    /// The next line the example printed.
    async fn line(&mut self) -> String {
        let what = format!("a line from {}", self.name);
        within(&what, self.stdout.next_line())
            .await
            .expect("reading the example's stdout")
            .unwrap_or_else(|| panic!("{} exited", self.name))
    }

    /// The address of its `LISTENING <addr>` first line.
    async fn listening(&mut self) -> SocketAddr {
        let line = self.line().await;
        line.strip_prefix("LISTENING ")
            .unwrap_or_else(|| panic!("first line of {}: {line:?}", self.name))
            .parse()
            .expect("an address after LISTENING")
    }
}

/// Runs an example to its end (within [`STEP`], killed otherwise) and returns its exit
/// status, stdout and stderr.
async fn run_to_end(name: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let child = command(name, args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let output = within(&format!("{name} to exit"), child.wait_with_output())
        .await
        .expect("the example's output");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn next_message<S>(ws: &mut sockeye::WebSocket<S>) -> Message
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    within("a message", ws.recv())
        .await
        .expect("a message before the end")
        .expect("a message, not an error")
}

// ---- split_tasks ----

/// A Sockeye echo server on loopback that reports the close event of each connection.
async fn echo_server() -> (SocketAddr, mpsc::UnboundedReceiver<CloseEvent>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closes, closed) = mpsc::unbounded_channel();
    tokio::spawn(sockeye::serve(
        listener,
        Config::default(),
        move |upgrade, _| {
            let closes = closes.clone();
            async move {
                let Ok(mut ws) = upgrade.accept(None).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.recv().await {
                    match message {
                        Message::Text(_) | Message::Binary(_) => {
                            let _ = ws.send(message).await;
                        }
                        Message::Close(event) => {
                            let _ = closes.send(event);
                        }
                        _ => {}
                    }
                }
            }
        },
    ));
    (addr, closed)
}

#[tokio::test]
async fn split_tasks_reads_every_echo_and_pong_while_the_writer_task_sends_and_closes() {
    let (addr, mut closed) = echo_server().await;
    let url = format!("ws://{addr}/");
    let (status, stdout, stderr) = run_to_end("split_tasks", &[&url, "3"]).await;
    assert!(status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let read: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("reader: "))
        .collect();
    // Echoes and pongs each arrive in order; a pong can overtake the echo sent before its ping,
    // since the server's core answers a ping as soon as it reads it.
    let echoes: Vec<&str> = read
        .iter()
        .copied()
        .filter(|l| l.starts_with("message"))
        .collect();
    let pongs: Vec<&str> = read
        .iter()
        .copied()
        .filter(|l| l.starts_with("pong"))
        .collect();
    assert_eq!(echoes, ["message 0", "message 1", "message 2"], "{stdout}");
    assert_eq!(
        pongs,
        ["pong ping 0", "pong ping 1", "pong ping 2"],
        "{stdout}"
    );
    assert_eq!(read.len(), 7, "{stdout}");
    assert_eq!(
        read.last(),
        Some(&"closed code=1000 reason=\"done\" clean=true"),
        "{stdout}"
    );
    assert!(lines.contains(&"writer: buffered 0"), "{stdout}");
    let latency = lines
        .iter()
        .find_map(|l| l.strip_prefix("latency: "))
        .and_then(|l| l.strip_suffix(" µs"))
        .unwrap_or_else(|| panic!("no latency line: {stdout}"));
    assert!(latency.parse::<u64>().is_ok(), "{latency}");
    assert!(lines.contains(&"reunited: Closed"), "{stdout}");
    let event = within("the server's close event", closed.recv())
        .await
        .expect("the server saw the connection end");
    assert_eq!(event, CloseEvent::new(sockeye::CloseCode::NORMAL, "done"));
}

// ---- auth_server ----

#[tokio::test]
async fn auth_server_refuses_a_handshake_without_the_right_token_with_401() {
    let mut server = Running::start("auth_server", &["127.0.0.1:0", "tok3n"]);
    let addr = server.listening().await;

    for (url, why) in [
        (format!("ws://{addr}/"), "no token"),
        (format!("ws://{addr}/?token=guess"), "wrong token"),
        (format!("ws://{addr}/?token=tok3"), "wrong token"),
    ] {
        let refused = within("a refusal", sockeye::connect(&url)).await;
        let response = match refused {
            Err(Error::Rejected(response)) => response,
            other => panic!("{url}: expected a 401, got {other:?}"),
        };
        assert_eq!(response.status(), 401, "{url}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"sockeye-examples\"",
            "{url}"
        );
        assert_eq!(response.body(), &Bytes::from(format!("{why}\n")), "{url}");
        let logged = server.line().await;
        assert!(
            logged.starts_with("refused 127.0.0.1:") && logged.ends_with(&format!(": {why}")),
            "{url}: {logged:?}"
        );
    }

    // A wrong bearer token is refused the same way.
    let request = ClientRequest::new(&format!("ws://{addr}/"))
        .unwrap()
        .header("Authorization", "Bearer tok3n-not");
    match within(
        "a refusal",
        sockeye::connect_with(request, Config::default()),
    )
    .await
    {
        Err(Error::Rejected(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected a 401, got {other:?}"),
    }
    assert!(server.line().await.ends_with(": wrong token"));
}

#[tokio::test]
async fn auth_server_accepts_the_token_in_the_query_or_a_bearer_header_and_echoes() {
    let mut server = Running::start("auth_server", &["127.0.0.1:0", "tok3n"]);
    let addr = server.listening().await;

    let by_query = ClientRequest::new(&format!("ws://{addr}/chat?room=1&token=tok3n")).unwrap();
    let by_header = ClientRequest::new(&format!("ws://{addr}/chat"))
        .unwrap()
        .header("Authorization", "Bearer tok3n");
    for request in [by_query, by_header] {
        let url = request.url().to_string();
        let mut ws = within(
            "the handshake",
            sockeye::connect_with(request, Config::default()),
        )
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(ws.response().unwrap().status(), 101);
        let logged = server.line().await;
        assert!(logged.starts_with("accepted 127.0.0.1:"), "{logged:?}");

        ws.send("ping me back").await.unwrap();
        assert_eq!(next_message(&mut ws).await, Message::text("ping me back"));
        ws.send(vec![0u8, 1, 2, 255]).await.unwrap();
        assert_eq!(
            next_message(&mut ws).await,
            Message::binary(vec![0u8, 1, 2, 255])
        );

        ws.close(Some(1000), "bye").await.unwrap();
        match next_message(&mut ws).await {
            Message::Close(event) => {
                assert_eq!(event, CloseEvent::new(sockeye::CloseCode::NORMAL, "bye"))
            }
            other => panic!("expected the close event, got {other:?}"),
        }
    }
}

// ---- broadcast ----

#[tokio::test]
async fn broadcast_sends_each_message_from_one_client_to_all_connected_clients() {
    let mut server = Running::start("broadcast", &["127.0.0.1:0"]);
    let addr = server.listening().await;
    let url = format!("ws://{addr}/");

    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(within("connecting", sockeye::connect(&url)).await.unwrap());
    }

    clients[0].send("hello, everyone").await.unwrap();
    for (i, ws) in clients.iter_mut().enumerate() {
        assert_eq!(
            next_message(ws).await,
            Message::text("hello, everyone"),
            "client {i}"
        );
    }
    // Binary too, from another client, and several messages in a row keep their order.
    clients[2].send(vec![7u8; 3]).await.unwrap();
    clients[1].send("second").await.unwrap();
    for (i, ws) in clients.iter_mut().enumerate() {
        let first = next_message(ws).await;
        let second = next_message(ws).await;
        let mut got = [first, second];
        // The two senders race each other to the server: only each one's own order is fixed.
        got.sort_by_key(|m| m.as_text().is_some());
        assert_eq!(
            got,
            [Message::binary(vec![7u8; 3]), Message::text("second")],
            "client {i}"
        );
    }

    // A client that leaves does not stop the others from hearing each other.
    let mut gone = clients.remove(0);
    gone.close(Some(1000), "").await.unwrap();
    assert!(matches!(next_message(&mut gone).await, Message::Close(e) if e.was_clean));
    clients[0].send("still here").await.unwrap();
    for ws in &mut clients {
        assert_eq!(next_message(ws).await, Message::text("still here"));
    }
}

// ---- tls_client ----

/// Files in a folder of their own under the temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sockeye-examples-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().expect("a UTF-8 path").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate authority made for one test, and a server certificate it signed.
struct TestCa {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A rustls server configuration presenting a certificate for `localhost` signed by this
    /// CA.
    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let certified = sockeye::tls::certified_key(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        sockeye::tls::server_config(CertResolver::new(CertSet::new().with_default(certified)))
            .unwrap()
    }
}

/// A Sockeye TLS echo server on loopback; each connection's close event is sent on the
/// returned channel.
async fn tls_echo_server(
    tls: Arc<rustls::ServerConfig>,
) -> (SocketAddr, mpsc::UnboundedReceiver<CloseEvent>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closes, closed) = mpsc::unbounded_channel();
    tokio::spawn(sockeye::serve_tls(
        listener,
        tls,
        Config::default(),
        move |upgrade, _| {
            let closes = closes.clone();
            async move {
                let Ok(mut ws) = upgrade.accept(None).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.recv().await {
                    match message {
                        Message::Close(event) => {
                            let _ = closes.send(event);
                        }
                        data => {
                            let _ = ws.send(data).await;
                        }
                    }
                }
            }
        },
    ));
    (addr, closed)
}

#[tokio::test]
async fn tls_client_trusts_the_ca_it_is_given_gets_the_reply_and_closes_with_1000() {
    let ca = TestCa::new("Sockeye examples test CA");
    let (addr, mut closed) = tls_echo_server(ca.server_config()).await;
    let dir = TempDir::new();
    let ca_file = dir.write("ca.pem", &ca.cert_pem);
    let url = format!("wss://localhost:{}/echo", addr.port());

    let (status, stdout, stderr) =
        run_to_end("tls_client", &[&url, &ca_file, "hello over TLS"]).await;
    assert!(status.success(), "{status}: {stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("connected: tls=true alpn=http/1.1 "),
        "{stdout}"
    );
    assert_eq!(lines[1], "reply: hello over TLS");
    assert_eq!(lines[2], "closed: code=1000 reason=\"done\" clean=true");

    // The server saw the client's close frame: 1000 "done".
    let event = within("the server's close event", closed.recv())
        .await
        .unwrap();
    assert_eq!(event.code, sockeye::CloseCode::NORMAL);
    assert_eq!(event.reason, "done");
    assert!(event.was_clean);
}

#[tokio::test]
async fn tls_client_refuses_a_server_whose_certificate_another_ca_signed() {
    let server_ca = TestCa::new("the server's CA");
    let other_ca = TestCa::new("a CA the server does not use");
    let (addr, mut closed) = tls_echo_server(server_ca.server_config()).await;
    let dir = TempDir::new();
    let ca_file = dir.write("other.pem", &other_ca.cert_pem);
    let url = format!("wss://localhost:{}/echo", addr.port());

    let (status, stdout, stderr) = run_to_end("tls_client", &[&url, &ca_file]).await;
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(stdout, "", "nothing was sent or received");
    assert!(
        stderr.contains("TLS handshake failed") && stderr.contains("UnknownIssuer"),
        "{stderr}"
    );
    assert!(closed.try_recv().is_err(), "no WebSocket was opened");
}

// ---- wamp_client ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wamp_client_registers_calls_subscribes_and_publishes_through_a_router() {
    let router = WampRouter::new(RouterConfig::default(), TransportConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/wamp", listener.local_addr().unwrap());
    tokio::spawn(sockeye::serve(
        listener,
        Config::default(),
        move |upgrade, _| {
            let router = router.clone();
            async move {
                let _ = router.serve(upgrade).await;
            }
        },
    ));

    // Another session of the realm, listening on the example's topic.
    let watcher = within(
        "joining",
        Client::connect(&url, "realm1", Serializer::MsgPack),
    )
    .await
    .unwrap();
    let mut greetings = watcher
        .subscribe("com.example.greetings", Dict::new())
        .await
        .unwrap();

    let (status, stdout, stderr) = run_to_end("wamp_client", &[&url, "realm1"]).await;
    assert!(status.success(), "{status}: {stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 7, "{stdout}");
    let session: u64 = lines[0]
        .strip_prefix("joined realm1 as session ")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_ne!(session, watcher.session_id());
    assert_eq!(lines[1], "registered com.example.add2");
    assert_eq!(lines[2], "called com.example.add2(2, 3) = 5");
    assert_eq!(lines[3], "subscribed to com.example.greetings");
    let publication: u64 = lines[4]
        .strip_prefix("published on com.example.greetings: publication ")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(
        lines[5],
        "event on com.example.greetings: \"hello from wamp_client\""
    );
    assert_eq!(lines[6], "left");

    // The router delivered the same publication to the other session.
    let event = within("the event", greetings.next()).await.unwrap();
    assert_eq!(event.publication, publication);
    assert_eq!(
        event.payload.args(),
        &[Value::from("hello from wamp_client")]
    );

    // The example's registration ended with its session: the procedure is gone.
    let err = within(
        "a call",
        watcher.call(
            "com.example.add2",
            sockeye_wamp::Payload::Args(vec![1.into(), 1.into()]),
            Dict::new(),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_uri(), Some("wamp.error.no_such_procedure"));
}
