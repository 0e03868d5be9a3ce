//! What the `sockeye bench` tests share: running the real binary and reading its JSON line.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::time::timeout;

/// Runs `sockeye bench ARGS`; returns its exit status, its JSON line and its stderr.
pub async fn bench(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let out = timeout(
        Duration::from_secs(60),
        Command::new(env!("CARGO_BIN_EXE_sockeye"))
            .arg("bench")
            .args(args)
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("sockeye bench did not finish within 60 s")
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout.lines().last().unwrap_or_default().to_owned();
    (
        out.status,
        line,
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// One field of the JSON line.
pub fn field(json: &str, key: &str) -> serde_json::Value {
    let value: serde_json::Value = serde_json::from_str(json).expect("one JSON object");
    value[key].clone()
}
