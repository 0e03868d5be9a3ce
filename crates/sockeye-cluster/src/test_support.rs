//! For tests of nodes joined over NATS, in this crate and in the CLI's: a real `nats-server`
//! with JetStream on a free loopback port, or three joined as a JetStream cluster. Not part of
//! the API.

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
        if !installed() {
            return None;
        }
        let port = free_port();
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One server of a [`NatsCluster`].
struct Member {
    child: Option<Child>,
    name: String,
    port: u16,
    cluster_port: u16,
    monitor_port: u16,
    store: std::path::PathBuf,
}

/// Three `nats-server -js` joined as one JetStream cluster on loopback, each with its own
/// ports and store; any one can be stopped and run again with its store. Killed when dropped.
pub struct NatsCluster {
    members: Vec<Member>,
    routes: String,
}

impl NatsCluster {
    /// `None` when nats-server is not installed and the interop tests are not required.
    /// Returns once every server knows the JetStream meta leader, so that streams can be
    /// created at once through any of them.
    pub fn start() -> Option<NatsCluster> {
        if !installed() {
            return None;
        }
        let id = format!("{}-{}", std::process::id(), free_port());
        let members: Vec<Member> = (0..3)
            .map(|i| Member {
                child: None,
                name: format!("s{i}"),
                port: free_port(),
                cluster_port: free_port(),
                monitor_port: free_port(),
                store: std::env::temp_dir().join(format!("sockeye-nats-cluster-{id}-{i}")),
            })
            .collect();
        let routes = members
            .iter()
            .map(|m| format!("nats://127.0.0.1:{}", m.cluster_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = NatsCluster { members, routes };
        for i in 0..3 {
            cluster.spawn(i);
        }
        for i in 0..3 {
            cluster.wait_ready(i);
        }
        Some(cluster)
    }

    fn spawn(&mut self, i: usize) {
        let m = &self.members[i];
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &m.port.to_string()])
            .args(["-m", &m.monitor_port.to_string()])
            .args(["--server_name", &m.name, "--cluster_name", "sockeye"])
            .args([
                "--cluster",
                &format!("nats://127.0.0.1:{}", m.cluster_port),
                "--routes",
                &self.routes,
            ])
            .args(["-js", "-sd"])
            .arg(&m.store)
            .arg("--log")
            .arg(m.store.with_extension("log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.members[i].child = Some(child);
    }

    /// Waits until server `i` answers /healthz and names a JetStream meta leader.
    fn wait_ready(&self, i: usize) {
        let port = self.members[i].monitor_port;
        for _ in 0..600 {
            let healthy = monitor_get(port, "/healthz").is_some_and(|b| b.contains("\"ok\""));
            let led = monitor_get(port, "/jsz")
                .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                .is_some_and(|v| {
                    v["meta_cluster"]["leader"]
                        .as_str()
                        .is_some_and(|l| !l.is_empty())
                });
            if healthy && led {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.members[i].store.with_extension("log"))
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        panic!(
            "nats-server {i} of the cluster was not ready in 30 s; its log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }

    /// Kills server `i` (its store stays).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs server `i` again on its ports and store, once killed, and waits until it is back
    /// in the cluster.
    pub fn run(&mut self, i: usize) {
        self.spawn(i);
        self.wait_ready(i);
    }

    /// The client URL of server `i`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.members[i].port)
    }

    /// The server that holds JetStream stream `name`, if one does (with one replica, one).
    pub fn holder(&self, name: &str) -> Option<usize> {
        let listed = format!("\"name\": \"{name}\"");
        (0..self.members.len()).find(|&i| {
            self.monitor(i, "/jsz?accounts=true&streams=true")
                .is_some_and(|body| body.contains(&listed))
        })
    }

    /// The monitoring endpoint `path` of server `i` (such as `/jsz?streams=true`), if it answers.
    pub fn monitor(&self, i: usize, path: &str) -> Option<String> {
        monitor_get(self.members[i].monitor_port, path)
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
            let _ = std::fs::remove_dir_all(&self.members[i].store);
            let _ = std::fs::remove_file(self.members[i].store.with_extension("log"));
        }
    }
}

fn installed() -> bool {
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
    }
    installed
}

/// The body of `GET path` on a monitoring port, if it answered 200.
fn monitor_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}
