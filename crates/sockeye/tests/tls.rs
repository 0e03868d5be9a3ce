//! `wss://` between our client and our server, with certificates made at run time: trust,
//! verification failures (expired, wrong host, unknown CA), SNI, reload, mutual TLS, and
//! clients that do not speak TLS or stall.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sockeye::tls::{rustls, CertResolver, CertSet, MaybeTlsStream};
use sockeye::{ClientRequest, ClientTls, Config, Error, Message};
use support::{Ca, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// A TLS echo server. `/sni` first sends the SNI name the client asked for, `/client` the
/// number of certificates the client presented; then every path echoes.
async fn tls_server(tls: Arc<rustls::ServerConfig>, config: Config) -> SocketAddr {
    tls_server_on("127.0.0.1:0", tls, config).await.unwrap()
}

async fn tls_server_on(
    addr: &str,
    tls: Arc<rustls::ServerConfig>,
    config: Config,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(sockeye::serve_tls(
        listener,
        tls,
        config,
        |upgrade, _| async move {
            let stream = upgrade
                .get_ref()
                .expect("an HTTP/1.1 request has its own stream");
            assert!(stream.is_tls());
            assert_eq!(stream.alpn_protocol(), Some(&b"http/1.1"[..]));
            let first = match upgrade.path() {
                "/sni" => Some(stream.sni_hostname().unwrap_or("(none)").to_owned()),
                "/client" => Some(
                    stream
                        .peer_certificates()
                        .map_or(0, |c| c.len())
                        .to_string(),
                ),
                _ => None,
            };
            let Ok(mut ws) = upgrade.accept(None).await else {
                return;
            };
            if let Some(first) = first {
                let _ = ws.send(first).await;
            }
            while let Some(msg) = ws.recv().await {
                if let Ok(msg @ (Message::Text(_) | Message::Binary(_))) = msg {
                    let _ = ws.send(msg).await;
                }
            }
        },
    ));
    Ok(addr)
}

fn server_config(leaf: &support::Leaf) -> Arc<rustls::ServerConfig> {
    sockeye::tls::server_config(CertResolver::new(
        CertSet::new().with_default(leaf.certified_key()),
    ))
    .unwrap()
}

/// [`tls_server`] presenting `leaf` to every client, with the default configuration.
async fn tls_server_for(leaf: &support::Leaf) -> SocketAddr {
    tls_server(server_config(leaf), Config::default()).await
}

/// Why the client refused the server's certificate; any other error fails the test.
fn certificate_error(err: &Error) -> &rustls::CertificateError {
    match err {
        Error::Tls(rustls::Error::InvalidCertificate(why)) => why,
        other => panic!("not a certificate error: {other:?}"),
    }
}

async fn connect(url: &str, ca: &Ca) -> sockeye::Result<sockeye::WebSocket<MaybeTlsStream>> {
    connect_tls(url, ca.client_config()).await
}

/// Our client with `tls` as its whole TLS configuration, never through a proxy (whatever the
/// environment says), so the server under test is the only one it talks to.
async fn connect_tls(
    url: &str,
    tls: Arc<rustls::ClientConfig>,
) -> sockeye::Result<sockeye::WebSocket<MaybeTlsStream>> {
    let request = ClientRequest::new(url)?.tls(tls).no_proxy();
    sockeye::connect_with(request, Config::default()).await
}

async fn next<S>(ws: &mut sockeye::WebSocket<S>) -> Message
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    timeout(Duration::from_secs(10), ws.recv())
        .await
        .expect("nothing within 10 s")
        .expect("stream ended")
        .expect("error")
}

async fn echo_round_trip(ws: &mut sockeye::WebSocket<MaybeTlsStream>, text: &str) {
    ws.send(text).await.unwrap();
    assert_eq!(next(ws).await, Message::text(text));
}

