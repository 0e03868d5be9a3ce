//! For tests of nodes joined over NATS, in this crate and in the CLI's: a real `nats-server`
//! with JetStream on a free loopback port. Not part of the API.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `nats-server -js` on a free loopback port with its store in a temporary directory;
/// killed when dropped.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    store: std::path::PathBuf,
}

impl NatsServer {
    /// `None` when nats-server is not installed and the interop tests are not required.
    pub fn start() -> Option<NatsServer> {
        let installed = Command::new("nats-server")
            .arg("--version")
            .output()
            .is_ok();
        if !installed {
            assert!(
                std::env::var_os("SOCKEYE_REQUIRE_INTEROP").is_none(),
                "nats-server is required (apt-get install nats-server)"
            );
            eprintln!("skipped: no nats-server");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store =
            std::env::temp_dir().join(format!("sockeye-nats-{}-{port}", std::process::id()));
        let mut server = NatsServer {
            child: None,
            port,
            store,
        };
        server.run();
        Some(server)
    }

    pub fn run(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nats-server did not listen on {}", self.port);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
