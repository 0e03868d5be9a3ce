//! TLS with rustls: `wss://` for the client, TLS listeners for the server. Compiled with the
//! `rustls-ring` or `rustls-aws-lc` feature, which picks the crypto provider ([`provider`]).
//!
//! Client: [`connect`](crate::connect) verifies `wss://` servers against the bundled Mozilla roots
//! (feature `webpki-roots`) and the platform's roots (feature `native-roots`), hostname
//! verification always on. [`ClientTls`] builds a configuration with an extra CA or a client certificate
//! (mutual TLS); give it to [`ClientRequest::tls`](crate::ClientRequest::tls).
//!
//! Server: [`serve_tls`] is [`serve`](crate::serve) with a TLS handshake first (bounded by
//! `Config::handshake_timeout`), and [`accept_tls`] does one connection. [`CertResolver`]
//! picks a certificate by SNI host name and can be swapped at run time (reload on SIGHUP)
//! without touching open connections. Both sides offer ALPN `http/1.1`.
//!
//! The stream type of both sides is [`MaybeTlsStream`]; its accessors tell the peer's
//! certificates, the ALPN protocol and (on a server) the SNI name the client asked for.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;

use crate::error::{Error, Result};
pub use crate::stream::MaybeTlsStream;

pub use rustls;
pub use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
pub use tokio_rustls;

/// The ALPN protocol both sides offer: WebSocket runs over HTTP/1.1 (RFC 6455 §4.1).
pub const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// The crypto provider every configuration made here uses: aws-lc-rs with the `rustls-aws-lc`
/// feature (even when `rustls-ring` is on too, as with `--all-features`: a build that asks for
/// aws-lc-rs, for FIPS say, gets it), `ring` otherwise.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    #[cfg(feature = "rustls-aws-lc")]
    let default_provider = rustls::crypto::aws_lc_rs::default_provider;
    #[cfg(not(feature = "rustls-aws-lc"))]
    let default_provider = rustls::crypto::ring::default_provider;
    PROVIDER
        .get_or_init(|| Arc::new(default_provider()))
        .clone()
}

// ---- PEM files ----

/// Reads every certificate of a PEM file (a chain: end-entity first, then intermediates).
pub fn load_certs(path: impl AsRef<Path>) -> Result<Vec<CertificateDer<'static>>> {
    let path = path.as_ref();
    let data = std::fs::read(path).map_err(|e| {
        Error::TlsConfig(format!(
            "cannot read certificate file {}: {e}",
            path.display()
        ))
    })?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::TlsConfig(format!(
                "certificate file {} is not valid PEM: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::TlsConfig(format!(
            "no CERTIFICATE block in {}",
            path.display()
        )));
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE
/// KEY`) or SEC1 (`EC PRIVATE KEY`).
pub fn load_private_key(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>> {
    let path = path.as_ref();
    let data = std::fs::read(path)
        .map_err(|e| Error::TlsConfig(format!("cannot read key file {}: {e}", path.display())))?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => Error::TlsConfig(format!(
            "no private key (PKCS#8, RSA or EC PEM block) in {}",
            path.display()
        )),
        e => Error::TlsConfig(format!("key file {} is not valid PEM: {e}", path.display())),
    })
}

/// Loads a certificate chain and its private key, and checks that they belong together.
pub fn load_certified_key(
    cert_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
) -> Result<Arc<CertifiedKey>> {
    let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
    let certs = load_certs(cert_path)?;
    let key = load_private_key(key_path)?;
    certified_key(certs, key).map_err(|e| {
        Error::TlsConfig(format!(
            "{} with {}: {}",
            cert_path.display(),
            key_path.display(),
            e
        ))
    })
}

/// A chain and key as a [`CertifiedKey`], after checking that the key is usable and matches
/// the end-entity certificate.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>> {
    if chain.is_empty() {
        return Err(Error::TlsConfig("empty certificate chain".into()));
    }
    match CertifiedKey::from_der(chain, key, &provider()) {
        Ok(key) => Ok(Arc::new(key)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Err(
            Error::TlsConfig("the private key does not match the certificate".into()),
        ),
        Err(e) => Err(Error::TlsConfig(format!(
            "unusable certificate or key: {e}"
        ))),
    }
}

// ---- client ----

/// Builds the rustls configuration of a `wss://` client.
///
/// `ClientTls::new()` trusts the bundled Mozilla roots and the platform's (those its build has:
/// features `webpki-roots` and `native-roots`); add a private CA
/// with [`add_root_pem_file`](Self::add_root_pem_file), present a client certificate with
/// [`client_identity_pem_files`](Self::client_identity_pem_files). Host names are always
/// verified; there is deliberately no switch to turn verification off: tests trust their own
/// CA instead.
#[derive(Clone)]
pub struct ClientTls {
    webpki_roots: bool,
    native_roots: bool,
    extra_roots: Vec<CertificateDer<'static>>,
    identity: Option<Arc<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("webpki_roots", &self.webpki_roots)
            .field("native_roots", &self.native_roots)
            .field("extra_roots", &self.extra_roots.len())
            .field("client_identity", &self.identity.is_some())
            .finish()
    }
}

