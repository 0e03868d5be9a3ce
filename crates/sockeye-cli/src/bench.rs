//! `sockeye bench`: a WebSocket load generator built like uWebSockets' `load_test`.
//!
//! No WebSocket connection state machine runs on the hot path, so the numbers measure the server
//! and not this client's framing. The pieces come from the sans-I/O core, `sockeye-proto`: the
//! opening handshake is its `ClientHandshake` (request, and the response checked in full,
//! Sec-WebSocket-Accept included), every message is one frame encoded with its `FrameHeader`
//! and masked with its `apply_mask` once before the run (the same bytes are written again and
//! again, compressed once by its `PerMessageDeflate` with --deflate), and replies are counted by
//! parsing frame headers only with `FrameHeader::parse`; payloads are skipped unread.
//!
//! Modes:
//! - `echo`: closed loop, each connection keeps one message in flight and times its round trip;
//! - `rate`: open loop, the connections together offer `--rate` messages per second on a fixed
//!   schedule, and latency counts from the time a message was due (no coordinated omission);
//! - `firehose`: the server pushes as fast as the client reads (needs an endpoint that does so);
//! - `broadcast`: one publisher and `--connections` subscribers on a relay such as
//!   `sockeye serve`'s `/chat`; the publisher sends the next message once every subscriber has
//!   the last one, and deliveries per second are counted; with `--subscribe-at`, the
//!   subscribers are dealt over several URLs (the nodes of a cluster) and each delivery's
//!   latency from its publishing is reported, on the publisher's URL and on the others;
//! - `idle`: opens the connections and holds them (answering pings), to measure the server's
//!   memory per connection with `--server-pid`.
//!
//! `wss://` URLs run over TLS (rustls, the `ring` provider), verified against the bundled and
//! the platform's roots plus `--ca FILE`; there is no way to skip verification. Every
//! connection loop is generic over the stream, so the plain path is compiled without TLS in it.
//!
//! Each run prints one JSON object on one line to stdout (a human summary goes to stderr).
//! With `--server-pid`, the server's CPU time over the measured seconds is read from
//! `/proc/PID/stat`, so runs report CPU seconds per million messages, a figure that other load
//! on the machine disturbs much less than messages per second. `--server-pid` takes several
//! (the nodes of a cluster, summed), and `--backplane-pid` those reported apart (nats-server).

use std::io::{self, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde::Serialize;
use sockeye::http::StatusCode;
use sockeye::proto::deflate::{CompressionPolicy, DeflateConfig, DeflateParams, PerMessageDeflate};
use sockeye::proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN, RSV1};
use sockeye::proto::handshake::{self, ClientHandshake};
use sockeye::proto::mask::apply_mask;
use sockeye::proto::Role;
use sockeye::tls::tokio_rustls::{client::TlsStream, TlsConnector};
use sockeye::tls::ServerName;
use sockeye::ClientTls;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Echo,
    Rate,
    Firehose,
    Broadcast,
    Idle,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Echo => "echo",
            Mode::Rate => "rate",
            Mode::Firehose => "firehose",
            Mode::Broadcast => "broadcast",
            Mode::Idle => "idle",
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// ws:// or wss:// URL: an echo endpoint (echo, rate), an endpoint that pushes messages
    /// (firehose), a relay such as `sockeye serve`'s /chat (broadcast), anything (idle).
    url: String,
    /// What to measure.
    #[arg(long, value_enum, default_value = "echo")]
    mode: Mode,
    /// Connections (broadcast: subscribers, plus one publisher).
    #[arg(long, short = 'c', default_value_t = 1)]
    connections: usize,
    /// Payload bytes per message.
    #[arg(long, short = 's', default_value_t = 20)]
    size: usize,
    /// Seconds measured (idle: seconds the connections are held).
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, short = 'w', default_value_t = 2.0)]
    warmup: f64,
    /// Send binary messages; text otherwise, which the server must validate as UTF-8.
    #[arg(long)]
    binary: bool,
    /// Offer permessage-deflate (with client_no_context_takeover) and send each message
    /// compressed; the run fails if the server does not agree.
    #[arg(long)]
    deflate: bool,
    /// rate: messages per second offered, over all connections together.
    #[arg(long, default_value_t = 10_000.0)]
    rate: f64,
    /// The server's process id (same machine): reports its CPU time over the measured seconds
    /// and, in idle mode, its resident memory per connection. Several, comma-separated (the
    /// nodes of a cluster): their sum.
    #[arg(long, value_delimiter = ',', value_name = "PID")]
    server_pid: Vec<u32>,
    /// Processes the server relies on, such as nats-server under a cluster (comma-separated):
    /// their CPU time over the measured seconds, reported apart from the server's.
    #[arg(long, value_delimiter = ',', value_name = "PID")]
    backplane_pid: Vec<u32>,
    /// broadcast: spread the subscribers over these URLs (comma-separated) in turn, such as
    /// the nodes of a cluster; the publisher stays on URL. Adds each delivery's latency, for
    /// the subscribers on URL itself (local) and for the others (remote).
    #[arg(long, value_delimiter = ',', value_name = "URL")]
    subscribe_at: Vec<String>,
    /// A name copied into the output, such as the server's.
    #[arg(long, default_value = "")]
    label: String,
    /// Threads of the load generator; 1 runs one event loop (tokio's current_thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Handshakes in progress at once while connecting.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// wss://: trust this CA (PEM) as well as the bundled and the system's roots.
    #[arg(long, alias = "ca-file", value_name = "CA.pem")]
    ca: Option<PathBuf>,
    /// Print the messages counted so far once a second on stderr (the default when stderr is
    /// a terminal).
    #[arg(long)]
    progress: bool,
    /// echo: drive the connections with Sockeye's own client (`sockeye::WebSocket`) instead of
    /// the hand-written loop, so that HTTP/1.1 and HTTP/2 runs share one client.
    #[arg(long)]
    library: bool,
    /// echo: every WebSocket is a stream of one HTTP/2 connection (RFC 8441; h2c for ws://,
    /// ALPN h2 for wss://). Implies --library.
    #[arg(long)]
    http2: bool,
}

/// Runs the benchmark on a runtime of its own, on a thread of its own.
pub async fn run(args: BenchArgs) -> crate::Result<ExitCode> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("sockeye-bench".into())
        .spawn(move || {
            let runtime = if args.threads <= 1 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(args.threads)
                    .enable_all()
                    .build()
            };
            let result = match runtime {
                Ok(rt) => rt.block_on(bench(args)),
                Err(e) => Err(e.into()),
            };
            let _ = tx.send(result);
        })?;
    rx.await.map_err(|_| "the benchmark thread panicked")?
}

async fn bench(args: BenchArgs) -> crate::Result<ExitCode> {
    if args.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if !positive(args.duration) || !args.warmup.is_finite() || args.warmup < 0.0 {
        return Err("--duration must be positive and --warmup not negative".into());
    }
    if args.mode == Mode::Rate && !positive(args.rate) {
        return Err("--rate must be positive".into());
    }
    let target = Arc::new(Target::resolve(&args.url, args.ca.as_deref()).await?);
    let mut report = Report::new(&args);
    if (args.library || args.http2) && args.mode != Mode::Echo {
        return Err("--library and --http2 are for --mode echo".into());
    }
    if !args.subscribe_at.is_empty() && args.mode != Mode::Broadcast {
        return Err("--subscribe-at is for --mode broadcast".into());
    }
    let outcome = match args.mode {
        Mode::Echo if args.library || args.http2 => library_echo(&args, &target, &mut report).await,
        Mode::Echo => echo(&args, &target, &mut report).await,
        Mode::Rate => rate(&args, &target, &mut report).await,
        Mode::Firehose => firehose(&args, &target, &mut report).await,
        Mode::Broadcast => broadcast(&args, &target, &mut report).await,
        Mode::Idle => idle(&args, &target, &mut report).await,
    };
    if let Err(e) = outcome {
        report.error = Some(e.to_string());
        report.finish();
        return Err(e.into());
    }
    report.finish();
    Ok(ExitCode::SUCCESS)
}

// ---- the target and the opening handshake ----

/// The client's masking key. RFC 6455 wants unpredictable keys against cache poisoning by
/// browser scripts; a load generator talking to a server it chose has no such attacker, and a
/// fixed key is what lets a frame be masked once and written many times.
const MASK: [u8; 4] = [0x5a, 0x3c, 0x96, 0xe1];

/// The most of a handshake response read before giving up.
const MAX_RESPONSE: usize = 16 << 10;

/// What --deflate offers: permessage-deflate with client_no_context_takeover, so that every
/// message is compressed on its own and one compressed frame can be sent again and again. The
/// server keeps its own context if it likes.
fn deflate_offer() -> DeflateConfig {
    let mut config = DeflateConfig::with_policy(CompressionPolicy::Fast);
    config.server_no_context_takeover = false;
    config
}

