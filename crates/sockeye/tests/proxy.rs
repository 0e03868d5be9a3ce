//! The client through real proxies on loopback: tinyproxy (HTTP CONNECT, Basic credentials)
//! and microsocks (SOCKS5 with username and password): `wss://` and `ws://` tunnels, and clear
//! errors for refused credentials and a proxy that is not there. The proxy environment variables are covered by the unit tests
//! of `sockeye::proxy` and, end to end, by sockeye-cli's `serve_tls` tests.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use sockeye::tls::{rustls, CertResolver, CertSet};
use sockeye::{ClientRequest, Config, Error, Message, Proxy};
use support::{Ca, TinyProxy};
use tokio::net::TcpListener;
use tokio::time::timeout;

async fn echo_server(tls: Option<Arc<rustls::ServerConfig>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler = |upgrade: sockeye::Upgrade<sockeye::MaybeTlsStream>, _| async move {
        if let Ok(mut ws) = upgrade.accept(None).await {
            while let Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) = ws.recv().await {
                let _ = ws.send(msg).await;
            }
        }
    };
    match tls {
        Some(tls) => {
            tokio::spawn(sockeye::serve_tls(
                listener,
                tls,
                Config::default(),
                handler,
            ));
        }
        None => {
            tokio::spawn(sockeye::serve(listener, Config::default(), move |u, p| {
                handler(u.map_io(sockeye::MaybeTlsStream::from), p)
            }));
        }
    }
    port
}

/// A `wss://` echo server whose certificate for localhost `ca` signed, and a `ws://` one: the
/// two tunnels every proxy here must carry. Their ports, in that order.
async fn echo_servers(ca: &Ca) -> (u16, u16) {
    let tls = sockeye::tls::server_config(CertResolver::new(
        CertSet::new().with_default(ca.server(&["localhost"]).certified_key()),
    ))
    .unwrap();
    (echo_server(Some(tls)).await, echo_server(None).await)
}

/// `text`, then 1 MiB (more than one read of the tunnel), echoed unchanged; then a clean close.
async fn echo_through(mut ws: sockeye::WebSocket<sockeye::MaybeTlsStream>, text: &str) {
    ws.send(text).await.unwrap();
    let msg = timeout(Duration::from_secs(10), ws.recv()).await.unwrap();
    assert_eq!(msg.unwrap().unwrap(), Message::text(text));
    let big = vec![7u8; 1 << 20];
    ws.send(big.clone()).await.unwrap();
    let msg = timeout(Duration::from_secs(10), ws.recv()).await.unwrap();
    assert_eq!(msg.unwrap().unwrap(), Message::binary(big));
    ws.close(Some(1000), "").await.unwrap();
}

/// Our client to `url` through `proxy`, trusting `ca` for `wss://`.
async fn connect_through(
    url: &str,
    proxy: Proxy,
    ca: Option<&Ca>,
) -> sockeye::Result<sockeye::WebSocket<sockeye::MaybeTlsStream>> {
    let mut request = ClientRequest::new(url)?.proxy(proxy);
    if let Some(ca) = ca {
        request = request.tls(ca.client_config());
    }
    timeout(
        Duration::from_secs(10),
        sockeye::connect_with(request, Config::default()),
    )
    .await
    .expect("no answer within 10 s")
}