impl Default for ClientTls {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientTls {
    /// Bundled Mozilla roots plus the platform's roots, as far as the build has them (features
    /// `webpki-roots` and `native-roots`).
    pub fn new() -> Self {
        ClientTls {
            webpki_roots: cfg!(feature = "webpki-roots"),
            native_roots: cfg!(feature = "native-roots"),
            extra_roots: Vec::new(),
            identity: None,
        }
    }

    /// No roots at all: only the CAs added with `add_root_*` are trusted.
    pub fn only_added_roots() -> Self {
        ClientTls {
            webpki_roots: false,
            native_roots: false,
            ..Self::new()
        }
    }

    /// Whether to trust the Mozilla roots bundled at build time (`webpki-roots`).
    #[cfg(feature = "webpki-roots")]
    pub fn webpki_roots(mut self, on: bool) -> Self {
        self.webpki_roots = on;
        self
    }

    /// Whether to trust the platform's roots (`rustls-native-certs`: on Linux
    /// `SSL_CERT_FILE`, `SSL_CERT_DIR` or the distribution's bundle).
    #[cfg(feature = "native-roots")]
    pub fn native_roots(mut self, on: bool) -> Self {
        self.native_roots = on;
        self
    }

    /// Trusts one more CA certificate.
    pub fn add_root_certificate(mut self, cert: CertificateDer<'static>) -> Self {
        self.extra_roots.push(cert);
        self
    }

    /// Trusts every certificate of a PEM file.
    pub fn add_root_pem_file(mut self, path: impl AsRef<Path>) -> Result<Self> {
        self.extra_roots.extend(load_certs(path)?);
        Ok(self)
    }

    /// Presents this certificate chain and key when the server asks for one (mutual TLS).
    pub fn client_identity(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        self.identity = Some(Arc::new((chain, key)));
        self
    }

    /// [`client_identity`](Self::client_identity) from PEM files.
    pub fn client_identity_pem_files(
        self,
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<Self> {
        // Checks early that the key matches the certificate.
        load_certified_key(&cert_path, &key_path)?;
        Ok(self.client_identity(load_certs(cert_path)?, load_private_key(key_path)?))
    }

    /// The rustls configuration, with ALPN `http/1.1`.
    pub fn build(&self) -> Result<Arc<ClientConfig>> {
        let mut roots = RootCertStore::empty();
        #[cfg(feature = "webpki-roots")]
        if self.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        #[cfg(feature = "native-roots")]
        if self.native_roots {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::debug!("platform root certificates: {e}");
            }
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!("platform root certificates: {added} added, {ignored} ignored");
        }
        for cert in &self.extra_roots {
            roots
                .add(cert.clone())
                .map_err(|e| Error::TlsConfig(format!("unusable CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(Error::TlsConfig("no trusted root certificates".into()));
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::TlsConfig(e.to_string()))?
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            Some(identity) => builder
                .with_client_auth_cert(identity.0.clone(), identity.1.clone_key())
                .map_err(|e| Error::TlsConfig(format!("unusable client certificate: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
        Ok(Arc::new(config))
    }
}

/// The configuration `connect` uses for `wss://` unless the request has its own: made once,
/// from [`ClientTls::new`].
pub fn default_client_config() -> Result<Arc<ClientConfig>> {
    static DEFAULT: OnceLock<std::result::Result<Arc<ClientConfig>, String>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| ClientTls::new().build().map_err(|e| e.to_string()))
        .clone()
        .map_err(Error::TlsConfig)
}

/// The TLS client handshake over an open stream, with SNI and verification against `host`.
#[cfg(feature = "client")]
pub(crate) async fn connect_tls(
    tcp: TcpStream,
    host: &url::Host<&str>,
    config: Arc<ClientConfig>,
) -> Result<MaybeTlsStream> {
    let name = match host {
        url::Host::Domain(d) => ServerName::try_from(d.trim_end_matches('.').to_owned())
            .map_err(|e| Error::Url(format!("host {d:?} is not a valid TLS server name: {e}")))?,
        url::Host::Ipv4(ip) => ServerName::IpAddress(std::net::IpAddr::V4(*ip).into()),
        url::Host::Ipv6(ip) => ServerName::IpAddress(std::net::IpAddr::V6(*ip).into()),
    };
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(tls_error)?;
    Ok(tls.into())
}

/// tokio-rustls reports TLS failures as `io::Error`s wrapping a `rustls::Error`: unwrap them so
/// that "certificate expired" or "not valid for name" reads as such.
pub(crate) fn tls_error(e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        match e
            .into_inner()
            .map(|inner| inner.downcast::<rustls::Error>())
        {
            Some(Ok(tls)) => return Error::Tls(*tls),
            Some(Err(other)) => return Error::Io(io::Error::other(other)),
            None => unreachable!("checked above"),
        }
    }
    Error::Io(e)
}

// ---- server ----

/// The certificates a server presents: one per SNI host name (exact names, or `*.example.com`
/// wildcards matching one label), and a default for clients that send no or an unknown name.
#[derive(Clone, Default)]
pub struct CertSet {
    default: Option<Arc<CertifiedKey>>,
    names: HashMap<String, Arc<CertifiedKey>>,
}

impl fmt::Debug for CertSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.names.keys().collect();
        names.sort();
        f.debug_struct("CertSet")
            .field("default", &self.default.is_some())
            .field("names", &names)
            .finish()
    }
}

impl CertSet {
    /// An empty set: add certificates with [`with_default`](CertSet::with_default) and
    /// [`with_name`](CertSet::with_name).
    pub fn new() -> Self {
        Self::default()
    }

    /// The certificate for clients without SNI or with a name not listed.
    pub fn with_default(mut self, key: Arc<CertifiedKey>) -> Self {
        self.default = Some(key);
        self
    }

    /// The certificate for one SNI host name (case-insensitive; `*.example.com` for a wildcard).
    pub fn with_name(mut self, name: &str, key: Arc<CertifiedKey>) -> Self {
        self.names.insert(name.to_ascii_lowercase(), key);
        self
    }

    /// Whether no certificate was added.
    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.names.is_empty()
    }

    /// The certificate for a client that asked for `name` (`None`: no SNI).
    pub fn lookup(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = name {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if let Some(key) = self.names.get(&name) {
                return Some(key.clone());
            }
            if let Some((_, parent)) = name.split_once('.') {
                if let Some(key) = self.names.get(&format!("*.{parent}")) {
                    return Some(key.clone());
                }
            }
        }
        self.default.clone()
    }
}

/// A [`ResolvesServerCert`] whose [`CertSet`] can be replaced while the server runs: new
/// handshakes see the new certificates, established connections are not affected.
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertSet>>,
}

impl CertResolver {
    /// A resolver serving `certs`, shared with the server config.
    pub fn new(certs: CertSet) -> Arc<Self> {
        Arc::new(CertResolver {
            current: RwLock::new(Arc::new(certs)),
        })
    }