struct Target {
    addr: SocketAddr,
    /// The Host header: the URL's host, and its port when the URL gives one.
    host: String,
    /// The request target: the URL's path and query.
    path: String,
    /// wss://: the TLS client and the name the server's certificate must carry.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// wss://: the TLS configuration behind `tls`, for --http2 to offer ALPN h2 with.
    tls_config: Option<Arc<sockeye::tls::rustls::ClientConfig>>,
}

/// An open connection: the stream, whatever the server sent after its handshake response, and
/// the permessage-deflate parameters it agreed to.
struct Open {
    conn: Conn,
    leftover: Vec<u8>,
    deflate: Option<DeflateParams>,
}

impl Target {
    async fn resolve(url: &str, ca: Option<&std::path::Path>) -> crate::Result<Target> {
        // The same checks as the library's client: ws or wss, a host, no fragment.
        let request = sockeye::ClientRequest::new(url).map_err(|e| format!("{url:?}: {e}"))?;
        let url = request.url();
        let tls = request.is_secure();
        if ca.is_some() && !tls {
            return Err("--ca is for wss:// URLs".into());
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let host = url.host().ok_or("the URL has no host")?;
        // The certificate's name: a DNS name or an IP address, IPv6 without its brackets.
        let (addr, name) = match host {
            url::Host::Domain(name) => {
                let addr = tokio::net::lookup_host((name, port))
                    .await?
                    .next()
                    .ok_or_else(|| format!("{name} has no address"))?;
                (addr, name.to_owned())
            }
            url::Host::Ipv4(ip) => (SocketAddr::from((ip, port)), ip.to_string()),
            url::Host::Ipv6(ip) => (SocketAddr::from((ip, port)), ip.to_string()),
        };
        let tls = if tls {
            let name = ServerName::try_from(name.clone())
                .map_err(|e| format!("{name:?} is not a valid TLS server name: {e}"))?;
            let mut roots = ClientTls::new();
            if let Some(ca) = ca {
                roots = roots.add_root_pem_file(ca)?;
            }
            Some((name, roots.build()?))
        } else {
            None
        };
        let tls_config = tls.as_ref().map(|(_, config)| config.clone());
        Ok(Target {
            addr,
            host: request.host_header(),
            path: request.target(),
            tls: tls.map(|(name, config)| (TlsConnector::from(config), name)),
            tls_config,
        })
    }

    /// Opens a TCP connection (and TLS for wss://) and completes the opening handshake.
    async fn connect(&self, deflate: bool) -> io::Result<Open> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => {
                let mut tcp = tcp;
                let (leftover, deflate) = self.upgrade(&mut tcp, deflate).await?;
                Ok(Open {
                    conn: Conn::Plain(tcp),
                    leftover,
                    deflate,
                })
            }
            Some((connector, name)) => {
                let mut tls = Box::new(connector.connect(name.clone(), tcp).await?);
                let (leftover, deflate) = self.upgrade(&mut tls, deflate).await?;
                Ok(Open {
                    conn: Conn::Tls(tls),
                    leftover,
                    deflate,
                })
            }
        }
    }

    /// The opening handshake over an open stream (RFC 6455 §4.1), checked as the library's
    /// client checks it; returns the bytes after the server's response and the agreed
    /// permessage-deflate parameters.
    async fn upgrade<S: Stream>(
        &self,
        stream: &mut S,
        deflate: bool,
    ) -> io::Result<(Vec<u8>, Option<DeflateParams>)> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
        let hs = ClientHandshake {
            key: handshake::encode_key(nonce),
            protocols: Vec::new(),
            deflate: deflate.then(deflate_offer),
        };
        stream
            .write_all(&hs.request(&self.host, &self.path, &[]))
            .await?;
        stream.flush().await?;
        let mut buf = Vec::with_capacity(1024);
        let (response, len) = loop {
            if let Some(done) =
                handshake::parse_response(&buf, MAX_RESPONSE).map_err(io::Error::other)?
            {
                break done;
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the handshake",
                ));
            }
        };
        let status = response.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            let kind = match status {
                StatusCode::NOT_FOUND => io::ErrorKind::NotFound,
                _ => io::ErrorKind::ConnectionRefused,
            };
            return Err(io::Error::new(
                kind,
                format!("{}: the server answered {status}", self.path),
            ));
        }
        let negotiated = hs.validate_response(&response).map_err(io::Error::other)?;
        if deflate && negotiated.deflate.is_none() {
            return Err(io::Error::other(
                "--deflate: the server did not agree to permessage-deflate",
            ));
        }
        Ok((buf.split_off(len), negotiated.deflate))
    }
}

/// What every connection loop needs of its stream. After each `write_all` the loops call
/// `flush`: a no-op on TCP, while TLS may keep the end of a record buffered without it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for S {}

/// A stream that splits into halves owned by two tasks (rate, broadcast).
trait Split: Stream {
    type Read: AsyncRead + Unpin + Send + 'static;
    type Write: AsyncWrite + Unpin + Send + 'static;
    fn split(self) -> (Self::Read, Self::Write);
}

impl Split for TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;
    fn split(self) -> (Self::Read, Self::Write) {
        self.into_split()
    }
}

/// A TLS session is one state machine for both directions: its halves share it behind a lock.
impl Split for Box<TlsStream<TcpStream>> {
    type Read = tokio::io::ReadHalf<Self>;
    type Write = tokio::io::WriteHalf<Self>;
    fn split(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }
}

/// An open connection, plain or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Runs `$body` with `$s` bound to the connection's stream, as a `TcpStream` or as a TLS
/// stream: the loops are monomorphised per stream type rather than matching on every read.
macro_rules! with_stream {
    ($conn:expr, $s:ident => $body:expr) => {
        match $conn {
            Conn::Plain($s) => $body,
            Conn::Tls($s) => $body,
        }
    };
}

/// Opens `n` connections, `concurrency` handshakes at a time, timing each.
async fn connect_all(
    target: &Arc<Target>,
    n: usize,
    deflate: bool,
    concurrency: usize,
) -> (Vec<Open>, Vec<io::Error>, Histogram<u64>) {
    let results: Vec<_> = futures_util::stream::iter(0..n)
        .map(|_| {
            let target = target.clone();
            async move {
                let t0 = Instant::now();
                let result = target.connect(deflate).await;
                (result, t0.elapsed())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut hist = new_histogram();
    let mut open = Vec::with_capacity(n);
    let mut errors = Vec::new();
    for (result, took) in results {
        match result {
            Ok(conn) => {
                record(&mut hist, took);
                open.push(conn);
            }
            Err(e) => errors.push(e),
        }
    }
    (open, errors, hist)
}

/// All or nothing: the throughput modes need every connection.
async fn connect_every(args: &BenchArgs, target: &Arc<Target>, n: usize) -> io::Result<Vec<Open>> {
    let (open, mut errors, _) =
        connect_all(target, n, args.deflate, args.connect_concurrency).await;
    match errors.pop() {
        None => Ok(open),
        Some(e) => Err(io::Error::new(
            e.kind(),
            format!("{} of {n} connections failed: {e}", errors.len() + 1),
        )),
    }
}

// ---- frames ----

/// One complete, final, masked client frame.
fn masked_frame(opcode: OpCode, rsv: u8, payload: &[u8]) -> Vec<u8> {
    frame(opcode, rsv, Some(MASK), payload)
}

/// One complete, final frame, masked with `mask` if given.
fn frame(opcode: OpCode, rsv: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin: true,
        rsv,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    let mut head = [0; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    let mut frame = Vec::with_capacity(head_len + payload.len());
    frame.extend_from_slice(&head[..head_len]);
    frame.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut frame[head_len..], key, 0);
    }
    frame
}

/// `size` bytes of ASCII words and JSON punctuation: valid UTF-8 for text messages, and about
/// as compressible as chat messages are, for permessage-deflate.
fn payload(size: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "{\"id\":",
        "42,",
        "\"text\":",
        "\"hello",
        "world\",",
        "the",
        "sockeye",
        "salmon",
        "swims",
        "upstream",
        "to",
        "spawn",
        "in",
        "the",
        "river",
        "and",
        "message",
        "frame",
        "mask",
        "ping",
        "pong",
        "close",
        "of",
        "a",
        "is",
        "}",
    ];
    let mut out = Vec::with_capacity(size + 16);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % WORDS.len() as u64) as usize].as_bytes());
        out.push(b' ');
    }
    out.truncate(size);
    out
}

