//! `sockeye connect URL`: a line-based interactive client.
//!
//! Each stdin line becomes a text message (`--binary`: a binary message of the line's bytes).
//! Received text prints as a line on stdout; received binary prints as a line of hex, or as it
//! is with `--raw`. The open and close events go to stderr.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use sockeye::proto::close::CloseFrame;
use sockeye::{ClientRequest, ClientTls, CloseCode, Config, Message, Proxy};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

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
    /// Send each stdin line as a binary message of its bytes (without the newline) instead of
    /// a text message.
    #[arg(long)]
    binary: bool,
    /// Write received binary messages to stdout byte for byte, with nothing added, instead of
    /// as a line of hex.
    #[arg(long)]
    raw: bool,
    /// Send a ping after this many idle seconds; a peer that does not answer within 20 s is
    /// taken for dead (exit status 2). 0 sends no pings.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    ping_interval: f64,
}

/// Exit status: 0 after a clean close, 1 on errors, 2 when the close was not clean.
pub async fn run(args: ConnectArgs) -> crate::Result<ExitCode> {
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
    // Checked now rather than at EOF, when the session would end without its close frame.
    CloseFrame::from_application(CloseCode(code), reason.as_str())
        .map_err(|e| format!("--close: {e}"))?;
    let ping_interval = Duration::try_from_secs_f64(args.ping_interval)
        .map_err(|_| "--ping-interval must be a number of seconds, 0 for none")?;
    let ping_interval = (!ping_interval.is_zero()).then_some(ping_interval);
    let config = Config::default().ping_interval(ping_interval);
    let mut ws = sockeye::connect_with(request, config).await?;
    eprintln!(
        "open: protocol {:?}, extensions {:?}",
        ws.protocol().unwrap_or(""),
        ws.extensions()
    );
    let mut lines = stdin_lines();
    let mut stdout = tokio::io::stdout();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = lines.recv(), if stdin_open => match line {
                Some(line) => ws.send(line_message(line?, args.binary)?).await?,
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
                    if args.raw {
                        stdout.write_all(&data).await?;
                    } else {
                        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
                        stdout.write_all(format!("{hex}\n").as_bytes()).await?;
                    }
                    stdout.flush().await?;
                }
                Some(Ok(Message::Close(event))) => {
                    eprintln!("close: code {} reason {:?} clean {}", event.code, event.reason, event.was_clean);
                    return Ok(if event.was_clean { ExitCode::SUCCESS } else { ExitCode::from(2) });
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => eprintln!("error: {e}"),
                None => return Ok(ExitCode::from(2)),
            },
        }
    }
}

/// Reads stdin lines (each with its newline, if any) on a thread of its own; the channel ends
/// at EOF. Not `tokio::io::stdin()`: its reads run on the runtime's blocking pool, which the
/// runtime waits for when it shuts down, and the read of an idle terminal or pipe never ends.
/// With it, a close from the server (or a dead one) printed its close line and then hung until
/// the next Enter or Ctrl-D; a plain thread does not keep the process alive.
fn stdin_lines() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    use std::io::BufRead;
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            let read = stdin.read_until(b'\n', &mut line);
            let item = match read {
                Ok(0) => return,
                Ok(_) => Ok(line),
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// One stdin line, as read with its newline, as the message to send: binary keeps every byte
/// but the `\n`; text also drops a `\r` before it (as `lines()` does) and must be UTF-8.
fn line_message(mut line: Vec<u8>, binary: bool) -> crate::Result<Message> {
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if binary {
        return Ok(Message::binary(line));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let text = String::from_utf8(line)
        .map_err(|_| "a stdin line is not UTF-8 (use --binary to send bytes)")?;
    Ok(Message::text(text))
}

#[cfg(test)]
mod tests {
    use super::line_message;
    use sockeye::Message;

    #[test]
    fn lines_become_text_or_binary_messages() {
        let text = |l: &[u8]| line_message(l.to_vec(), false).unwrap();
        let binary = |l: &[u8]| line_message(l.to_vec(), true).unwrap();
        assert_eq!(text(b"hello\n"), Message::text("hello"));
        assert_eq!(text(b"dos\r\n"), Message::text("dos"));
        assert_eq!(
            text(b"last line, no newline"),
            Message::text("last line, no newline")
        );
        assert_eq!(
            binary(b"\x00\xff\r\n"),
            Message::binary(vec![0u8, 0xff, b'\r'])
        );
        assert!(line_message(b"\xff\n".to_vec(), false).is_err());
    }
}
