//! `sockeye serve` listeners: plain and TLS, certificates from PEM files, SNI, reload on SIGHUP.
//!
//! Which addresses speak what:
//! - `--listen ADDR` (repeatable) is plain `ws://`/`http://`, `--listen-tls ADDR` (repeatable)
//!   is `wss://`/`https://`; both may be given to serve the same endpoints on both.
//! - With certificates (`--tls-cert`/`--tls-key` or `--tls-sni`) and no `--listen-tls`, every
//!   `--listen` address speaks TLS (default `127.0.0.1:8443`).
//! - With neither, one plain listener on `127.0.0.1:8080`.
//!
//! Each listener prints `LISTENING <addr>` on stdout once bound: the `--listen` ones first,
//! then the `--listen-tls` ones, each in the order given. SIGHUP reads every certificate and
//! key file again and swaps them in for new handshakes; open connections keep theirs. A reload
//! that fails keeps the old certificates and logs why.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use sockeye::tls::{self, CertResolver, CertSet};
use sockeye::{Config, MaybeTlsStream, Upgrade};
use tokio::net::TcpListener;

use crate::config::{TlsSettings, DEFAULT_LISTEN, DEFAULT_LISTEN_TLS};

impl TlsSettings {
    fn has_certificates(&self) -> bool {
        self.tls_cert.is_some() || !self.sni.is_empty()
    }

    /// Reads every certificate and key file.
    fn load(&self) -> sockeye::Result<CertSet> {
        let mut set = CertSet::new();
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            set = set.with_default(tls::load_certified_key(cert, key)?);
        }
        for sni in &self.sni {
            set = set.with_name(&sni.host, tls::load_certified_key(&sni.cert, &sni.key)?);
        }
        Ok(set)
    }
}

/// The bound listeners of `sockeye serve`.
pub struct Listeners {
    plain: Vec<TcpListener>,
    tls: Vec<TcpListener>,
    tls_config: Option<Arc<sockeye::tls::rustls::ServerConfig>>,
}

/// Loads the certificates (a missing, unreadable or mismatched file is an error here, before
/// anything listens), binds every listener and prints its `LISTENING` line, and arms the
/// SIGHUP reload.
pub async fn bind(listen: &[SocketAddr], args: &TlsSettings) -> crate::Result<Listeners> {
    let (plain_addrs, tls_addrs) = if !args.listen_tls.is_empty() {
        (listen.to_vec(), args.listen_tls.clone())
    } else if args.has_certificates() {
        let tls = if listen.is_empty() {
            vec![DEFAULT_LISTEN_TLS]
        } else {
            listen.to_vec()
        };
        (Vec::new(), tls)
    } else if listen.is_empty() {
        (vec![DEFAULT_LISTEN], Vec::new())
    } else {
        (listen.to_vec(), Vec::new())
    };
    if !tls_addrs.is_empty() && !args.has_certificates() {
        return Err(
            "--listen-tls needs a certificate: --tls-cert and --tls-key, or --tls-sni".into(),
        );
    }
    if tls_addrs.is_empty() && args.client_ca.is_some() {
        return Err("--tls-client-ca needs a TLS listener".into());
    }
    let tls_config = if tls_addrs.is_empty() {
        None
    } else {
        let resolver = CertResolver::new(args.load()?);
        let config = match &args.client_ca {
            Some(ca) => {
                tls::server_config_with_client_auth(resolver.clone(), tls::load_certs(ca)?)?
            }
            None => tls::server_config(resolver.clone())?,
        };
        reload_on_sighup(args.clone(), resolver)?;
        Some(config)
    };
    let mut listeners = Listeners {
        plain: Vec::new(),
        tls: Vec::new(),
        tls_config,
    };
    for (addrs, secure) in [(plain_addrs, false), (tls_addrs, true)] {
        for addr in addrs {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let local = listener.local_addr()?;
            let (http, ws) = if secure {
                ("https", "wss")
            } else {
                ("http", "ws")
            };
            tracing::info!("listening on {http}://{local}/ ({ws}://{local}/echo, /hello, /chat)");
            println!("LISTENING {local}");
            if secure {
                listeners.tls.push(listener);
            } else {
                listeners.plain.push(listener);
            }
        }
    }
    Ok(listeners)
}

fn reload_on_sighup(args: TlsSettings, resolver: Arc<CertResolver>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match args.load() {
                Ok(set) => {
                    resolver.replace(set);
                    tracing::info!("SIGHUP: TLS certificates reloaded");
                }
                Err(e) => {
                    tracing::error!("SIGHUP: reload failed, keeping the old certificates: {e}")
                }
            }
        }
    });
    Ok(())
}

impl Listeners {
    /// Serves every listener with the same handler until one of them fails. Each connection
    /// speaks HTTP/1.1 or HTTP/2: TLS listeners offer ALPN `h2` and `http/1.1`, plain ones take
    /// h2c with prior knowledge beside HTTP/1.1. Every request, whichever version carried it,
    /// reaches `handler` as an [`Upgrade`].
    pub fn serve<F, Fut>(
        self,
        config: Config,
        handler: F,
    ) -> impl Future<Output = std::io::Result<()>>
    where
        F: Fn(Upgrade<MaybeTlsStream>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut tasks = tokio::task::JoinSet::new();
        for listener in self.plain {
            tasks.spawn(sockeye::hyper::serve(
                listener,
                None,
                config.clone(),
                handler.clone(),
            ));
        }
        if let Some(tls_config) = self.tls_config {
            for listener in self.tls {
                tasks.spawn(sockeye::hyper::serve(
                    listener,
                    Some(tls_config.clone()),
                    config.clone(),
                    handler.clone(),
                ));
            }
        }
        async move {
            match tasks.join_next().await {
                Some(Ok(result)) => result,
                Some(Err(e)) => Err(std::io::Error::other(e)),
                None => Ok(()),
            }
        }
    }
}
