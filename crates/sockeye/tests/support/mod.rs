//! Shared by the TLS and proxy tests (also included with `#[path]` by sockeye-cli's and
//! interop's tests): a certificate authority made at run time with rcgen, files in a
//! temporary folder removed on drop, and tinyproxy on a free loopback port.
//!
//! No key is ever written outside the temporary folder, and none is committed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sockeye::tls::rustls;
use sockeye::tls::{CertificateDer, PrivateKeyDer};

/// A folder under the system's temporary folder, removed with everything in it on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sockeye-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        // Write then rename, so that a reader never sees half a file.
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, contents).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
}

/// A certificate and its key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Leaf {
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key_der.clone().into())
    }

    /// `name.crt` (the chain: this certificate) and `name.key` in `dir`.
    pub fn write(&self, dir: &TempDir, name: &str) -> (PathBuf, PathBuf) {
        (
            dir.write(&format!("{name}.crt"), &self.cert_pem),
            dir.write(&format!("{name}.key"), &self.key_pem),
        )
    }

    pub fn certified_key(&self) -> Arc<rustls::sign::CertifiedKey> {
        sockeye::tls::certified_key(vec![self.cert_der.clone()], self.key_der()).unwrap()
    }

    /// A server configuration presenting this certificate and offering these ALPN protocols
    /// (`h2` and `http/1.1` for a server that speaks both).
    pub fn server_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(sockeye::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone()], self.key_der())
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Ca {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    fn sign(&self, mut params: CertificateParams, cn: &str) -> Leaf {
        let key = KeyPair::generate().unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// A server certificate for these DNS names and IP addresses.
    pub fn server(&self, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params, &names[0])
    }

    /// A server certificate that expired in 2021.
    pub fn expired_server(&self, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        self.sign(params, &names[0])
    }

    /// A client certificate (mutual TLS).
    pub fn client(&self, cn: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, cn)
    }

    /// A client configuration trusting this CA only.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        sockeye::ClientTls::only_added_roots()
            .add_root_certificate(self.cert_der.clone())
            .build()
            .unwrap()
    }
}

/// Whether a missing peer program fails the test (`SOCKEYE_REQUIRE_INTEROP=1`, set by
/// scripts/test.sh) or skips it.
pub fn require_or_skip(what: &str) -> bool {
    if std::env::var("SOCKEYE_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!("{what} is missing: scripts/test.sh installs it");
    }
    eprintln!("skipping: {what} is missing (scripts/test.sh installs it)");
    false
}

/// tinyproxy on a free loopback port, with Basic credentials `user:password`, logging every
/// CONNECT; killed on drop.
pub struct TinyProxy {
    child: std::process::Child,
    pub port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl TinyProxy {
    pub fn start(user: &str, password: &str) -> Option<TinyProxy> {
        let bin = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists());
        let Some(bin) = bin else {
            require_or_skip("tinyproxy (Debian package tinyproxy)");
            return None;
        };
        let dir = TempDir::new("tinyproxy");
        // Ask the OS for a free port, then hand it to tinyproxy (it cannot report one itself).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.write(
            "tinyproxy.conf",
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 100\nLogLevel Connect\n\
                 BasicAuth {user} {password}\nDisableViaHeader Yes\n"
            ),
        );
        let log = dir.path().join("tinyproxy.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = std::process::Command::new(bin)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start tinyproxy");
        let mut proxy = TinyProxy {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("tinyproxy exited with {status}:\n{}", proxy.log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "tinyproxy did not listen:\n{}",
                proxy.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(proxy)
    }

    pub fn url(&self, credentials: &str) -> String {
        format!("http://{credentials}@127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TinyProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