/// The message every connection sends, as wire bytes: compressed (RFC 7692 §7.2.1) when the
/// server agreed to permessage-deflate, `deflate` being what it agreed to, even where that does
/// not make it smaller (--deflate measures inflating every message). With
/// client_no_context_takeover every message is compressed on its own, so one compressed frame
/// can be sent again and again.
fn message_frame(args: &BenchArgs, binary: bool, deflate: Option<DeflateParams>) -> Vec<u8> {
    let data = payload(args.size);
    let opcode = if binary { OpCode::Binary } else { OpCode::Text };
    match deflate {
        Some(params) => {
            let mut compressed = Vec::new();
            PerMessageDeflate::new(Role::Client, params, &deflate_offer()).compress(
                &data,
                &mut compressed,
                true,
            );
            masked_frame(opcode, RSV1, &compressed)
        }
        None => masked_frame(opcode, 0, &data),
    }
}

/// Counts the server's frames from their headers, skipping payloads, and queues a pong for
/// every ping.
struct FrameReader {
    /// A header split over reads, gathered until `FrameHeader::parse` has all of it.
    head: [u8; MAX_HEADER_LEN],
    head_len: usize,
    in_payload: bool,
    remaining: u64,
    opcode: OpCode,
    fin: bool,
    control: Vec<u8>,
    /// Pong frames to write before the next message.
    pongs: Vec<u8>,
    closed: bool,
    /// The server sent a header `FrameHeader::parse` refused.
    invalid: bool,
    payload_bytes: u64,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader {
            head: [0; MAX_HEADER_LEN],
            head_len: 0,
            in_payload: false,
            remaining: 0,
            opcode: OpCode::Continuation,
            fin: false,
            control: Vec::new(),
            pongs: Vec::new(),
            closed: false,
            invalid: false,
            payload_bytes: 0,
        }
    }
}

impl FrameReader {
    /// Consumes bytes from the server; returns how many data messages they completed.
    fn feed(&mut self, mut data: &[u8]) -> u64 {
        let mut done = 0;
        while !data.is_empty() && !self.invalid {
            if self.in_payload {
                let take = self.remaining.min(data.len() as u64) as usize;
                if self.opcode.is_control() {
                    self.control.extend_from_slice(&data[..take]);
                } else {
                    self.payload_bytes += take as u64;
                }
                self.remaining -= take as u64;
                data = &data[take..];
                if self.remaining == 0 {
                    done += self.end_frame();
                }
                continue;
            }
            // A header: parsed where it lies when one read brought all of it, else gathered.
            let gathered = self.head_len;
            let parsed = if gathered == 0 {
                FrameHeader::parse(data)
            } else {
                let take = (MAX_HEADER_LEN - gathered).min(data.len());
                self.head[gathered..gathered + take].copy_from_slice(&data[..take]);
                FrameHeader::parse(&self.head[..gathered + take])
            };
            let (header, len) = match parsed {
                Ok(Some(parsed)) => parsed,
                Ok(None) => {
                    // Shorter than a header (14 bytes at most), so it all fits in `head`.
                    let take = (MAX_HEADER_LEN - gathered).min(data.len());
                    self.head[gathered..gathered + take].copy_from_slice(&data[..take]);
                    self.head_len += take;
                    data = &data[take..];
                    continue;
                }
                Err(_) => {
                    self.invalid = true;
                    break;
                }
            };
            data = &data[len - gathered..];
            self.head_len = 0;
            self.fin = header.fin;
            self.opcode = header.opcode;
            self.remaining = header.payload_len;
            self.in_payload = true;
            self.control.clear();
            if self.remaining == 0 {
                done += self.end_frame();
            }
        }
        done
    }

    fn end_frame(&mut self) -> u64 {
        self.in_payload = false;
        match self.opcode {
            OpCode::Continuation | OpCode::Text | OpCode::Binary => self.fin as u64,
            OpCode::Close => {
                self.closed = true;
                0
            }
            OpCode::Ping => {
                let pong = masked_frame(OpCode::Pong, 0, &self.control);
                self.pongs.extend_from_slice(&pong);
                0
            }
            _ => 0,
        }
    }

    fn check_open(&self) -> io::Result<()> {
        if self.invalid {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the server sent an invalid frame header",
            ))
        } else if self.closed {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the server sent a close frame",
            ))
        } else {
            Ok(())
        }
    }
}

fn read_buffer(message_len: usize) -> Vec<u8> {
    vec![
        0;
        if message_len > 32 << 10 {
            256 << 10
        } else {
            64 << 10
        }
    ]
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection",
    )
}

// ---- phases ----

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// Warm-up, measurement, stop: the phase every connection task follows.
struct Phase {
    now: AtomicU8,
    tx: watch::Sender<u8>,
    /// Messages received so far by every connection, for the progress display.
    received: AtomicU64,
}

impl Phase {
    fn new() -> Arc<Phase> {
        Arc::new(Phase {
            now: AtomicU8::new(WARMUP),
            tx: watch::channel(WARMUP).0,
            received: AtomicU64::new(0),
        })
    }

    fn get(&self) -> u8 {
        self.now.load(Ordering::Relaxed)
    }

    fn set(&self, phase: u8) {
        self.now.store(phase, Ordering::Relaxed);
        self.tx.send_replace(phase);
    }

    fn measuring(&self) -> bool {
        self.get() == MEASURE
    }

    fn received(&self, messages: u64) {
        self.received.fetch_add(messages, Ordering::Relaxed);
    }

    /// Reads, or returns `None` once the run stops.
    async fn read<R: AsyncRead + Unpin>(
        &self,
        stop: &mut watch::Receiver<u8>,
        reader: &mut R,
        buf: &mut [u8],
    ) -> io::Result<Option<usize>> {
        tokio::select! {
            biased;
            n = reader.read(buf) => match n? {
                0 => Err(eof()),
                n => Ok(Some(n)),
            },
            _ = stop.wait_for(|p| *p == STOP) => Ok(None),
        }
    }
}

/// What the measured window saw of the server and of this process.
struct Window {
    seconds: f64,
    server_cpu: Option<f64>,
    backplane_cpu: Option<f64>,
    client_cpu: Option<f64>,
}

/// Warm-up, then the measured seconds; leaves the phase at STOP.
async fn measure(args: &BenchArgs, phase: &Phase) -> Window {
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let server0 = cpu_of(&args.server_pid);
    let backplane0 = cpu_of(&args.backplane_pid);
    let client0 = cpu_seconds("self");
    let t0 = Instant::now();
    phase.set(MEASURE);
    if args.progress || io::stderr().is_terminal() {
        show_progress(args, phase, t0).await;
    } else {
        tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    }
    phase.set(STOP);
    let seconds = t0.elapsed().as_secs_f64();
    let server1 = cpu_of(&args.server_pid);
    let backplane1 = cpu_of(&args.backplane_pid);
    let client1 = cpu_seconds("self");
    Window {
        seconds,
        server_cpu: server0.zip(server1).map(|(a, b)| b - a),
        backplane_cpu: backplane0.zip(backplane1).map(|(a, b)| b - a),
        client_cpu: client0.zip(client1).map(|(a, b)| b - a),
    }
}

/// Until the measured seconds are over: once a second, the messages received so far and in the
/// last second, on one line of stderr.
async fn show_progress(args: &BenchArgs, phase: &Phase, t0: Instant) {
    let end = t0 + Duration::from_secs_f64(args.duration);
    let start = phase.received.load(Ordering::Relaxed);
    let mut last = start;
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::time::sleep_until(end.into()) => break,
        }
        let now = phase.received.load(Ordering::Relaxed);
        eprint!(
            "\r{:>5.0}/{:.0} s  {:>12} messages  {:>10.0} msg/s ",
            t0.elapsed().as_secs_f64(),
            args.duration,
            now - start,
            (now - last) as f64,
        );
        last = now;
    }
    eprintln!();
}

/// What one connection task counted while measuring.
struct Counts {
    hist: Histogram<u64>,
    /// rate: latency from the write that sent the message, not from when it was due.
    service: Histogram<u64>,
    messages: u64,
    bytes: u64,
    sent: u64,
    error: Option<io::Error>,
}

impl Counts {
    /// Round-trip latency only. A histogram of 1 ns to 100 s at 3 digits is ~200 KiB, so
    /// only the counts that record into one get it.
    fn new() -> Counts {
        Counts {
            hist: new_histogram(),
            ..Counts::without_latency()
        }
    }

    /// Round-trip and service latency (rate, and the total every task is merged into).
    fn with_service_latency() -> Counts {
        Counts {
            service: new_histogram(),
            ..Counts::new()
        }
    }

    /// Counts only: the readers of firehose, broadcast and idle, thousands of them at once.
    fn without_latency() -> Counts {
        Counts {
            hist: tiny_histogram(),
            service: tiny_histogram(),
            messages: 0,
            bytes: 0,
            sent: 0,
            error: None,
        }
    }

    fn merge(&mut self, other: Counts) {
        let _ = self.hist.add(&other.hist);
        let _ = self.service.add(&other.service);
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.sent += other.sent;
        if self.error.is_none() {
            self.error = other.error;
        }
    }
}

