//! `sockeye connect URL`: a line-based interactive client.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use sockeye::{ClientRequest, ClientTls, Config, Message, Proxy};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::serve::anyhow_like;

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// ws:// or wss:// URL to connect to.
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
    /// Also trust the CA certificates in this PEM file (wss://).
    #[arg(long = "ca-file", value_name = "CA.pem")]
    ca_file: Option<PathBuf>,
    /// Trust only --ca-file, not the bundled and the system's roots.
    #[arg(long, requires = "ca_file")]
    only_ca_file: bool,
    /// Client certificate chain (PEM) for servers that ask for one (mutual TLS).
    #[arg(long, value_name = "CERT.pem", requires = "key")]
    cert: Option<PathBuf>,
    /// Private key of --cert (PEM: PKCS#8, RSA or EC).
    #[arg(long, value_name = "KEY.pem", requires = "cert")]
    key: Option<PathBuf>,
    /// HTTP proxy to tunnel through with CONNECT, http://[user:password@]host:port (default:
    /// from HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY).
    #[arg(long, value_name = "URL", conflicts_with = "no_proxy")]
    proxy: Option<String>,
    /// Connect directly, ignoring the proxy environment variables.
    #[arg(long)]
    no_proxy: bool,
    /// Seconds allowed for TCP, proxy and TLS together.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    connect_timeout: f64,
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
    if args.ca_file.is_some() || args.cert.is_some() {
        let mut tls = if args.only_ca_file {
            ClientTls::only_added_roots()
        } else {
            ClientTls::new()
        };
        if let Some(ca) = &args.ca_file {
            tls = tls.add_root_pem_file(ca)?;
        }
        if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
            tls = tls.client_identity_pem_files(cert, key)?;
        }
        request = request.tls(tls.build()?);
    }
    if let Some(proxy) = &args.proxy {
        request = request.proxy(Proxy::http(proxy)?);
    } else if args.no_proxy {
        request = request.no_proxy();
    }
    let connect_timeout = Duration::try_from_secs_f64(args.connect_timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or("--connect-timeout must be a positive number of seconds")?;
    request = request.connect_timeout(connect_timeout);
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