#[tokio::test]
async fn our_client_and_server_talk_over_wss() {
    let ca = Ca::new("Sockeye test CA");
    let leaf = ca.server(&["localhost", "127.0.0.1"]);
    let addr = tls_server_for(&leaf).await;

    for url in [
        format!("wss://localhost:{}/sni", addr.port()),
        format!("wss://127.0.0.1:{}/sni", addr.port()),
    ] {
        let mut ws = connect(&url, &ca).await.unwrap();
        let stream = ws.get_ref();
        assert!(stream.is_tls());
        assert_eq!(stream.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(stream.peer_certificates().unwrap()[0], leaf.cert_der);
        assert!(stream.protocol_version().is_some() && stream.cipher_suite().is_some());
        let sni = next(&mut ws).await;
        // An IP address is not sent as SNI (RFC 6066 §3).
        let expected = if url.contains("localhost") {
            "localhost"
        } else {
            "(none)"
        };
        assert_eq!(sni, Message::text(expected), "{url}");
        assert!(ws.extensions().starts_with("permessage-deflate"));
        echo_round_trip(&mut ws, "héllo over TLS").await;
        let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i * 7 + i / 251) as u8).collect();
        ws.send(big.clone()).await.unwrap();
        assert_eq!(next(&mut ws).await, Message::binary(big));
        ws.close(Some(1000), "bye").await.unwrap();
        match next(&mut ws).await {
            Message::Close(event) => assert!(event.was_clean, "{event:?}"),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn ipv6_literal_urls_connect_and_verify_the_ip() {
    let ca = Ca::new("Sockeye test CA");
    let leaf = ca.server(&["localhost", "::1"]);
    let Ok(addr) = tls_server_on("[::1]:0", server_config(&leaf), Config::default()).await else {
        eprintln!("skipping: no IPv6 loopback here");
        return;
    };
    let mut ws = connect(&format!("wss://[::1]:{}/", addr.port()), &ca)
        .await
        .unwrap();
    echo_round_trip(&mut ws, "v6").await;
}

#[tokio::test]
async fn an_expired_certificate_is_refused_with_a_clear_error() {
    let ca = Ca::new("Sockeye test CA");
    let addr = tls_server_for(&ca.expired_server(&["localhost"])).await;
    let err = connect(&format!("wss://localhost:{}/", addr.port()), &ca)
        .await
        .unwrap_err();
    assert!(
        matches!(
            certificate_error(&err),
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. }
        ),
        "{err:?}"
    );
    eprintln!("{err}");
    assert!(err.to_string().contains("expired"), "{err}");
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused_with_a_clear_error() {
    let ca = Ca::new("Sockeye test CA");
    let addr = tls_server_for(&ca.server(&["other.example"])).await;
    for host in ["localhost", "127.0.0.1"] {
        let err = connect(&format!("wss://{host}:{}/", addr.port()), &ca)
            .await
            .unwrap_err();
        assert!(
            matches!(
                certificate_error(&err),
                rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. }
            ),
            "{err:?}"
        );
        eprintln!("{err}");
        assert!(err.to_string().contains("not valid for name"), "{err}");
    }
}

#[tokio::test]
async fn the_default_roots_do_not_trust_a_private_ca() {
    let ca = Ca::new("Sockeye test CA");
    let addr = tls_server_for(&ca.server(&["localhost"])).await;
    let err = sockeye::connect(&format!("wss://localhost:{}/", addr.port()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            certificate_error(&err),
            rustls::CertificateError::UnknownIssuer
        ),
        "{err:?}"
    );
}

/// The TLS client handshake for `name` to `addr`, whatever `name` resolves to.
async fn tls_to(
    addr: SocketAddr,
    name: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls_client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
    sockeye::tls::tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

use sockeye::tls::tokio_rustls::client as tokio_rustls_client;

#[tokio::test]
async fn sni_picks_the_certificate_by_host_name_and_a_resolver_swap_reaches_new_handshakes() {
    let ca = Ca::new("Sockeye test CA");
    let (a, b, wild, fallback) = (
        ca.server(&["a.test"]),
        ca.server(&["b.test"]),
        ca.server(&["*.wild.test"]),
        ca.server(&["fallback.test"]),
    );
    let resolver = CertResolver::new(
        CertSet::new()
            .with_name("a.test", a.certified_key())
            .with_name("B.TEST", b.certified_key())
            .with_name("*.wild.test", wild.certified_key())
            .with_default(fallback.certified_key()),
    );
    let addr = tls_server(
        sockeye::tls::server_config(resolver.clone()).unwrap(),
        Config::default(),
    )
    .await;
    let presented = |name: &'static str| {
        let config = ca.client_config();
        async move {
            let tls = tls_to(addr, name, config).await?;
            Ok::<_, std::io::Error>(tls.get_ref().1.peer_certificates().unwrap()[0].clone())
        }
    };
    assert_eq!(presented("a.test").await.unwrap(), a.cert_der);
    assert_eq!(presented("b.test").await.unwrap(), b.cert_der);
    assert_eq!(presented("x.wild.test").await.unwrap(), wild.cert_der);
    assert_eq!(presented("fallback.test").await.unwrap(), fallback.cert_der);
    // An unknown name gets the default certificate, which the client then refuses.
    assert!(presented("unknown.test").await.is_err());

    // A WebSocket over one of them, through client_handshake, stays open across a swap.
    let tls = tls_to(addr, "a.test", ca.client_config()).await.unwrap();
    let request = ClientRequest::new("wss://a.test/sni").unwrap();
    let mut ws = sockeye::client_handshake(MaybeTlsStream::from(tls), &request, Config::default())
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await, Message::text("a.test"));

    let a2 = ca.server(&["a.test"]);
    resolver.replace(CertSet::new().with_name("a.test", a2.certified_key()));
    assert_eq!(presented("a.test").await.unwrap(), a2.cert_der);
    assert!(
        presented("b.test").await.is_err(),
        "b.test was removed and there is no default any more"
    );
    ws.send("still here").await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("still here"));
}