#[tokio::test]
async fn wss_and_ws_tunnel_through_tinyproxy_with_basic_auth() {
    let Some(proxy) = TinyProxy::start("sockeye", "s3cret") else {
        return;
    };
    let ca = Ca::new("Sockeye test CA");
    let (wss_port, ws_port) = echo_servers(&ca).await;
    // Credentials are percent-encoded in the URL, decoded for Proxy-Authorization.
    let via = Proxy::http(&proxy.url("sock%65ye:s%33cret")).unwrap();

    for (url, tls) in [
        (format!("wss://localhost:{wss_port}/"), true),
        (format!("ws://127.0.0.1:{ws_port}/"), false),
    ] {
        let ws = connect_through(&url, via.clone(), tls.then_some(&ca))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}\n{}", proxy.log()));
        assert_eq!(ws.get_ref().is_tls(), tls);
        echo_through(ws, "through the proxy").await;
    }
    let log = proxy.log();
    assert!(
        log.contains(&format!("CONNECT localhost:{wss_port}"))
            && log.contains(&format!("CONNECT 127.0.0.1:{ws_port}")),
        "tinyproxy did not see both tunnels:\n{log}"
    );

    // Wrong or missing credentials: the proxy's 407 (tinyproxy: 401 for wrong ones), said plainly.
    for (credentials, hint) in [("sockeye:wrong", "were refused"), ("", "put them in")] {
        let url = if credentials.is_empty() {
            format!("http://127.0.0.1:{}", proxy.port)
        } else {
            proxy.url(credentials)
        };
        let request = ClientRequest::new(&format!("wss://localhost:{wss_port}/"))
            .unwrap()
            .tls(ca.client_config())
            .proxy(Proxy::http(&url).unwrap());
        let err = sockeye::connect_with(request, Config::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Proxy(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            (text.contains("407") || text.contains("401"))
                && text.contains("requires authentication")
                && text.contains(hint),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_proxy_that_is_not_there_is_a_clear_error() {
    // A port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let request = ClientRequest::new("wss://example.invalid/")
        .unwrap()
        .proxy(Proxy::http(&format!("http://127.0.0.1:{port}")).unwrap());
    let err = sockeye::connect_with(request, Config::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Proxy(text) if text.contains("cannot connect to proxy")),
        "{err:?}"
    );
}

/// microsocks on a free loopback port with a username and password, logging every tunnel
/// ("connected to HOST:PORT", HOST as the client sent it); killed on drop.
struct Microsocks {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
    _dir: support::TempDir,
}

impl Microsocks {
    fn start(user: &str, password: &str) -> Option<Microsocks> {
        let bin = PathBuf::from("/usr/bin/microsocks");
        if !bin.exists() {
            support::require_or_skip("microsocks (Debian package microsocks)");
            return None;
        }
        // Ask the OS for a free port, then hand it to microsocks (it cannot report one itself).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = support::TempDir::new("microsocks");
        let log = dir.path().join("microsocks.log");
        let child = std::process::Command::new(bin)
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-u",
                user,
                "-P",
                password,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start microsocks");
        let mut proxy = Microsocks {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("microsocks exited with {status}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "microsocks did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(proxy)
    }

    fn url(&self, scheme: &str, credentials: &str) -> String {
        format!("{scheme}://{credentials}@127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Microsocks {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect_via(
    url: &str,
    proxy: &str,
    ca: Option<&Ca>,
) -> sockeye::Result<sockeye::WebSocket<sockeye::MaybeTlsStream>> {
    connect_through(url, Proxy::parse(proxy)?, ca).await
}

/// What connecting to `url` through `proxy` fails with, which must be a proxy error.
async fn proxy_error(url: &str, proxy: &str) -> String {
    let err = connect_via(url, proxy, None).await.unwrap_err();
    assert!(matches!(err, Error::Proxy(_)), "{err:?}");
    err.to_string()
}

#[tokio::test]
async fn wss_and_ws_tunnel_through_microsocks_socks5_and_socks5h_with_password() {
    let Some(proxy) = Microsocks::start("sockeye", "s3cret") else {
        return;
    };
    let ca = Ca::new("Sockeye test CA");
    let (wss_port, ws_port) = echo_servers(&ca).await;
    for (url, scheme) in [
        // socks5h: the proxy resolves localhost; TLS still verifies the name end to end.
        (format!("wss://localhost:{wss_port}/"), "socks5h"),
        // socks5: resolved here, the proxy gets 127.0.0.1.
        (format!("wss://localhost:{wss_port}/"), "socks5"),
        (format!("ws://127.0.0.1:{ws_port}/"), "socks5"),
    ] {
        // Credentials are percent-encoded in the URL, decoded for RFC 1929.
        let via = proxy.url(scheme, "sock%65ye:s%33cret");
        let tls = url.starts_with("wss");
        let ws = connect_via(&url, &via, tls.then_some(&ca))
            .await
            .unwrap_or_else(|e| panic!("{url} via {via}: {e}"));
        assert_eq!(ws.get_ref().is_tls(), tls);
        echo_through(ws, "through socks").await;
    }
    let log = proxy.log();
    assert!(
        log.contains(&format!("connected to localhost:{wss_port}"))
            && log.contains(&format!("connected to 127.0.0.1:{wss_port}"))
            && log.contains(&format!("connected to 127.0.0.1:{ws_port}")),
        "microsocks did not see the three tunnels as asked:\n{log}"
    );
}

#[tokio::test]
async fn socks5h_leaves_the_name_to_the_proxy_and_socks5_resolves_it_here() {
    let Some(proxy) = Microsocks::start("sockeye", "s3cret") else {
        return;
    };
    let url = "wss://name.invalid/";
    // socks5h: the proxy is asked for the name and answers with a failure code.
    let text = proxy_error(url, &proxy.url("socks5h", "sockeye:s3cret")).await;
    assert!(text.contains("CONNECT name.invalid:443 failed"), "{text}");
    // socks5: the lookup fails here, before the proxy is asked.
    let text = proxy_error(url, &proxy.url("socks5", "sockeye:s3cret")).await;
    assert!(text.contains("cannot resolve name.invalid"), "{text}");
}

#[tokio::test]
async fn socks5_wrong_or_missing_password_is_a_clear_error() {
    let Some(proxy) = Microsocks::start("sockeye", "s3cret") else {
        return;
    };
    let ws_port = echo_server(None).await;
    let url = format!("ws://127.0.0.1:{ws_port}/");
    let text = proxy_error(&url, &proxy.url("socks5", "sockeye:wrong")).await;
    assert!(text.contains("refused the username and password"), "{text}");
    let text = proxy_error(&url, &format!("socks5://127.0.0.1:{}", proxy.port)).await;
    assert!(text.contains("requires authentication"), "{text}");
}