    /// Swaps the certificates in (a reload).
    pub fn replace(&self, certs: CertSet) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(certs);
    }

    /// The certificates new handshakes are served from.
    pub fn current(&self) -> Arc<CertSet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let key = self.current().lookup(client_hello.server_name());
        if key.is_none() {
            tracing::debug!(
                sni = client_hello.server_name(),
                "no certificate for this name"
            );
        }
        key
    }
}

/// A server configuration with ALPN `http/1.1` that takes its certificates from `resolver`
/// and asks clients for none.
pub fn server_config(resolver: Arc<dyn ResolvesServerCert>) -> Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::TlsConfig(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(Arc::new(config))
}

/// Like [`server_config`], but every client must present a certificate issued by one of
/// `client_cas` (mutual TLS).
pub fn server_config_with_client_auth(
    resolver: Arc<dyn ResolvesServerCert>,
    client_cas: Vec<CertificateDer<'static>>,
) -> Result<Arc<ServerConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in client_cas {
        roots
            .add(cert)
            .map_err(|e| Error::TlsConfig(format!("unusable client CA certificate: {e}")))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| Error::TlsConfig(format!("client certificate verifier: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::TlsConfig(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(Arc::new(config))
}

/// The server side of the TLS handshake on an accepted connection, within `timeout`.
pub async fn accept_tls(
    tcp: TcpStream,
    tls: Arc<ServerConfig>,
    timeout: Duration,
) -> Result<MaybeTlsStream> {
    let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(tcp);
    match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(stream)) => Ok(stream.into()),
        Ok(Err(e)) => Err(tls_error(e)),
        Err(_) => Err(Error::Timeout("TLS handshake")),
    }
}

/// [`serve`](crate::serve) over TLS: accepts TCP connections forever; in its own task each
/// one does the TLS handshake (within `config.handshake_timeout`), then its request head is
/// read and handed to `handler`. A client that fails the handshake (plain HTTP, garbage, an
/// untrusted client certificate, a stall) only loses its own connection.
#[cfg(feature = "server")]
pub async fn serve_tls<F, Fut>(
    listener: tokio::net::TcpListener,
    tls: Arc<ServerConfig>,
    config: crate::Config,
    handler: F,
) -> std::io::Result<()>
where
    F: Fn(crate::Upgrade<MaybeTlsStream>, std::net::SocketAddr) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let never = crate::server::accept_loop(listener, move |stream, peer| {
        let handler = handler.clone();
        let config = config.clone();
        let tls = tls.clone();
        async move {
            let stream = match accept_tls(stream, tls, config.handshake_timeout).await {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
            };
            match crate::read_request(stream, config).await {
                Ok(upgrade) => handler(upgrade, peer).await,
                Err(e) => tracing::debug!(%peer, "handshake failed: {e}"),
            }
        }
    })
    .await;
    match never {}
}