#[tokio::test]
async fn mutual_tls_asks_for_and_checks_the_client_certificate() {
    let ca = Ca::new("Sockeye test CA");
    let client_ca = Ca::new("Sockeye client CA");
    let tls = sockeye::tls::server_config_with_client_auth(
        CertResolver::new(CertSet::new().with_default(ca.server(&["localhost"]).certified_key())),
        vec![client_ca.cert_der.clone()],
    )
    .unwrap();
    let addr = tls_server(tls, Config::default()).await;
    let url = format!("wss://localhost:{}/client", addr.port());

    let dir = TempDir::new("mtls");
    let (cert, key) = client_ca.client("alice").write(&dir, "alice");
    let ca_file = dir.write("ca.pem", &ca.cert_pem);
    let config = ClientTls::only_added_roots()
        .add_root_pem_file(&ca_file)
        .unwrap()
        .client_identity_pem_files(&cert, &key)
        .unwrap()
        .build()
        .unwrap();
    let mut ws = connect_tls(&url, config).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("1"));
    echo_round_trip(&mut ws, "with a client certificate").await;

    // Without a certificate, or with one from another CA, the server refuses: with TLS 1.3 the
    // client learns it from the server's alert, when it reads the handshake response.
    let stranger = Ca::new("Someone else").client("mallory");
    for config in [
        ca.client_config(),
        ClientTls::only_added_roots()
            .add_root_certificate(ca.cert_der.clone())
            .client_identity(vec![stranger.cert_der.clone()], stranger.key_der())
            .build()
            .unwrap(),
    ] {
        let err = connect_tls(&url, config).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("CertificateRequired")
                || text.contains("UnknownCA")
                || text.contains("BadCertificate")
                || text.contains("alert"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn plain_http_garbage_and_stalled_handshakes_only_hurt_themselves() {
    let ca = Ca::new("Sockeye test CA");
    let mut config = Config::default();
    config.handshake_timeout = Duration::from_millis(700);
    let addr = tls_server(server_config(&ca.server(&["localhost"])), config).await;
    let url = format!("wss://localhost:{}/", addr.port());

    // A stalled client (TCP only), one that sends half a ClientHello, a plain-HTTP client,
    // and one that sends garbage.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n")
        .await
        .unwrap();
    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage.write_all(&[0xde; 4096]).await.unwrap();

    // Meanwhile a real client gets through at once.
    let mut ws = timeout(Duration::from_secs(5), connect(&url, &ca))
        .await
        .expect("a TLS client was held up by the bad ones")
        .unwrap();
    echo_round_trip(&mut ws, "unaffected").await;

    // Plain HTTP and garbage are dropped at once, with a TLS alert at most; the stalled ones
    // when the handshake timeout runs out.
    for (name, tcp, within) in [
        ("plain HTTP", &mut plain, Duration::from_millis(500)),
        ("garbage", &mut garbage, Duration::from_millis(500)),
        ("stalled", &mut stalled, Duration::from_secs(3)),
        ("half a ClientHello", &mut half, Duration::from_secs(3)),
    ] {
        let mut buf = Vec::new();
        let read = timeout(within, tcp.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "{name}: still open after {within:?}");
        // Nothing but (at most) an alert record: no HTTP, no certificate.
        assert!(
            buf.len() < 64 && !buf.starts_with(b"HTTP"),
            "{name}: {buf:?}"
        );
    }
    echo_round_trip(&mut ws, "still unaffected").await;
}

#[tokio::test]
async fn the_connect_timeout_covers_a_server_that_never_answers_the_tls_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            held.push(tcp);
        }
    });
    let ca = Ca::new("Sockeye test CA");
    let request = ClientRequest::new(&format!("wss://localhost:{}/", addr.port()))
        .unwrap()
        .tls(ca.client_config())
        .no_proxy()
        .connect_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let err = sockeye::connect_with(request, Config::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    holder.abort();
}