/// Waits for every task once the run stopped; tasks still running after `grace` are aborted
/// and counted as stuck.
async fn collect(mut tasks: JoinSet<Counts>, grace: Duration) -> (Counts, usize, usize) {
    let mut total = Counts::with_service_latency();
    let mut failed = 0;
    let deadline = tokio::time::Instant::now() + grace;
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(Ok(counts))) => {
                failed += counts.error.is_some() as usize;
                total.merge(counts);
            }
            Ok(Some(Err(e))) => {
                failed += 1;
                if total.error.is_none() {
                    total.error = Some(io::Error::other(e.to_string()));
                }
            }
            Ok(None) => return (total, failed, 0),
            Err(_) => {
                let stuck = tasks.len();
                tasks.abort_all();
                return (total, failed, stuck);
            }
        }
    }
}

fn grace(args: &BenchArgs) -> Duration {
    // Long enough for one more round trip of the largest message on a slow server.
    Duration::from_secs(5) + Duration::from_millis((args.size >> 10) as u64 * 2)
}

// ---- echo: closed loop ----

async fn echo(args: &BenchArgs, target: &Arc<Target>, report: &mut Report) -> io::Result<()> {
    let conns = connect_every(args, target, args.connections).await?;
    let frame: Arc<[u8]> = message_frame(args, args.binary, conns[0].deflate).into();
    let phase = Phase::new();
    let mut tasks = JoinSet::new();
    for Open { conn, leftover, .. } in conns {
        let (frame, phase) = (frame.clone(), phase.clone());
        with_stream!(conn, stream => tasks.spawn(async move {
            let mut counts = Counts::new();
            if let Err(e) = echo_loop(stream, leftover, &frame, &phase, &mut counts).await {
                counts.error = Some(e);
            }
            counts
        }));
    }
    let window = measure(args, &phase).await;
    let (counts, failed, stuck) = collect(tasks, grace(args)).await;
    report.throughput(args, &window, &counts, failed, stuck);
    Ok(())
}

async fn echo_loop<S: Stream>(
    mut stream: S,
    leftover: Vec<u8>,
    frame: &[u8],
    phase: &Phase,
    counts: &mut Counts,
) -> io::Result<()> {
    let mut reader = FrameReader::default();
    reader.feed(&leftover);
    let mut buf = read_buffer(frame.len());
    while phase.get() != STOP {
        if !reader.pongs.is_empty() {
            stream.write_all(&reader.pongs).await?;
            reader.pongs.clear();
        }
        let t0 = Instant::now();
        stream.write_all(frame).await?;
        stream.flush().await?;
        let bytes_before = reader.payload_bytes;
        let mut got = 0;
        while got == 0 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(eof());
            }
            got = reader.feed(&buf[..n]);
            reader.check_open()?;
        }
        if phase.measuring() {
            record(&mut counts.hist, t0.elapsed());
            counts.messages += got;
            phase.received(got);
            counts.bytes += reader.payload_bytes - bytes_before;
        }
    }
    Ok(())
}

// ---- echo through the library: HTTP/1.1 or HTTP/2 ----

/// Closed-loop echo like [`echo`], with every connection a `sockeye::WebSocket`: one HTTP/1.1
/// connection each, or (--http2) one stream each of a single HTTP/2 connection.
async fn library_echo(
    args: &BenchArgs,
    target: &Arc<Target>,
    report: &mut Report,
) -> io::Result<()> {
    let mut config = sockeye::Config::default();
    if !args.deflate {
        config = config.without_compression();
    }
    let mut request = sockeye::ClientRequest::new(&args.url).map_err(io::Error::other)?;
    if let Some(ca) = &args.ca {
        let tls = ClientTls::new()
            .add_root_pem_file(ca)
            .and_then(|t| t.build())
            .map_err(io::Error::other)?;
        request = request.tls(tls);
    }
    let message = if args.binary {
        sockeye::Message::binary(payload(args.size))
    } else {
        let text = String::from_utf8(payload(args.size)).map_err(io::Error::other)?;
        sockeye::Message::text(text)
    };
    let phase = Phase::new();
    let mut tasks = JoinSet::new();
    if args.http2 {
        let mut sender = http2_connection(target).await?;
        for _ in 0..args.connections {
            let ws = sockeye::hyper::connect_h2(&mut sender, &request, config.clone())
                .await
                .map_err(io::Error::other)?;
            let (message, phase) = (message.clone(), phase.clone());
            tasks.spawn(library_echo_loop(ws, message, phase));
        }
    } else {
        for _ in 0..args.connections {
            let ws = sockeye::connect_with(request.clone().no_proxy(), config.clone())
                .await
                .map_err(io::Error::other)?;
            let (message, phase) = (message.clone(), phase.clone());
            tasks.spawn(library_echo_loop(ws, message, phase));
        }
    }
    let window = measure(args, &phase).await;
    let (counts, failed, stuck) = collect(tasks, grace(args)).await;
    report.throughput(args, &window, &counts, failed, stuck);
    Ok(())
}

/// One HTTP/2 connection to the target: h2c with prior knowledge, or TLS with ALPN h2.
async fn http2_connection(target: &Target) -> io::Result<sockeye::hyper::Http2Sender> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tcp = TcpStream::connect(target.addr).await?;
    tcp.set_nodelay(true)?;
    let handshake = |io: sockeye::MaybeTlsStream| {
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
    };
    let (sender, conn) = match &target.tls {
        None => handshake(tcp.into()).await,
        Some((_, name)) => {
            let mut config = (*target.tls_config.clone().expect("set with tls")).clone();
            config.alpn_protocols = vec![b"h2".to_vec()];
            let tls = TlsConnector::from(Arc::new(config))
                .connect(name.clone(), tcp)
                .await?;
            if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                return Err(io::Error::other("--http2: the server did not pick ALPN h2"));
            }
            handshake(tls.into()).await
        }
    }
    .map_err(io::Error::other)?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn library_echo_loop<S>(
    mut ws: sockeye::WebSocket<S>,
    message: sockeye::Message,
    phase: Arc<Phase>,
) -> Counts
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut counts = Counts::new();
    let len = match &message {
        sockeye::Message::Text(t) => t.len(),
        sockeye::Message::Binary(b) => b.len(),
        _ => 0,
    } as u64;
    while phase.get() != STOP {
        let t0 = Instant::now();
        if let Err(e) = ws.send(message.clone()).await {
            counts.error = Some(io::Error::other(e));
            break;
        }
        match ws.recv().await {
            Some(Ok(sockeye::Message::Close(event))) => {
                counts.error = Some(io::Error::other(format!("closed: {}", event.code.0)));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                counts.error = Some(io::Error::other(e));
                break;
            }
            None => {
                counts.error = Some(eof());
                break;
            }
        }
        if phase.measuring() {
            record(&mut counts.hist, t0.elapsed());
            counts.messages += 1;
            phase.received(1);
            counts.bytes += len;
        }
    }
    let _ = ws.close(Some(1000), "").await;
    counts
}

// ---- rate: open loop ----

async fn rate(args: &BenchArgs, target: &Arc<Target>, report: &mut Report) -> io::Result<()> {
    let conns = connect_every(args, target, args.connections).await?;
    let frame: Arc<[u8]> = message_frame(args, args.binary, conns[0].deflate).into();
    let phase = Phase::new();
    let per_conn = args.rate / args.connections as f64;
    let start = Instant::now() + Duration::from_millis(10);
    let mut tasks = JoinSet::new();
    for (i, Open { conn, leftover, .. }) in conns.into_iter().enumerate() {
        let (frame, phase) = (frame.clone(), phase.clone());
        // Spread the connections' schedules over one period so they do not send in step.
        let offset = Duration::from_secs_f64(i as f64 / args.connections as f64 / per_conn);
        with_stream!(conn, stream => tasks.spawn(async move {
            let mut counts = Counts::with_service_latency();
            let result = rate_conn(
                stream,
                leftover,
                &frame,
                per_conn,
                start + offset,
                &phase,
                &mut counts,
            )
            .await;
            if let Err(e) = result {
                counts.error = Some(e);
            }
            counts
        }));
    }
    let window = measure(args, &phase).await;
    let (counts, failed, stuck) = collect(tasks, grace(args)).await;
    report.rate = Some(RateReport {
        offered_per_s: args.rate,
        sent: counts.sent,
        service_p50_us: micros(&counts.service, 0.5),
        service_p99_us: micros(&counts.service, 0.99),
        service_p999_us: micros(&counts.service, 0.999),
    });
    report.throughput(args, &window, &counts, failed, stuck);
    Ok(())
}

