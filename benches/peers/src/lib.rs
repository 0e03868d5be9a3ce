//! What every peer echo server shares: its command line, its runtime and its listener.
//!
//! `SERVER ADDR [--multi-thread] [--deflate]`: listens on ADDR (port 0 picks one), prints
//! `LISTENING <addr>` on stdout once it accepts connections, and echoes every text and binary
//! message on any path until killed. The runtime is tokio's current_thread one unless
//! `--multi-thread` is given (one worker per CPU the process may run on, so `taskset` decides).
//! `--deflate` turns permessage-deflate on where the library has it; it is off otherwise.
//! `--tls-cert CERT.pem --tls-key KEY.pem` (the peers that support it) serve `wss://` instead:
//! rustls with the `ring` provider and ALPN `http/1.1`, the configuration `sockeye serve` uses,
//! the same for every peer.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use sockeye::tls::rustls::ServerConfig;
use sockeye::tls::tokio_rustls::{server::TlsStream, TlsAcceptor};
use tokio::net::{TcpListener, TcpStream};

pub struct Args {
    pub addr: SocketAddr,
    pub multi_thread: bool,
    pub deflate: bool,
    /// `--tls-cert` and `--tls-key`.
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Args {
    /// `deflate_supported` and `tls_supported`: whether the peer takes `--deflate` and the
    /// TLS flags.
    pub fn parse(deflate_supported: bool, tls_supported: bool) -> Args {
        let mut addr = None;
        let mut multi_thread = false;
        let mut deflate = false;
        let (mut cert, mut key) = (None, None);
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--multi-thread" => multi_thread = true,
                "--deflate" if deflate_supported => deflate = true,
                "--deflate" => usage("this library has no permessage-deflate"),
                "--tls-cert" | "--tls-key" if !tls_supported => usage("no TLS in this peer"),
                "--tls-cert" => {
                    cert = Some(args.next().unwrap_or_else(|| usage("--tls-cert FILE")))
                }
                "--tls-key" => key = Some(args.next().unwrap_or_else(|| usage("--tls-key FILE"))),
                other if addr.is_none() => {
                    addr = Some(other.parse().unwrap_or_else(|_| usage("bad address")))
                }
                _ => usage("unexpected argument"),
            }
        }
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert.into(), key.into())),
            (None, None) => None,
            _ => usage("--tls-cert and --tls-key go together"),
        };
        Args {
            addr: addr.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap()),
            multi_thread,
            deflate,
            tls,
        }
    }

    /// The rustls server configuration of `--tls-cert`/`--tls-key`, if given.
    pub fn tls_config(&self) -> Option<Arc<ServerConfig>> {
        let (cert, key) = self.tls.as_ref()?;
        let key = sockeye::tls::load_certified_key(cert, key).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        });
        let resolver =
            sockeye::tls::CertResolver::new(sockeye::tls::CertSet::new().with_default(key));
        Some(sockeye::tls::server_config(resolver).expect("TLS configuration"))
    }

    pub fn runtime(&self) -> tokio::runtime::Runtime {
        if self.multi_thread {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .expect("runtime")
    }
}

fn usage(why: &str) -> ! {
    eprintln!(
        "{why}\nusage: SERVER [ADDR] [--multi-thread] [--deflate] \
         [--tls-cert CERT.pem --tls-key KEY.pem]"
    );
    std::process::exit(2)
}

/// Runs `handle` for every accepted connection (with TCP_NODELAY set, as every contender gets
/// the same socket options) on the runtime `args` asks for.
pub fn serve<F, Fut>(args: &Args, handle: F)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr = args.addr;
    args.runtime().block_on(async move {
        let listener = TcpListener::bind(addr).await.expect("bind");
        println!("LISTENING {}", listener.local_addr().expect("local_addr"));
        std::io::stdout().flush().expect("stdout");
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(handle(stream));
                }
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    });
}

/// [`serve`] with the TLS handshake first (`--tls-cert`/`--tls-key`): `handle` gets the TLS
/// stream. Handshakes that fail only lose their own connection.
pub fn serve_tls<F, Fut>(args: &Args, tls: Arc<ServerConfig>, handle: F)
where
    F: Fn(TlsStream<TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let acceptor = TlsAcceptor::from(tls);
    let handle = Arc::new(handle);
    serve(args, move |stream| {
        let (acceptor, handle) = (acceptor.clone(), handle.clone());
        async move {
            if let Ok(tls) = acceptor.accept(stream).await {
                handle(tls).await;
            }
        }
    });
}

/// An axum app on [`serve`]'s listener: each connection served by hyper-util's HTTP/1.1 and
/// HTTP/2 server with upgrades, as `axum::serve` does, so that the two axum contenders differ
/// only in the WebSocket library behind the route.
pub fn serve_axum(args: &Args, app: axum::Router) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    use hyper_util::service::TowerToHyperService;
    serve(args, move |tcp| {
        let service = TowerToHyperService::new(app.clone());
        async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http2().enable_connect_protocol();
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                .await;
        }
    })
}
