//! What the `sockeye serve` tests share: starting the real binary and reading where it listens.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// Starts `sockeye serve ARGS` and returns the addresses of its `count` LISTENING lines.
pub async fn start(args: &[&str], count: usize) -> (Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sockeye"))
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addrs = Vec::new();
    for _ in 0..count {
        let line = timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("no LISTENING line within 10 s")
            .unwrap()
            .expect("sockeye serve exited");
        addrs.push(line.strip_prefix("LISTENING ").unwrap().to_owned());
    }
    (child, addrs)
}

/// Starts `sockeye serve ARGS` with one listener and returns its address.
pub async fn start_one(args: &[&str]) -> (Child, String) {
    let (child, mut addrs) = start(args, 1).await;
    (child, addrs.remove(0))
}
