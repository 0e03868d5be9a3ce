//! The client through a real HTTP proxy (tinyproxy on loopback, with Basic credentials):
//! `wss://` and `ws://` tunnels with CONNECT, and clear errors for refused credentials and a
//! proxy that is not there. The proxy environment variables are covered by the unit tests
//! of `sockeye::proxy` and, end to end, by sockeye-cli's `serve_tls` tests.

mod support;

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

#[tokio::test]
async fn wss_and_ws_tunnel_through_tinyproxy_with_basic_auth() {
    let Some(proxy) = TinyProxy::start("sockeye", "s3cret") else {
        return;
    };
    let ca = Ca::new("Sockeye test CA");
    let tls = sockeye::tls::server_config(CertResolver::new(
        CertSet::new().with_default(ca.server(&["localhost"]).certified_key()),
    ))
    .unwrap();
    let wss_port = echo_server(Some(tls)).await;
    let ws_port = echo_server(None).await;
    // Credentials are percent-encoded in the URL, decoded for Proxy-Authorization.
    let via = Proxy::http(&proxy.url("sock%65ye:s%33cret")).unwrap();

    for (url, tls) in [
        (format!("wss://localhost:{wss_port}/"), true),
        (format!("ws://127.0.0.1:{ws_port}/"), false),
    ] {
        let mut request = ClientRequest::new(&url).unwrap().proxy(via.clone());
        if tls {
            request = request.tls(ca.client_config());
        }
        let mut ws = timeout(
            Duration::from_secs(10),
            sockeye::connect_with(request, Config::default()),
        )
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{url}: {e}\n{}", proxy.log()));
        assert_eq!(ws.get_ref().is_tls(), tls);
        ws.send("through the proxy").await.unwrap();
        let msg = timeout(Duration::from_secs(10), ws.recv()).await.unwrap();
        assert_eq!(msg.unwrap().unwrap(), Message::text("through the proxy"));
        let big = vec![7u8; 1 << 20];
        ws.send(big.clone()).await.unwrap();
        let msg = timeout(Duration::from_secs(10), ws.recv()).await.unwrap();
        assert_eq!(msg.unwrap().unwrap(), Message::binary(big));
        ws.close(Some(1000), "").await.unwrap();
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