async fn rate_conn<S: Split>(
    stream: S,
    leftover: Vec<u8>,
    frame: &[u8],
    per_second: f64,
    start: Instant,
    phase: &Phase,
    counts: &mut Counts,
) -> io::Result<()> {
    let (mut rd, mut wr) = stream.split();
    // Message k is due at start + k / per_second; latency counts from then (what a user
    // waits, generator lateness included), and also from the write that carried it.
    let due = |k: u64| start + Duration::from_secs_f64(k as f64 / per_second);
    let written = std::sync::Mutex::new(std::collections::VecDeque::<(u64, Instant)>::new());
    let period = Duration::from_secs_f64(1.0 / per_second).max(Duration::from_millis(1));
    let writer = async {
        let mut tick = tokio::time::interval_at(start.into(), period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut sent: u64 = 0;
        let mut sent_measured: u64 = 0;
        let mut batch = Vec::new();
        loop {
            tick.tick().await;
            if phase.get() == STOP {
                return Ok::<u64, io::Error>(sent_measured);
            }
            let now = Instant::now();
            let owed = (now.saturating_duration_since(start).as_secs_f64() * per_second) as u64 + 1;
            if owed <= sent {
                continue;
            }
            // Catch up at most a second's worth at once.
            let n = (owed - sent).min(per_second.ceil() as u64 + 1);
            batch.clear();
            for _ in 0..n {
                batch.extend_from_slice(frame);
            }
            let at = Instant::now();
            wr.write_all(&batch).await?;
            wr.flush().await?;
            sent += n;
            written.lock().expect("not poisoned").push_back((sent, at));
            if phase.measuring() {
                sent_measured += n;
            }
        }
    };
    let reader = async {
        let mut stop = phase.tx.subscribe();
        let mut reader = FrameReader::default();
        let mut received: u64 = reader.feed(&leftover);
        let mut buf = read_buffer(frame.len());
        while let Some(n) = phase.read(&mut stop, &mut rd, &mut buf).await? {
            let bytes_before = reader.payload_bytes;
            let got = reader.feed(&buf[..n]);
            reader.check_open()?;
            if got > 0 && phase.measuring() {
                let now = Instant::now();
                let mut written = written.lock().expect("not poisoned");
                for k in received..received + got {
                    record(&mut counts.hist, now.saturating_duration_since(due(k)));
                    // The batch that carried message k: the first one whose end is past k.
                    while written.front().is_some_and(|&(end, _)| end <= k) {
                        written.pop_front();
                    }
                    if let Some(&(_, at)) = written.front() {
                        record(&mut counts.service, now.saturating_duration_since(at));
                    }
                }
                counts.messages += got;
                phase.received(got);
                counts.bytes += reader.payload_bytes - bytes_before;
            }
            received += got;
            if got > 0 && !phase.measuring() {
                let mut written = written.lock().expect("not poisoned");
                while written.front().is_some_and(|&(end, _)| end <= received) {
                    written.pop_front();
                }
            }
        }
        Ok::<(), io::Error>(())
    };
    let (sent, read) = tokio::join!(writer, reader);
    counts.sent = sent?;
    read
}

// ---- firehose: the server pushes ----

async fn firehose(args: &BenchArgs, target: &Arc<Target>, report: &mut Report) -> io::Result<()> {
    let conns = match connect_every(args, target, args.connections).await {
        Ok(conns) => conns,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let why = format!(
                "skipped: the server has no firehose endpoint at {} ({e})",
                target.path
            );
            eprintln!("sockeye bench: {why}");
            report.skipped = Some(why);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let phase = Phase::new();
    let mut tasks = JoinSet::new();
    for Open { conn, leftover, .. } in conns {
        let phase = phase.clone();
        with_stream!(conn, stream => tasks.spawn(async move {
            let mut counts = Counts::without_latency();
            if let Err(e) = drain(stream, leftover, &phase, &mut counts, None, None).await {
                counts.error = Some(e);
            }
            counts
        }));
    }
    let window = measure(args, &phase).await;
    let (counts, failed, stuck) = collect(tasks, grace(args)).await;
    report.throughput(args, &window, &counts, failed, stuck);
    Ok(())
}

/// Reads and counts messages until the run stops, answering pings; with `delivered`, also adds
/// each message to it and wakes the publisher when it reaches the target (broadcast), and
/// with `latency` records there how long each took from its publishing.
async fn drain<S: Stream>(
    mut stream: S,
    leftover: Vec<u8>,
    phase: &Phase,
    counts: &mut Counts,
    delivered: Option<&Delivery>,
    latency: Option<&Mutex<Histogram<u64>>>,
) -> io::Result<()> {
    let mut stop = phase.tx.subscribe();
    let mut reader = FrameReader::default();
    reader.feed(&leftover);
    let mut buf = read_buffer(64 << 10);
    while let Some(n) = phase.read(&mut stop, &mut stream, &mut buf).await? {
        let bytes_before = reader.payload_bytes;
        let got = reader.feed(&buf[..n]);
        reader.check_open()?;
        if !reader.pongs.is_empty() {
            stream.write_all(&reader.pongs).await?;
            stream.flush().await?;
            reader.pongs.clear();
        }
        if got > 0 {
            if let Some(d) = delivered {
                // Timed before `add`, which may let the publisher stamp the next message.
                if let Some(hist) = latency.filter(|_| phase.measuring()) {
                    let took = d.since_published();
                    let mut hist = hist.lock().expect("no panics under this lock");
                    hist.saturating_record_n((took.as_nanos() as u64).max(1), got);
                }
                d.add(got);
            }
            if phase.measuring() {
                counts.messages += got;
                phase.received(got);
                counts.bytes += reader.payload_bytes - bytes_before;
            }
        }
        // A server that pushes faster than this task reads keeps the read side of `Phase::read`
        // always ready (over TLS, rustls's buffered plaintext never even touches the socket),
        // so the stop signal must be looked at here too.
        if phase.get() == STOP {
            break;
        }
    }
    Ok(())
}

// ---- broadcast: one publisher, N subscribers ----

/// Deliveries so far, and how many the publisher waits for.
struct Delivery {
    count: AtomicU64,
    target: AtomicU64,
    notify: Notify,
    /// When the message in flight was published, in nanoseconds after `epoch`. The publisher
    /// waits for every subscriber before it sends the next message, so what a subscriber
    /// receives is that message (but for a late one after a stall), and its latency needs no
    /// time stamp in the payload: one clock, this process's.
    published: AtomicU64,
    epoch: Instant,
}

impl Delivery {
    fn new() -> Delivery {
        Delivery {
            count: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            notify: Notify::new(),
            published: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn add(&self, n: u64) {
        let now = self.count.fetch_add(n, Ordering::AcqRel) + n;
        if now >= self.target.load(Ordering::Acquire) {
            self.notify.notify_one();
        }
    }

    fn stamp(&self, at: Instant) {
        let ns = at.saturating_duration_since(self.epoch).as_nanos() as u64;
        self.published.store(ns, Ordering::Release);
    }

    fn since_published(&self) -> Duration {
        let at = self.epoch + Duration::from_nanos(self.published.load(Ordering::Acquire));
        Instant::now().saturating_duration_since(at)
    }
}

/// How many of `n` subscribers go to each of `k` URLs when they are dealt in turn.
fn share(n: usize, k: usize) -> Vec<usize> {
    (0..k).map(|i| n / k + usize::from(i < n % k)).collect()
}

/// Subscribers on the publisher's URL, and on others: their deliveries' latencies.
struct Latencies {
    local: Mutex<Histogram<u64>>,
    remote: Mutex<Histogram<u64>>,
}

impl Latencies {
    fn of(&self, local: bool) -> &Mutex<Histogram<u64>> {
        if local {
            &self.local
        } else {
            &self.remote
        }
    }
}

async fn broadcast(args: &BenchArgs, target: &Arc<Target>, report: &mut Report) -> io::Result<()> {
    let n = args.connections as u64;
    // Each subscriber, and whether it is on the publisher's URL.
    let (conns, publisher): (Vec<(Open, bool)>, Open) = if args.subscribe_at.is_empty() {
        let mut conns = connect_every(args, target, args.connections + 1).await?;
        let publisher = conns.pop().expect("one more connection than subscribers");
        (conns.into_iter().map(|c| (c, true)).collect(), publisher)
    } else {
        let mut conns = Vec::with_capacity(args.connections);
        let shares = share(args.connections, args.subscribe_at.len());
        for (url, count) in args.subscribe_at.iter().zip(shares) {
            let at = Arc::new(
                Target::resolve(url, args.ca.as_deref())
                    .await
                    .map_err(io::Error::other)?,
            );
            let local = *url == args.url;
            let opened = connect_every(args, &at, count).await?;
            conns.extend(opened.into_iter().map(|c| (c, local)));
        }
        let publisher = connect_every(args, target, 1).await?.pop();
        (conns, publisher.expect("one connection"))
    };
    let latencies = (!args.subscribe_at.is_empty()).then(|| {
        Arc::new(Latencies {
            local: Mutex::new(new_histogram()),
            remote: Mutex::new(new_histogram()),
        })
    });
    let local_subscribers = conns.iter().filter(|(_, local)| *local).count();
    // Relays such as /chat pass text messages only.
    let frame = message_frame(args, false, publisher.deflate);
    // A relay may join a client to its room only after answering the handshake (`sockeye
    // serve`'s /chat does): give the last subscribers a moment before publishing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let phase = Phase::new();
    let delivery = Arc::new(Delivery::new());
    let mut tasks = JoinSet::new();
    for (Open { conn, leftover, .. }, local) in conns {
        let (phase, delivery, latencies) = (phase.clone(), delivery.clone(), latencies.clone());
        with_stream!(conn, stream => tasks.spawn(async move {
            let mut counts = Counts::without_latency();
            let latency = latencies.as_deref().map(|l| l.of(local));
            let result =
                drain(stream, leftover, &phase, &mut counts, Some(&delivery), latency).await;
            if let Err(e) = result {
                counts.error = Some(e);
            }
            counts
        }));
    }
    let publisher_task = with_stream!(publisher.conn, stream => tokio::spawn(publish(
        stream,
        publisher.leftover,
        frame,
        n,
        phase.clone(),
        delivery.clone(),
    )));
    let window = measure(args, &phase).await;
    let (published, stalls) = publisher_task
        .await
        .map_err(|e| io::Error::other(e.to_string()))?;
    let (mut counts, failed, stuck) = collect(tasks, grace(args)).await;
    // Latency: from publishing to the last subscriber's delivery.
    counts.hist = published.hist;
    counts.sent = published.sent;
    if counts.error.is_none() {
        counts.error = published.error;
    }
    let spread = latencies.map(|l| {
        let hist = |h: &Mutex<Histogram<u64>>| h.lock().expect("no panics under this lock").clone();
        SpreadReport::new(
            local_subscribers,
            args.connections - local_subscribers,
            &hist(&l.local),
            &hist(&l.remote),
        )
    });
    report.broadcast = Some(BroadcastReport {
        subscribers: n,
        published: counts.sent,
        stalls,
        published_per_s: round3(counts.sent as f64 / window.seconds),
        spread,
    });
    report.throughput(args, &window, &counts, failed, stuck);
    if let Some(spread) = report.broadcast.as_ref().and_then(|b| b.spread.as_ref()) {
        report.summary += &spread.summary();
    }
    Ok(())
}

/// How long the publisher waits for every subscriber to have a message before it counts the
/// message as lost (a stall) and goes on.
const STALL_PATIENCE: Duration = Duration::from_secs(3);

/// The publisher: sends the next message once every subscriber has the last one; returns its
/// counts (latency from publishing to the last delivery) and how often it gave up waiting.
async fn publish<S: Split>(
    stream: S,
    leftover: Vec<u8>,
    frame: Vec<u8>,
    n: u64,
    phase: Arc<Phase>,
    delivery: Arc<Delivery>,
) -> (Counts, u64) {
    let (mut rd, mut wr) = stream.split();
    // The publisher gets its own messages back too: read them into nothing.
    let reader = async {
        let mut stop = phase.tx.subscribe();
        let mut buf = vec![0u8; 64 << 10];
        while let Ok(Some(_)) = phase.read(&mut stop, &mut rd, &mut buf).await {}
        drop(leftover);
    };
    let writer = async {
        let mut counts = Counts::new();
        let mut stalls: u64 = 0;
        let mut expected: u64 = 0;
        let mut stop = phase.tx.subscribe();
        while phase.get() != STOP {
            expected += n;
            delivery.target.store(expected, Ordering::Release);
            let t0 = Instant::now();
            delivery.stamp(t0);
            if let Err(e) = async {
                wr.write_all(&frame).await?;
                wr.flush().await
            }
            .await
            {
                counts.error = Some(e);
                break;
            }
            // Sampled when published: a message published during the warm-up that is still
            // arriving when measurement starts is not a measured one.
            let measured = phase.measuring();
            let deadline = tokio::time::Instant::now() + STALL_PATIENCE;
            let mut delivered = true;
            while delivery.count.load(Ordering::Acquire) < expected {
                tokio::select! {
                    _ = delivery.notify.notified() => {}
                    _ = tokio::time::sleep_until(deadline) => {
                        // Some subscriber lost the message (a relay may drop for slow readers).
                        stalls += u64::from(measured);
                        expected = delivery.count.load(Ordering::Acquire);
                        delivered = false;
                        break;
                    }
                    // The subscribers stop reading when the run stops: the message in flight
                    // then is neither delivered nor lost, and not counted.
                    _ = stop.wait_for(|p| *p == STOP) => {
                        delivered = false;
                        break;
                    }
                }
            }
            if measured && delivered {
                record(&mut counts.hist, t0.elapsed());
                counts.sent += 1;
            }
        }
        (counts, stalls)
    };
    tokio::join!(reader, writer).1
}

// ---- idle: hold connections ----

async fn idle(args: &BenchArgs, target: &Arc<Target>, report: &mut Report) -> io::Result<()> {
    let pids = &args.server_pid;
    let rss_before = rss_of(pids);
    let t0 = Instant::now();
    let (conns, errors, connect_hist) = connect_all(
        target,
        args.connections,
        args.deflate,
        args.connect_concurrency,
    )
    .await;
    let connect_seconds = t0.elapsed().as_secs_f64();
    let open = conns.len();
    let phase = Phase::new();
    let dropped = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for Open { conn, leftover, .. } in conns {
        let (phase, dropped) = (phase.clone(), dropped.clone());
        with_stream!(conn, stream => tasks.spawn(async move {
            let mut counts = Counts::without_latency();
            if drain(stream, leftover, &phase, &mut counts, None, None)
                .await
                .is_err()
            {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
            counts
        }));
    }
    // Let the server settle (lazy buffers, allocator) before the first reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_open = rss_of(pids);
    let cpu0 = cpu_of(pids);
    phase.set(MEASURE);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let rss_held = rss_of(pids);
    let cpu1 = cpu_of(pids);
    phase.set(STOP);
    let (counts, _, _) = collect(tasks, grace(args)).await;
    let per_conn = rss_before
        .zip(rss_held)
        .filter(|_| open > 0)
        .map(|(a, b)| (b as f64 - a as f64) / open as f64);
    report.idle = Some(IdleReport {
        open,
        failed: errors.len(),
        first_error: errors.first().map(|e| e.to_string()),
        dropped: dropped.load(Ordering::Relaxed),
        messages: counts.messages,
        connect_seconds: round3(connect_seconds),
        connects_per_s: round3(open as f64 / connect_seconds),
        connect_p50_us: micros(&connect_hist, 0.5),
        connect_p99_us: micros(&connect_hist, 0.99),
        connect_p999_us: micros(&connect_hist, 0.999),
        server_rss_before_kb: rss_before,
        server_rss_open_kb: rss_open,
        server_rss_held_kb: rss_held,
        server_rss_per_conn_kb: per_conn.map(round3),
        server_cpu_s: cpu0.zip(cpu1).map(|(a, b)| round3(b - a)),
    });
    eprintln!(
        "sockeye bench idle: {open} open, {} failed, {} dropped; server RSS per connection: {}",
        errors.len(),
        dropped.load(Ordering::Relaxed),
        per_conn.map_or("n/a (no --server-pid)".into(), |kb| format!("{kb:.2} KiB")),
    );
    Ok(())
}

// ---- measurement helpers ----

fn new_histogram() -> Histogram<u64> {
    // Nanoseconds, 1 ns to 100 s, 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// An empty histogram for counts that record no latency: merging it adds nothing.
fn tiny_histogram() -> Histogram<u64> {
    Histogram::new(1).expect("valid histogram")
}

fn record(hist: &mut Histogram<u64>, took: Duration) {
    hist.saturating_record((took.as_nanos() as u64).max(1));
}

/// utime + stime of a process (all its threads) in seconds, from /proc/PID/stat ("self" for
/// this one). The kernel reports them in clock ticks (USER_HZ, `sysconf(_SC_CLK_TCK)`).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let process = procfs::process::Process::new_with_root(format!("/proc/{pid}").into()).ok()?;
    let stat = process.stat().ok()?;
    Some((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
}

/// The CPU seconds of several processes together; `None` without any, or if one is gone.
fn cpu_of(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|p| cpu_seconds(&p.to_string())).sum()
}

/// The resident memory of several processes together; `None` without any, or if one is gone.
fn rss_of(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|p| rss_kb(&p.to_string())).sum()
}

fn rss_kb(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---- output: one JSON object per run ----

/// One run's results, printed as one JSON object. Fields of other modes are left out; a
/// figure the run could not measure (no --server-pid, no messages) is `null`.
#[derive(Serialize)]
struct Report {
    mode: &'static str,
    label: String,
    url: String,
    connections: usize,
    size: usize,
    binary: bool,
    deflate: bool,
    warmup_s: f64,
    duration_s: f64,
    #[serde(flatten)]
    rate: Option<RateReport>,
    #[serde(flatten)]
    broadcast: Option<BroadcastReport>,
    #[serde(flatten)]
    throughput: Option<Throughput>,
    #[serde(flatten)]
    idle: Option<IdleReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    loadavg: String,
    /// The human summary, printed on stderr.
    #[serde(skip)]
    summary: String,
}

/// rate: what was offered and sent, and latency from the write that carried each message.
#[derive(Serialize)]
struct RateReport {
    offered_per_s: f64,
    sent: u64,
    service_p50_us: Option<f64>,
    service_p99_us: Option<f64>,
    service_p999_us: Option<f64>,
}

#[derive(Serialize)]
struct BroadcastReport {
    subscribers: u64,
    published: u64,
    stalls: u64,
    published_per_s: f64,
    #[serde(flatten)]
    spread: Option<SpreadReport>,
}

/// broadcast with --subscribe-at: where the subscribers were, and the latency of each delivery
/// from its publishing, on the publisher's URL (local) and on the others (remote).
#[derive(Serialize)]
struct SpreadReport {
    local_subscribers: usize,
    remote_subscribers: usize,
    local_deliveries: u64,
    local_delivery_p50_us: Option<f64>,
    local_delivery_p99_us: Option<f64>,
    remote_deliveries: u64,
    remote_delivery_p50_us: Option<f64>,
    remote_delivery_p99_us: Option<f64>,
}

impl SpreadReport {
    fn new(
        local_subscribers: usize,
        remote_subscribers: usize,
        local: &Histogram<u64>,
        remote: &Histogram<u64>,
    ) -> SpreadReport {
        SpreadReport {
            local_subscribers,
            remote_subscribers,
            local_deliveries: local.len(),
            local_delivery_p50_us: micros(local, 0.5),
            local_delivery_p99_us: micros(local, 0.99),
            remote_deliveries: remote.len(),
            remote_delivery_p50_us: micros(remote, 0.5),
            remote_delivery_p99_us: micros(remote, 0.99),
        }
    }

    fn summary(&self) -> String {
        let us = |x: Option<f64>| x.map_or("n/a".to_owned(), |x| format!("{x:.0}"));
        format!(
            "; delivery p50/p99: local {}/{} µs, remote {}/{} µs",
            us(self.local_delivery_p50_us),
            us(self.local_delivery_p99_us),
            us(self.remote_delivery_p50_us),
            us(self.remote_delivery_p99_us),
        )
    }
}

/// Messages counted over the measured seconds, their latency, and the CPU time they took.
#[derive(Serialize)]
struct Throughput {
    measured_s: f64,
    messages: u64,
    msgs_per_s: f64,
    mib_per_s: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    p999_us: Option<f64>,
    max_us: Option<f64>,
    mean_us: Option<f64>,
    server_cpu_s: Option<f64>,
    #[serde(rename = "server_cpu_s_per_M")]
    server_cpu_s_per_m: Option<f64>,
    /// Only with --backplane-pid, so that the other runs' lines stay as they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    backplane_cpu_s: Option<f64>,
    #[serde(
        rename = "backplane_cpu_s_per_M",
        skip_serializing_if = "Option::is_none"
    )]
    backplane_cpu_s_per_m: Option<f64>,
    client_cpu_s: Option<f64>,
    client_cpu_util: Option<f64>,
    failed_connections: usize,
    stuck_connections: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_error: Option<String>,
}

/// idle: the connections held, how fast they opened, and the server's memory.
#[derive(Serialize)]
struct IdleReport {
    open: usize,
    failed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_error: Option<String>,
    dropped: u64,
    messages: u64,
    connect_seconds: f64,
    connects_per_s: f64,
    connect_p50_us: Option<f64>,
    connect_p99_us: Option<f64>,
    connect_p999_us: Option<f64>,
    server_rss_before_kb: Option<u64>,
    server_rss_open_kb: Option<u64>,
    server_rss_held_kb: Option<u64>,
    server_rss_per_conn_kb: Option<f64>,
    server_cpu_s: Option<f64>,
}

/// Three decimals are plenty for every figure, and keep the line readable.
fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

/// The latency at quantile `q` in microseconds; `None` when nothing was recorded.
fn micros(hist: &Histogram<u64>, q: f64) -> Option<f64> {
    (!hist.is_empty()).then(|| round3(hist.value_at_quantile(q) as f64 / 1e3))
}

impl Report {
    fn new(args: &BenchArgs) -> Report {
        Report {
            mode: args.mode.name(),
            label: args.label.clone(),
            url: args.url.clone(),
            connections: args.connections,
            size: args.size,
            binary: args.binary && args.mode != Mode::Broadcast,
            deflate: args.deflate,
            warmup_s: args.warmup,
            duration_s: args.duration,
            rate: None,
            broadcast: None,
            throughput: None,
            idle: None,
            skipped: None,
            error: None,
            loadavg: String::new(),
            summary: String::new(),
        }
    }

    fn throughput(
        &mut self,
        args: &BenchArgs,
        window: &Window,
        counts: &Counts,
        failed: usize,
        stuck: usize,
    ) {
        let per_s = counts.messages as f64 / window.seconds;
        let per_m = |cpu: Option<f64>| {
            cpu.filter(|_| counts.messages > 0)
                .map(|cpu| cpu / counts.messages as f64 * 1e6)
        };
        let per_million = per_m(window.server_cpu);
        let hist = &counts.hist;
        self.throughput = Some(Throughput {
            measured_s: round3(window.seconds),
            messages: counts.messages,
            msgs_per_s: round3(per_s),
            mib_per_s: round3(counts.bytes as f64 / window.seconds / (1 << 20) as f64),
            p50_us: micros(hist, 0.5),
            p99_us: micros(hist, 0.99),
            p999_us: micros(hist, 0.999),
            max_us: (!hist.is_empty()).then(|| round3(hist.max() as f64 / 1e3)),
            mean_us: (!hist.is_empty()).then(|| round3(hist.mean() / 1e3)),
            server_cpu_s: window.server_cpu.map(round3),
            server_cpu_s_per_m: per_million.map(round3),
            backplane_cpu_s: window.backplane_cpu.map(round3),
            backplane_cpu_s_per_m: per_m(window.backplane_cpu).map(round3),
            client_cpu_s: window.client_cpu.map(round3),
            client_cpu_util: window.client_cpu.map(|c| round3(c / window.seconds)),
            failed_connections: failed,
            stuck_connections: stuck,
            first_error: counts.error.as_ref().map(|e| e.to_string()),
        });
        let p99 = if hist.is_empty() {
            "n/a".to_owned()
        } else {
            format!("{:.0} µs", hist.value_at_quantile(0.99) as f64 / 1e3)
        };
        self.summary = format!(
            "sockeye bench {} {}: {} connections x {} B: {per_s:.0} msg/s, p99 {p99}{}{}",
            args.mode.name(),
            args.label,
            args.connections,
            args.size,
            per_million.map_or(String::new(), |c| format!(
                ", server {c:.2} CPU s per M msgs"
            )),
            if failed + stuck > 0 {
                format!(", {failed} failed, {stuck} stuck connections")
            } else {
                String::new()
            },
        );
    }

    /// Prints the JSON line on stdout and the summary on stderr.
    fn finish(mut self) {
        self.loadavg = loadavg();
        match serde_json::to_string(&self) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("sockeye bench: the report did not serialize: {e}"),
        }
        if !self.summary.is_empty() {
            eprintln!("{}", self.summary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        frame(opcode, 0, None, payload)
    }

    #[test]
    fn reader_counts_messages_split_at_every_byte() {
        let mut wire = Vec::new();
        for len in [0usize, 5, 125, 126, 300, 70_000] {
            wire.extend(server_frame(OpCode::Binary, &vec![7; len]));
        }
        wire.extend(server_frame(OpCode::Ping, b"hi"));
        wire.extend(server_frame(OpCode::Text, b"x"));
        for cut in [1, 2, 3, 7, 13, 64, 1000, wire.len()] {
            let mut r = FrameReader::default();
            let mut total = 0;
            for chunk in wire.chunks(cut) {
                total += r.feed(chunk);
            }
            assert_eq!(total, 7, "chunks of {cut}");
            assert_eq!(r.payload_bytes, 5 + 125 + 126 + 300 + 70_000 + 1);
            assert_eq!(r.pongs, masked_frame(OpCode::Pong, 0, b"hi"));
            assert!(r.check_open().is_ok());
        }
    }

    #[test]
    fn reader_counts_fragmented_message_once_and_sees_close() {
        let mut wire = vec![0x01, 2, b'a', b'b', 0x00, 1, b'c', 0x80, 1, b'd'];
        wire.extend(server_frame(OpCode::Close, &[0x03, 0xe8]));
        let mut r = FrameReader::default();
        assert_eq!(r.feed(&wire), 1);
        assert!(r.closed);
    }

    #[test]
    fn reader_refuses_a_length_with_its_top_bit_set() {
        let mut r = FrameReader::default();
        assert_eq!(r.feed(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]), 0);
        let e = r.check_open().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn client_frames_are_masked_with_minimal_lengths() {
        let f = masked_frame(OpCode::Text, 0, b"Hello");
        assert_eq!(&f[..2], &[0x81, 0x85]);
        assert_eq!(&f[2..6], &MASK);
        let unmasked: Vec<u8> = f[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ MASK[i & 3])
            .collect();
        assert_eq!(unmasked, b"Hello");
        assert_eq!(
            &masked_frame(OpCode::Binary, RSV1, &[0; 126])[..4],
            &[0xc2, 0xfe, 0, 126]
        );
        assert_eq!(masked_frame(OpCode::Binary, 0, &[0; 65536])[1], 0xff);
    }

    fn bench_args(argv: &[&str]) -> BenchArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        Cli::parse_from(["bench"].iter().chain(argv)).bench
    }

    /// --deflate sends every message compressed, even a short one that does not shrink, and a
    /// server's inflater gets the payload back.
    #[test]
    fn deflated_messages_inflate_to_the_payload() {
        let params = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        for size in ["20", "1000"] {
            let args = bench_args(&["ws://h/echo", "-s", size, "--deflate"]);
            let frame = message_frame(&args, false, Some(params));
            let (header, n) = FrameHeader::parse(&frame).unwrap().unwrap();
            assert_eq!((header.rsv, header.opcode), (RSV1, OpCode::Text));
            let mut body = frame[n..].to_vec();
            apply_mask(&mut body, MASK, 0);
            let config = DeflateConfig::default();
            let mut server = PerMessageDeflate::new(Role::Server, params, &config);
            let mut out = Vec::new();
            server.decompress(&body, &mut out, 1 << 20).unwrap();
            server.finish_inbound(&mut out, 1 << 20).unwrap();
            assert_eq!(out, payload(args.size));
        }
    }

    #[test]
    fn payload_is_ascii_of_the_requested_size() {
        for size in [0, 1, 20, 1024, 16 << 10] {
            let p = payload(size);
            assert_eq!(p.len(), size);
            assert!(p.is_ascii());
        }
    }

    #[test]
    fn subscribers_are_dealt_over_the_urls_in_turn() {
        assert_eq!(share(1000, 3), [334, 333, 333]);
        assert_eq!(share(100, 1), [100]);
        assert_eq!(share(1, 3), [1, 0, 0]);
        assert_eq!(share(5, 2), [3, 2]);
        for (n, k) in [(0, 1), (7, 3), (1001, 4)] {
            assert_eq!(share(n, k).iter().sum::<usize>(), n);
        }
    }

    #[test]
    fn pid_and_url_lists_are_comma_separated() {
        let args = bench_args(&[
            "ws://a/chat",
            "--mode",
            "broadcast",
            "--server-pid",
            "10,11",
            "--server-pid",
            "12",
            "--backplane-pid",
            "20",
            "--subscribe-at",
            "ws://a/chat,ws://b/chat",
        ]);
        assert_eq!(args.server_pid, [10, 11, 12]);
        assert_eq!(args.backplane_pid, [20]);
        assert_eq!(args.subscribe_at, ["ws://a/chat", "ws://b/chat"]);
        let args = bench_args(&["ws://a/echo", "--server-pid", "7"]);
        assert_eq!(args.server_pid, [7]);
        assert!(args.backplane_pid.is_empty() && args.subscribe_at.is_empty());
    }

    #[test]
    fn cpu_of_several_processes_is_their_sum_and_none_if_one_is_gone() {
        let me = std::process::id();
        assert_eq!(cpu_of(&[]), None);
        assert_eq!(rss_of(&[]), None);
        let one = cpu_of(&[me]).unwrap();
        let two = cpu_of(&[me, me]).unwrap();
        // The second reading comes a little later, and this process is running.
        assert!(two >= 2.0 * one && two < 2.0 * one + 1.0, "{one} {two}");
        assert!(rss_of(&[me, me]).unwrap() > rss_of(&[me]).unwrap());
        // Beyond the kernel's pid_max (at most 2^22).
        assert_eq!(cpu_of(&[me, u32::MAX]), None);
        assert_eq!(rss_of(&[me, u32::MAX]), None);
    }

    #[test]
    fn a_delivery_is_timed_from_the_stamp_of_the_message_in_flight() {
        let d = Delivery::new();
        std::thread::sleep(Duration::from_millis(60));
        d.stamp(Instant::now() - Duration::from_millis(50));
        let took = d.since_published();
        assert!(took >= Duration::from_millis(50) && took < Duration::from_secs(5));
        // A stamp from before the epoch (clock granularity) is not a panic.
        d.stamp(d.epoch - Duration::from_millis(1));
        assert!(d.since_published() < Duration::from_secs(5));
        d.stamp(Instant::now() + Duration::from_secs(60));
        assert_eq!(d.since_published(), Duration::ZERO);
    }

    /// A broadcast run without --subscribe-at or --backplane-pid prints the fields it printed
    /// before they existed; with them, the spread's and the backplane's.
    #[test]
    fn spread_and_backplane_fields_only_when_asked_for() {
        let args = bench_args(&["ws://a/chat", "--mode", "broadcast"]);
        let mut report = Report::new(&args);
        let mut window = Window {
            seconds: 2.0,
            server_cpu: Some(1.0),
            backplane_cpu: None,
            client_cpu: None,
        };
        let mut counts = Counts::with_service_latency();
        counts.messages = 1_000_000;
        report.broadcast = Some(BroadcastReport {
            subscribers: 100,
            published: 10_000,
            stalls: 0,
            published_per_s: 5_000.0,
            spread: None,
        });
        report.throughput(&args, &window, &counts, 0, 0);
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["server_cpu_s_per_M"], 1.0);
        for key in [
            "backplane_cpu_s",
            "backplane_cpu_s_per_M",
            "local_subscribers",
        ] {
            assert!(v.get(key).is_none(), "{key}");
        }

        let mut local = new_histogram();
        let mut remote = new_histogram();
        for us in 1..=100u64 {
            local.record(us * 1000).unwrap();
            remote.record(us * 2000).unwrap();
        }
        let spread = SpreadReport::new(34, 66, &local, &remote);
        assert!(spread
            .summary()
            .contains("local 50/99 µs, remote 100/198 µs"));
        report.broadcast.as_mut().unwrap().spread = Some(spread);
        window.backplane_cpu = Some(0.5);
        report.throughput(&args, &window, &counts, 0, 0);
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["backplane_cpu_s_per_M"], 0.5);
        assert_eq!(v["local_subscribers"], 34);
        assert_eq!(v["remote_deliveries"], 100);
        // The histogram keeps 3 significant digits.
        let near = |key: &str, us: f64| (v[key].as_f64().unwrap() - us).abs() < 0.1;
        assert!(near("local_delivery_p50_us", 50.0), "{v}");
        assert!(near("remote_delivery_p99_us", 198.0), "{v}");
    }

    #[test]
    fn cpu_and_memory_of_this_process_are_readable() {
        assert!(cpu_seconds("self").is_some());
        assert!(cpu_seconds(&std::process::id().to_string()).is_some());
        assert!(rss_kb("self").unwrap() > 0);
    }

    /// Every mode's fields and none of the others', unmeasured figures as null, and the
    /// label escaped.
    #[test]
    fn the_report_is_one_json_object_with_the_fields_of_its_mode() {
        let args = bench_args(&["ws://h/echo", "--mode", "rate", "--label", "a\"b\n"]);
        let mut report = Report::new(&args);
        let counts = Counts::with_service_latency();
        let window = Window {
            seconds: 2.0,
            server_cpu: None,
            backplane_cpu: None,
            client_cpu: Some(0.5),
        };
        report.rate = Some(RateReport {
            offered_per_s: args.rate,
            sent: 0,
            service_p50_us: micros(&counts.service, 0.5),
            service_p99_us: None,
            service_p999_us: None,
        });
        report.throughput(&args, &window, &counts, 0, 0);
        let line = serde_json::to_string(&report).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["mode"], "rate");
        assert_eq!(v["label"], "a\"b\n");
        assert_eq!(v["offered_per_s"], 10_000.0);
        assert_eq!(v["client_cpu_util"], 0.25);
        assert!(v["server_cpu_s_per_M"].is_null() && v["p50_us"].is_null());
        assert!(v.get("server_cpu_s_per_M").is_some());
        assert!(v.get("open").is_none() && v.get("first_error").is_none());
    }
}
