//! `sockeye connect URL`: a line-based interactive client.

use std::process::ExitCode;

use clap::Args;
use sockeye::{ClientRequest, Config, Message};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::serve::anyhow_like;

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// ws:// URL to connect to.
    url: String,
    /// Offer a subprotocol (repeatable, most preferred first).
    #[arg(long = "protocol")]
    protocols: Vec<String>,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Origin header.
    #[arg(long)]
    origin: Option<String>,
    /// Close with this code and optional reason on EOF, as CODE[:REASON].
    #[arg(long, default_value = "1000")]
    close: String,
}

/// Exit status: 0 after a clean close, 1 on errors, 2 when the close was not clean.
pub async fn run(args: ConnectArgs) -> anyhow_like::Result<ExitCode> {
    let mut request = ClientRequest::new(&args.url)?;
    for p in &args.protocols {
        request = request.protocol(p);
    }
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("header {h:?} is not 'Name: value'"))?;
        request = request.header(name.trim(), value.trim());
    }
    if let Some(origin) = &args.origin {
        request = request.header("Origin", origin);
    }
    let (code, reason) = match args.close.split_once(':') {
        Some((c, r)) => (c.parse::<u16>()?, r.to_owned()),
        None => (args.close.parse::<u16>()?, String::new()),
    };
    let mut ws = sockeye::connect_with(request, Config::default()).await?;
    eprintln!(
        "open: protocol {:?}, extensions {:?}",
        ws.protocol().unwrap_or(""),
        ws.extensions()
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = lines.next_line(), if stdin_open => match line? {
                Some(line) => ws.send(line).await?,
                None => {
                    stdin_open = false;
                    ws.close(Some(code), &reason).await?;
                }
            },
            msg = ws.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    stdout.write_all(text.as_bytes()).await?;
                    stdout.write_all(b"\n").await?;
                    stdout.flush().await?;
                }
                Some(Ok(Message::Binary(data))) => {
                    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
                    stdout.write_all(format!("{hex}\n").as_bytes()).await?;
                    stdout.flush().await?;
                }
                Some(Ok(Message::Close(event))) => {
                    eprintln!("close: code {} reason {:?} clean {}", event.code, event.reason, event.was_clean);
                    return Ok(if event.was_clean { ExitCode::SUCCESS } else { ExitCode::from(2) });
                }
                Some(Err(e)) => eprintln!("error: {e}"),
                None => return Ok(ExitCode::from(2)),
            },
        }
    }
}