#[tokio::test]
async fn certificate_and_key_files_fail_with_clear_errors() {
    let ca = Ca::new("Sockeye test CA");
    let dir = TempDir::new("files");
    let (cert, key) = ca.server(&["localhost"]).write(&dir, "good");
    let (_, other_key) = ca.server(&["localhost"]).write(&dir, "other");
    assert!(sockeye::tls::load_certified_key(&cert, &key).is_ok());

    let missing = dir.path().join("missing.pem");
    let err = sockeye::tls::load_certified_key(&missing, &key).unwrap_err();
    assert!(
        err.to_string().contains("cannot read certificate file")
            && err.to_string().contains("missing.pem"),
        "{err}"
    );
    let err = sockeye::tls::load_certified_key(&cert, &missing).unwrap_err();
    assert!(err.to_string().contains("cannot read key file"), "{err}");
    let err = sockeye::tls::load_certified_key(&cert, &other_key).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    let err = sockeye::tls::load_certified_key(&cert, &cert).unwrap_err();
    assert!(err.to_string().contains("no private key"), "{err}");
    let err = sockeye::tls::load_certified_key(&key, &key).unwrap_err();
    assert!(err.to_string().contains("no CERTIFICATE"), "{err}");
    let junk = dir.write(
        "junk.pem",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    );
    assert!(sockeye::tls::load_certified_key(&junk, &key).is_err());
}

#[tokio::test]
async fn ws_urls_still_connect_in_plain_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sockeye::serve(
        listener,
        Config::default(),
        |upgrade, _| async move {
            if let Ok(mut ws) = upgrade.accept(None).await {
                while let Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) = ws.recv().await
                {
                    let _ = ws.send(msg).await;
                }
            }
        },
    ));
    let mut ws = sockeye::connect(&format!("ws://{addr}/")).await.unwrap();
    assert!(!ws.get_ref().is_tls());
    assert!(ws.get_ref().peer_certificates().is_none());
    echo_round_trip(&mut ws, "plain").await;
}
