//! `wamp-load`: a WAMP v2 load generator for any router reachable at a `ws://` URL.
//!
//! Scenarios (each on `wamp.2.json` or `wamp.2.msgpack`):
//!
//! - `pubsub`: N subscriber sessions on one topic and one publisher publishing with
//!   `acknowledge: true` in a closed loop: at most `--window` publications may be in flight,
//!   where a publication is in flight until every subscriber has received its EVENT (counted
//!   over all subscribers). Reports EVENTs delivered per second.
//! - `rpc`: `--callees` callee sessions on one procedure (a plain registration for one callee,
//!   a shared `invoke: roundrobin` one for several) and `--callers` caller sessions, each with
//!   one CALL in flight (closed loop). Reports calls per second and the round trip's p50/p99.
//!
//! The client is hand-rolled, the way `sockeye bench` is: no connection state machine, but the
//! pieces of the sans-I/O core, `sockeye-proto` (its `ClientHandshake` for the upgrade, checked
//! in full; `FrameHeader` and `apply_mask` for frames written straight to the socket;
//! `FrameHeader::parse` for what is read), and on the hot path no WAMP decoding beyond the
//! message type and request id read straight from the bytes (subscribers only count frames). Every session still joins,
//! subscribes and registers with fully decoded messages, and every answer on the hot path is
//! checked for its type (and request id), so an ERROR or ABORT stops the run.
//!
//! Everything runs on one thread (tokio's current_thread runtime), so `benches/wamp.sh` can pin
//! the load generator to one core, and `client_cpu_util` near 1 says the client was the limit.
//! Output: one JSON object per run on stdout and one human-readable line on stderr.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures_util::StreamExt;
use serde_json::{json, Value};
use sockeye_proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use sockeye_proto::handshake::{self, ClientHandshake};
use sockeye_proto::mask::apply_mask;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::LocalSet;

#[derive(Parser, Debug)]
#[command(
    name = "wamp-load",
    about = "WAMP v2 load generator: pub/sub fan-out and routed RPC"
)]
struct Args {
    /// The router's URL, e.g. ws://127.0.0.1:8080/wamp (plain ws:// only).
    url: String,
    #[arg(long, value_enum)]
    scenario: Scenario,
    #[arg(long, value_enum, default_value = "json")]
    serializer: Ser,
    #[arg(long, default_value = "realm1")]
    realm: String,
    /// pubsub: subscriber sessions.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// pubsub: publications in flight (not yet delivered to every subscriber).
    #[arg(long, default_value_t = 8)]
    window: u64,
    /// rpc: caller sessions, one CALL in flight each.
    #[arg(long, default_value_t = 100)]
    callers: usize,
    /// rpc: callee sessions; more than one registers with `invoke: roundrobin`.
    #[arg(long, default_value_t = 1)]
    callees: usize,
    /// rpc: the callees' router, when not the callers' (another node of a cluster, so that
    /// every call crosses between nodes).
    #[arg(long)]
    callee_url: Option<String>,
    /// Seconds of load before the measurement starts.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// PIDs (comma-separated) whose CPU seconds are read from /proc/PID/stat at the start and
    /// end of the measurement (for Crossbar: the node controller and its router worker).
    #[arg(long)]
    server_pid: Option<String>,
    /// rpc: PIDs (comma-separated) the server relies on, such as nats-server under a cluster:
    /// their CPU seconds per million calls, reported apart from the server's.
    #[arg(long)]
    backplane_pid: Option<String>,
    /// Free text copied into the JSON (e.g. "sockeye" or "crossbar").
    #[arg(long, default_value = "")]
    label: String,
    /// Opening handshakes in flight while connecting.
    #[arg(long, default_value_t = 32)]
    connect_concurrency: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Pubsub,
    Rpc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Ser {
    Json,
    Msgpack,
}

const TOPIC: &str = "bench.topic";
const PROCEDURE: &str = "bench.echo";
const ARG: &str = "hello";

// WAMP message types used here.
const HELLO: u64 = 1;
const WELCOME: u64 = 2;
const PUBLISH: u64 = 16;
const PUBLISHED: u64 = 17;
const SUBSCRIBE: u64 = 32;
const SUBSCRIBED: u64 = 33;
const EVENT: u64 = 36;
const CALL: u64 = 48;
const RESULT: u64 = 50;
const REGISTER: u64 = 64;
const REGISTERED: u64 = 65;
const INVOCATION: u64 = 68;
const YIELD: u64 = 70;

impl Ser {
    fn protocol(self) -> &'static str {
        match self {
            Ser::Json => "wamp.2.json",
            Ser::Msgpack => "wamp.2.msgpack",
        }
    }

    fn opcode(self) -> OpCode {
        match self {
            Ser::Json => OpCode::Text,
            Ser::Msgpack => OpCode::Binary,
        }
    }

    /// Encodes a whole message (setup only; the hot path uses the hand-written encoders).
    fn encode(self, msg: &Value) -> Vec<u8> {
        match self {
            Ser::Json => serde_json::to_vec(msg).expect("JSON values encode"),
            Ser::Msgpack => {
                let mut out = Vec::new();
                rmpv::encode::write_value(&mut out, &to_rmpv(msg)).expect("writes to a Vec");
                out
            }
        }
    }

    fn decode(self, bytes: &[u8]) -> io::Result<Value> {
        match self {
            Ser::Json => serde_json::from_slice(bytes).map_err(io::Error::other),
            Ser::Msgpack => {
                let v = rmpv::decode::read_value(&mut &bytes[..]).map_err(io::Error::other)?;
                Ok(from_rmpv(&v))
            }
        }
    }

    /// The message type and the element after it (a request id for most messages), read
    /// straight from the bytes.
    fn head(self, bytes: &[u8]) -> Option<(u64, u64)> {
        match self {
            Ser::Json => {
                let mut p = JsonCursor { b: bytes, i: 0 };
                p.punct(b'[')?;
                let t = p.uint()?;
                p.punct(b',')?;
                let id = p.uint()?;
                Some((t, id))
            }
            Ser::Msgpack => {
                let mut i = match *bytes.first()? {
                    0x90..=0x9f => 1,
                    0xdc => 3,
                    0xdd => 5,
                    _ => return None,
                };
                let t = mp_read_uint(bytes, &mut i)?;
                let id = mp_read_uint(bytes, &mut i)?;
                Some((t, id))
            }
        }
    }

    /// `[CALL, id, {}, PROCEDURE, [ARG]]` as one masked frame appended to `out`.
    fn call(self, out: &mut Vec<u8>, id: u64) {
        let mut m = Vec::with_capacity(48);
        match self {
            Ser::Json => m.extend_from_slice(
                format!("[48,{id},{{}},\"{PROCEDURE}\",[\"{ARG}\"]]").as_bytes(),
            ),
            Ser::Msgpack => {
                m.extend_from_slice(&[0x95, CALL as u8]);
                mp_uint(&mut m, id);
                m.push(0x80);
                mp_str(&mut m, PROCEDURE);
                m.push(0x91);
                mp_str(&mut m, ARG);
            }
        }
        client_frame(out, self.opcode(), &m);
    }

    /// `[YIELD, id, {}, [ARG]]`.
    fn yield_(self, out: &mut Vec<u8>, id: u64) {
        let mut m = Vec::with_capacity(32);
        match self {
            Ser::Json => m.extend_from_slice(format!("[70,{id},{{}},[\"{ARG}\"]]").as_bytes()),
            Ser::Msgpack => {
                m.extend_from_slice(&[0x94, YIELD as u8]);
                mp_uint(&mut m, id);
                m.push(0x80);
                m.push(0x91);
                mp_str(&mut m, ARG);
            }
        }
        client_frame(out, self.opcode(), &m);
    }

    /// `[PUBLISH, id, {"acknowledge": true}, TOPIC, [ARG]]`.
    fn publish(self, out: &mut Vec<u8>, id: u64) {
        let mut m = Vec::with_capacity(64);
        match self {
            Ser::Json => m.extend_from_slice(
                format!("[16,{id},{{\"acknowledge\":true}},\"{TOPIC}\",[\"{ARG}\"]]").as_bytes(),
            ),
            Ser::Msgpack => {
                m.extend_from_slice(&[0x95, PUBLISH as u8]);
                mp_uint(&mut m, id);
                m.push(0x81);
                mp_str(&mut m, "acknowledge");
                m.push(0xc3);
                mp_str(&mut m, TOPIC);
                m.push(0x91);
                mp_str(&mut m, ARG);
            }
        }
        client_frame(out, self.opcode(), &m);
    }
}

struct JsonCursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl JsonCursor<'_> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn punct(&mut self, c: u8) -> Option<()> {
        self.ws();
        (*self.b.get(self.i)? == c).then(|| self.i += 1)
    }

    fn uint(&mut self) -> Option<u64> {
        self.ws();
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.b.get(self.i) {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        (self.i > start).then_some(n)
    }
}

fn mp_read_uint(b: &[u8], i: &mut usize) -> Option<u64> {
    let tag = *b.get(*i)?;
    let (n, len) = match tag {
        0x00..=0x7f => (u64::from(tag), 1),
        0xcc => (u64::from(*b.get(*i + 1)?), 2),
        0xcd => (
            u64::from(u16::from_be_bytes(b.get(*i + 1..*i + 3)?.try_into().ok()?)),
            3,
        ),
        0xce => (
            u64::from(u32::from_be_bytes(b.get(*i + 1..*i + 5)?.try_into().ok()?)),
            5,
        ),
        0xcf => (
            u64::from_be_bytes(b.get(*i + 1..*i + 9)?.try_into().ok()?),
            9,
        ),
        0xd0 => (u64::try_from(*b.get(*i + 1)? as i8).ok()?, 2),
        0xd1 => (
            u64::try_from(i16::from_be_bytes(b.get(*i + 1..*i + 3)?.try_into().ok()?)).ok()?,
            3,
        ),
        0xd2 => (
            u64::try_from(i32::from_be_bytes(b.get(*i + 1..*i + 5)?.try_into().ok()?)).ok()?,
            5,
        ),
        0xd3 => (
            u64::try_from(i64::from_be_bytes(b.get(*i + 1..*i + 9)?.try_into().ok()?)).ok()?,
            9,
        ),
        _ => return None,
    };
    *i += len;
    Some(n)
}

fn mp_uint(out: &mut Vec<u8>, n: u64) {
    rmp::encode::write_uint(out, n).expect("writes to a Vec");
}

fn mp_str(out: &mut Vec<u8>, s: &str) {
    rmp::encode::write_str(out, s).expect("writes to a Vec");
}

fn to_rmpv(v: &Value) -> rmpv::Value {
    match v {
        Value::Null => rmpv::Value::Nil,
        Value::Bool(b) => rmpv::Value::Boolean(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => rmpv::Value::from(u),
            (None, Some(i)) => rmpv::Value::from(i),
            _ => rmpv::Value::from(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => rmpv::Value::from(s.as_str()),
        Value::Array(a) => rmpv::Value::Array(a.iter().map(to_rmpv).collect()),
        Value::Object(o) => rmpv::Value::Map(
            o.iter()
                .map(|(k, v)| (rmpv::Value::from(k.as_str()), to_rmpv(v)))
                .collect(),
        ),
    }
}

fn from_rmpv(v: &rmpv::Value) -> Value {
    match v {
        rmpv::Value::Nil => Value::Null,
        rmpv::Value::Boolean(b) => Value::Bool(*b),
        rmpv::Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => json!(u),
            (None, Some(i)) => json!(i),
            _ => Value::Null,
        },
        rmpv::Value::F32(f) => json!(f),
        rmpv::Value::F64(f) => json!(f),
        rmpv::Value::String(s) => Value::String(s.as_str().unwrap_or("<not UTF-8>").to_owned()),
        rmpv::Value::Binary(b) => Value::String(format!("<{} bytes>", b.len())),
        rmpv::Value::Array(a) => Value::Array(a.iter().map(from_rmpv).collect()),
        rmpv::Value::Map(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap_or("?").to_owned(), from_rmpv(v)))
                .collect(),
        ),
        rmpv::Value::Ext(_, _) => Value::Null,
    }
}

// ---- WebSocket, hand-rolled from sockeye-proto's pieces ----

/// The masking key of every frame: RFC 6455 wants unpredictable keys against cache poisoning by
/// browser scripts, which a load generator talking to a router it chose does not meet.
const MASK: [u8; 4] = [0x5a, 0x3c, 0x96, 0xe1];

/// Appends one complete, masked client frame to `out`.
fn client_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode,
        mask: Some(MASK),
        payload_len: payload.len() as u64,
    };
    let mut head = [0; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    out.extend_from_slice(&head[..head_len]);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], MASK, 0);
}

#[derive(Debug)]
struct Target {
    /// Where to connect: host and port.
    addr: (String, u16),
    /// The Host header: the URL's host, and its port when the URL gives one.
    host: String,
    /// The request target: the URL's path and query.
    path: String,
}

impl Target {
    fn parse(url: &str) -> io::Result<Target> {
        let url = url::Url::parse(url).map_err(|e| io::Error::other(format!("{url:?}: {e}")))?;
        if url.scheme() != "ws" {
            return Err(io::Error::other(format!("{url} is not a ws:// URL")));
        }
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(io::Error::other(format!("{url} has no host"))),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let host_str = url.host_str().unwrap_or_default();
        Ok(Target {
            addr: (host, port),
            host: match url.port() {
                Some(port) => format!("{host_str}:{port}"),
                None => host_str.to_owned(),
            },
            path: match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            },
        })
    }
}

/// One client connection: the socket and a read buffer holding what is not parsed yet.
struct WsConn {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    ser: Ser,
}

impl WsConn {
    /// Opens the connection and completes the opening handshake (RFC 6455 §4.1), checked as
    /// sockeye's client checks it; the router must pick the one subprotocol offered.
    async fn connect(target: &Target, ser: Ser) -> io::Result<WsConn> {
        let (host, port) = &target.addr;
        let mut stream = TcpStream::connect((host.as_str(), *port)).await?;
        stream.set_nodelay(true)?;
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
        let hs = ClientHandshake {
            key: handshake::encode_key(nonce),
            protocols: vec![ser.protocol().to_owned()],
            deflate: None,
        };
        stream
            .write_all(&hs.request(&target.host, &target.path, &[]))
            .await?;
        let mut buf = vec![0u8; 64 << 10];
        let mut len = 0;
        let (response, end) = loop {
            let n = stream.read(&mut buf[len..]).await?;
            if n == 0 {
                return Err(io::Error::other("closed during the opening handshake"));
            }
            len += n;
            if let Some(done) =
                handshake::parse_response(&buf[..len], 16 << 10).map_err(io::Error::other)?
            {
                break done;
            }
        };
        let negotiated = hs.validate_response(&response).map_err(io::Error::other)?;
        if negotiated.protocol.as_deref() != Some(ser.protocol()) {
            return Err(io::Error::other(format!(
                "the server did not agree to {}",
                ser.protocol()
            )));
        }
        Ok(WsConn {
            stream,
            buf,
            pos: end,
            len,
            ser,
        })
    }

    /// The next complete frame already buffered: (opcode, payload start, payload end).
    fn parse(&mut self) -> io::Result<Option<(OpCode, usize, usize)>> {
        let b = &self.buf[self.pos..self.len];
        let Some((header, hl)) = FrameHeader::parse(b).map_err(io::Error::other)? else {
            return Ok(None);
        };
        let plen = usize::try_from(header.payload_len)
            .map_err(|_| io::Error::other("a frame longer than memory"))?;
        if b.len() < hl + plen {
            if self.pos + hl + plen > self.buf.len() {
                // Room for the whole frame at the start of the buffer.
                self.buf.copy_within(self.pos..self.len, 0);
                self.len -= self.pos;
                self.pos = 0;
                if hl + plen > self.buf.len() {
                    self.buf.resize(hl + plen, 0);
                }
            }
            return Ok(None);
        }
        if !header.fin || header.opcode == OpCode::Continuation {
            return Err(io::Error::other("fragmented messages are not supported"));
        }
        let start = self.pos + hl;
        self.pos = start + plen;
        Ok(Some((header.opcode, start, start + plen)))
    }

    /// Reads more bytes from the socket (waits for them).
    async fn fill(&mut self) -> io::Result<()> {
        if self.pos == self.len {
            self.pos = 0;
            self.len = 0;
        } else if self.len == self.buf.len() {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        let n = self.stream.read(&mut self.buf[self.len..]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        self.len += n;
        Ok(())
    }

    /// Reads what the socket has without waiting; false if it had nothing.
    fn try_fill(&mut self) -> io::Result<bool> {
        if self.pos == self.len {
            self.pos = 0;
            self.len = 0;
        } else if self.len == self.buf.len() {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        match self.stream.try_read(&mut self.buf[self.len..]) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )),
            Ok(n) => {
                self.len += n;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Handles a control frame; returns an error for a close.
    async fn control(&mut self, opcode: OpCode, start: usize, end: usize) -> io::Result<()> {
        match opcode {
            OpCode::Ping => {
                let mut pong = Vec::new();
                client_frame(&mut pong, OpCode::Pong, &self.buf[start..end]);
                self.stream.write_all(&pong).await
            }
            OpCode::Close => {
                let p = &self.buf[start..end];
                let code = if p.len() >= 2 {
                    u16::from_be_bytes([p[0], p[1]])
                } else {
                    1005
                };
                let reason = String::from_utf8_lossy(p.get(2..).unwrap_or_default()).into_owned();
                Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    format!("the server closed the WebSocket: {code} {reason:?}"),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The next data message's payload range.
    async fn next_message(&mut self) -> io::Result<(usize, usize)> {
        loop {
            while let Some((opcode, start, end)) = self.parse()? {
                if matches!(opcode, OpCode::Text | OpCode::Binary) {
                    return Ok((start, end));
                }
                self.control(opcode, start, end).await?;
            }
            self.fill().await?;
        }
    }

    async fn send(&mut self, msg: &Value) -> io::Result<()> {
        let mut frame = Vec::new();
        client_frame(&mut frame, self.ser.opcode(), &self.ser.encode(msg));
        self.stream.write_all(&frame).await
    }

    /// Sends a request and decodes the answer, which must be of type `expect`.
    async fn request(&mut self, msg: &Value, expect: u64) -> io::Result<Value> {
        self.send(msg).await?;
        let (start, end) = self.next_message().await?;
        let answer = self.ser.decode(&self.buf[start..end])?;
        if answer.get(0).and_then(Value::as_u64) != Some(expect) {
            return Err(io::Error::other(format!(
                "sent {msg}, expected a message of type {expect}, got {answer}"
            )));
        }
        Ok(answer)
    }

    /// Opens a WAMP session.
    async fn join(target: &Target, ser: Ser, realm: &str) -> io::Result<WsConn> {
        let mut conn = WsConn::connect(target, ser).await?;
        let roles = json!({
            "publisher": {"features": {}},
            "subscriber": {"features": {}},
            "caller": {"features": {}},
            "callee": {"features": {"shared_registration": true}},
        });
        conn.request(&json!([HELLO, realm, {"roles": roles}]), WELCOME)
            .await
            .map_err(|e| io::Error::other(format!("joining {realm}: {e}")))?;
        Ok(conn)
    }
}

/// Opens `n` sessions, `concurrency` at a time.
async fn join_all(
    target: &Rc<Target>,
    ser: Ser,
    realm: &str,
    n: usize,
    concurrency: usize,
) -> io::Result<Vec<WsConn>> {
    let results: Vec<io::Result<WsConn>> = futures_util::stream::iter(0..n)
        .map(|_| {
            let target = target.clone();
            async move { WsConn::join(&target, ser, realm).await }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

// ---- measurement ----

/// utime + stime of a process in seconds, from /proc/PID/stat ("self" for this one) in clock
/// ticks (USER_HZ, `sysconf(_SC_CLK_TCK)`).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let process = procfs::process::Process::new_with_root(format!("/proc/{pid}").into()).ok()?;
    let stat = process.stat().ok()?;
    Some((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
}

fn pid_list(list: Option<&str>) -> Vec<String> {
    list.unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn cpu_of(pids: &[String]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|p| cpu_seconds(p)).sum()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU seconds of the servers and of this process, and the wall clock, at one instant.
/// Seconds the threads of a process spent runnable but waiting for a CPU (the second field
/// of /proc/PID/task/TID/schedstat, in nanoseconds), summed over its threads. On a shared
/// machine this says how much of the wall clock a process lost to others: a server or load
/// generator that waited a lot was starved, whatever its CPU utilisation.
fn run_queue_wait(pid: &str) -> Option<f64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread may end between read_dir and the read.
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text.split_whitespace().nth(1)?.parse::<u64>().ok()?;
        }
    }
    Some(total as f64 / 1e9)
}

fn wait_of(pids: &[String]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|p| run_queue_wait(p)).sum()
}

struct Mark {
    at: Instant,
    server: Option<f64>,
    client: Option<f64>,
    server_wait: Option<f64>,
    client_wait: Option<f64>,
}

impl Mark {
    fn now(pids: &[String]) -> Mark {
        Mark {
            at: Instant::now(),
            server: cpu_of(pids),
            client: cpu_seconds("self"),
            server_wait: wait_of(pids),
            client_wait: run_queue_wait("self"),
        }
    }
}

struct Window {
    secs: f64,
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
    server_wait: Option<f64>,
    client_wait: Option<f64>,
}

fn window(a: &Mark, b: &Mark) -> Window {
    let diff = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
    Window {
        secs: (b.at - a.at).as_secs_f64(),
        server_cpu: diff(a.server, b.server),
        client_cpu: diff(a.client, b.client),
        server_wait: diff(a.server_wait, b.server_wait),
        client_wait: diff(a.client_wait, b.client_wait),
    }
}

impl Window {
    /// Fields common to every scenario: CPU and run-queue waits per second of wall clock.
    fn fields(&self, v: &mut Value) {
        let o = v.as_object_mut().expect("an object");
        let per_s = |x: Option<f64>| json!(x.map(|x| round(x / self.secs, 3)));
        o.insert(
            "server_cpu_s".into(),
            json!(self.server_cpu.map(|c| round(c, 2))),
        );
        o.insert("server_cpu_util".into(), per_s(self.server_cpu));
        o.insert("client_cpu_util".into(), per_s(self.client_cpu));
        o.insert("server_runq_wait_util".into(), per_s(self.server_wait));
        o.insert("client_runq_wait_util".into(), per_s(self.client_wait));
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

// ---- pub/sub ----

/// State shared by the publisher and the subscribers (all on one thread).
struct Fanout {
    delivered: Cell<u64>,
    /// The publisher wants to be woken once `delivered` reaches this.
    wake_at: Cell<u64>,
    wake: Notify,
    stop: Cell<bool>,
}

async fn subscriber(mut conn: WsConn, fan: Rc<Fanout>) -> io::Result<()> {
    let ser = conn.ser;
    loop {
        while let Some((opcode, start, end)) = conn.parse()? {
            if matches!(opcode, OpCode::Text | OpCode::Binary) {
                // Every data message after SUBSCRIBED is an EVENT; check only its first bytes.
                if let Some((t, _)) = ser.head(&conn.buf[start..end]) {
                    if t != EVENT {
                        let text = ser.decode(&conn.buf[start..end])?;
                        return Err(io::Error::other(format!("subscriber got {text}")));
                    }
                }
                let d = fan.delivered.get() + 1;
                fan.delivered.set(d);
                if d == fan.wake_at.get() {
                    fan.wake.notify_one();
                }
            } else {
                conn.control(opcode, start, end).await?;
            }
        }
        if fan.stop.get() {
            return Ok(());
        }
        conn.fill().await?;
    }
}

#[derive(Default)]
struct PublisherStats {
    published: u64,
    acked: u64,
    stalls: u64,
}

async fn publisher(
    mut conn: WsConn,
    fan: Rc<Fanout>,
    subscribers: u64,
    window: u64,
    stats: Rc<RefCell<PublisherStats>>,
) -> io::Result<()> {
    let ser = conn.ser;
    let mut next_id = 1u64;
    // Deliveries written off after a stall (events the router dropped or lost).
    let mut written_off = 0u64;
    let mut out = Vec::with_capacity(4096);
    while !fan.stop.get() {
        let published = stats.borrow().published;
        let done = (fan.delivered.get() + written_off) / subscribers;
        let in_flight = published - done.min(published);
        if in_flight < window {
            for _ in in_flight..window {
                ser.publish(&mut out, next_id);
                next_id += 1;
            }
            conn.stream.write_all(&out).await?;
            out.clear();
            stats.borrow_mut().published = published + window - in_flight;
            continue;
        }
        // Wait until the oldest publication in flight is delivered everywhere.
        fan.wake_at
            .set(((published - window + 1) * subscribers).saturating_sub(written_off));
        if fan.delivered.get() >= fan.wake_at.get() {
            continue;
        }
        tokio::select! {
            _ = fan.wake.notified() => {}
            r = conn.stream.readable() => {
                r?;
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                let mut s = stats.borrow_mut();
                s.stalls += 1;
                written_off = s.published * subscribers - fan.delivered.get();
            }
        }
        // Acknowledgements (PUBLISHED) and anything else the router sent the publisher.
        while conn.try_fill()? {
            while let Some((opcode, start, end)) = conn.parse()? {
                if !matches!(opcode, OpCode::Text | OpCode::Binary) {
                    conn.control(opcode, start, end).await?;
                    continue;
                }
                match ser.head(&conn.buf[start..end]) {
                    Some((PUBLISHED, _)) => stats.borrow_mut().acked += 1,
                    _ => {
                        let text = ser.decode(&conn.buf[start..end])?;
                        return Err(io::Error::other(format!("publisher got {text}")));
                    }
                }
            }
        }
    }
    Ok(())
}

async fn pubsub(args: &Args, target: Rc<Target>, pids: &[String]) -> io::Result<Value> {
    let ser = args.serializer;
    let n = args.subscribers.max(1);
    let mut subs = join_all(&target, ser, &args.realm, n, args.connect_concurrency).await?;
    for (i, conn) in subs.iter_mut().enumerate() {
        // Request id 1 on every session; SUBSCRIBE one after the other keeps it simple.
        conn.request(&json!([SUBSCRIBE, 1, {}, TOPIC]), SUBSCRIBED)
            .await
            .map_err(|e| io::Error::other(format!("subscriber {i}: {e}")))?;
    }
    let publisher_conn = WsConn::join(&target, ser, &args.realm).await?;
    let fan = Rc::new(Fanout {
        delivered: Cell::new(0),
        wake_at: Cell::new(u64::MAX),
        wake: Notify::new(),
        stop: Cell::new(false),
    });
    let stats = Rc::new(RefCell::new(PublisherStats::default()));
    let mut tasks = Vec::new();
    for conn in subs {
        tasks.push(tokio::task::spawn_local(subscriber(conn, fan.clone())));
    }
    let publisher_task = tokio::task::spawn_local(publisher(
        publisher_conn,
        fan.clone(),
        n as u64,
        args.window.max(1),
        stats.clone(),
    ));

    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let (d0, p0, a) = (
        fan.delivered.get(),
        stats.borrow().published,
        Mark::now(pids),
    );
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let (d1, p1, b) = (
        fan.delivered.get(),
        stats.borrow().published,
        Mark::now(pids),
    );
    fan.stop.set(true);
    if publisher_task.is_finished() {
        publisher_task.await.map_err(io::Error::other)??;
    }
    for t in &tasks {
        if t.is_finished() {
            // A subscriber that ended early failed.
            return Err(io::Error::other(
                "a subscriber's connection ended during the run",
            ));
        }
    }
    let w = window(&a, &b);
    let events = d1 - d0;
    let s = stats.borrow();
    let mut v = json!({
        "scenario": "pubsub",
        "subscribers": n,
        "window": args.window,
        "duration_s": round(w.secs, 3),
        "events": events,
        "events_per_s": round(events as f64 / w.secs, 0),
        "publications_per_s": round((p1 - p0) as f64 / w.secs, 1),
        "published_total": s.published,
        "acked_total": s.acked,
        "stalls": s.stalls,
        "server_cpu_s_per_million": w.server_cpu.filter(|_| events > 0).map(|c| round(c * 1e6 / events as f64, 3)),
    });
    w.fields(&mut v);
    Ok(v)
}

// ---- RPC ----

async fn callee(mut conn: WsConn, stop: Rc<Cell<bool>>) -> io::Result<()> {
    let ser = conn.ser;
    let mut out = Vec::with_capacity(16 << 10);
    loop {
        while let Some((opcode, start, end)) = conn.parse()? {
            if !matches!(opcode, OpCode::Text | OpCode::Binary) {
                conn.control(opcode, start, end).await?;
                continue;
            }
            match ser.head(&conn.buf[start..end]) {
                Some((INVOCATION, id)) => ser.yield_(&mut out, id),
                _ => {
                    let text = ser.decode(&conn.buf[start..end])?;
                    return Err(io::Error::other(format!("callee got {text}")));
                }
            }
        }
        // Every YIELD for what one read brought, in one write.
        if !out.is_empty() {
            conn.stream.write_all(&out).await?;
            out.clear();
        }
        if stop.get() {
            return Ok(());
        }
        conn.fill().await?;
    }
}

/// 0: warm-up, 1: measuring, 2: stop.
async fn caller(mut conn: WsConn, phase: Rc<Cell<u8>>) -> io::Result<(u64, Vec<u32>)> {
    let ser = conn.ser;
    let mut out = Vec::with_capacity(128);
    let mut calls = 0u64;
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut id = 0u64;
    loop {
        id += 1;
        out.clear();
        ser.call(&mut out, id);
        let t0 = Instant::now();
        conn.stream.write_all(&out).await?;
        let (start, end) = conn.next_message().await?;
        let took = t0.elapsed();
        match ser.head(&conn.buf[start..end]) {
            Some((RESULT, got)) if got == id => {}
            _ => {
                let text = ser.decode(&conn.buf[start..end])?;
                return Err(io::Error::other(format!("call {id} got {text}")));
            }
        }
        match phase.get() {
            0 => {}
            1 => {
                calls += 1;
                latencies.push(took.as_nanos().min(u128::from(u32::MAX)) as u32);
            }
            _ => return Ok((calls, latencies)),
        }
    }
}

async fn rpc(args: &Args, target: Rc<Target>, pids: &[String]) -> io::Result<Value> {
    let ser = args.serializer;
    let n_callees = args.callees.max(1);
    let callee_target = match &args.callee_url {
        Some(url) => Rc::new(Target::parse(url)?),
        None => target.clone(),
    };
    let mut callees = join_all(
        &callee_target,
        ser,
        &args.realm,
        n_callees,
        args.connect_concurrency,
    )
    .await?;
    let options = if n_callees > 1 {
        json!({"invoke": "roundrobin"})
    } else {
        json!({})
    };
    for conn in &mut callees {
        conn.request(&json!([REGISTER, 1, options, PROCEDURE]), REGISTERED)
            .await?;
    }
    let callers = join_all(
        &target,
        ser,
        &args.realm,
        args.callers.max(1),
        args.connect_concurrency,
    )
    .await?;
    let stop = Rc::new(Cell::new(false));
    let phase = Rc::new(Cell::new(0u8));
    let callee_tasks: Vec<_> = callees
        .into_iter()
        .map(|c| tokio::task::spawn_local(callee(c, stop.clone())))
        .collect();
    let caller_tasks: Vec<_> = callers
        .into_iter()
        .map(|c| tokio::task::spawn_local(caller(c, phase.clone())))
        .collect();

    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let backplane = pid_list(args.backplane_pid.as_deref());
    let backplane_a = cpu_of(&backplane);
    let a = Mark::now(pids);
    phase.set(1);
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    phase.set(2);
    let b = Mark::now(pids);
    let backplane_b = cpu_of(&backplane);
    let mut calls = 0;
    let mut lat: Vec<u32> = Vec::new();
    for t in caller_tasks {
        let (c, l) = tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .map_err(|_| io::Error::other("a caller got no RESULT within 10 s after the run"))?
            .map_err(io::Error::other)??;
        calls += c;
        lat.extend(l);
    }
    stop.set(true);
    for t in &callee_tasks {
        if t.is_finished() {
            return Err(io::Error::other(
                "a callee's connection ended during the run",
            ));
        }
    }
    lat.sort_unstable();
    let pct = |p: f64| -> Option<f64> {
        if lat.is_empty() {
            return None;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        Some(round(f64::from(lat[i]) / 1000.0, 1))
    };
    let w = window(&a, &b);
    let mut v = json!({
        "scenario": "rpc",
        "callers": args.callers,
        "callees": n_callees,
        "invoke": if n_callees > 1 { "roundrobin" } else { "single" },
        "duration_s": round(w.secs, 3),
        "calls": calls,
        "calls_per_s": round(calls as f64 / w.secs, 0),
        "p50_us": pct(0.50),
        "p99_us": pct(0.99),
        "max_us": pct(1.0),
        "server_cpu_s_per_million": w.server_cpu.filter(|_| calls > 0).map(|c| round(c * 1e6 / calls as f64, 3)),
    });
    w.fields(&mut v);
    if let Some(url) = &args.callee_url {
        v["callee_url"] = json!(url);
    }
    if !backplane.is_empty() {
        let cpu = backplane_a.zip(backplane_b).map(|(a, b)| b - a);
        v["backplane_cpu_s_per_million"] = json!(cpu
            .filter(|_| calls > 0)
            .map(|c| round(c * 1e6 / calls as f64, 3)));
    }
    Ok(v)
}

fn human(v: &Value) -> String {
    let f = |k: &str| match v.get(k) {
        Some(Value::Null) | None => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(x) => x.to_string(),
    };
    match v["scenario"].as_str() {
        Some("pubsub") => format!(
            "{} pubsub {} 1->{}: {} events/s ({} publications/s), server CPU {} s per million events (util {}, waiting {}), client util {} (waiting {}), stalls {}",
            f("label"), f("serializer"), f("subscribers"), f("events_per_s"), f("publications_per_s"),
            f("server_cpu_s_per_million"), f("server_cpu_util"), f("server_runq_wait_util"),
            f("client_cpu_util"), f("client_runq_wait_util"), f("stalls")
        ),
        _ => format!(
            "{} rpc {} {} callers -> {} callee(s) ({}): {} calls/s, p50 {} us, p99 {} us, server CPU {} s per million calls (util {}, waiting {}), client util {} (waiting {})",
            f("label"), f("serializer"), f("callers"), f("callees"), f("invoke"), f("calls_per_s"),
            f("p50_us"), f("p99_us"), f("server_cpu_s_per_million"), f("server_cpu_util"),
            f("server_runq_wait_util"), f("client_cpu_util"), f("client_runq_wait_util")
        ),
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current_thread runtime");
    let local = LocalSet::new();
    let result = local.block_on(&runtime, async {
        let target = Rc::new(Target::parse(&args.url)?);
        let pids = pid_list(args.server_pid.as_deref());
        let load = loadavg();
        let mut v = match args.scenario {
            Scenario::Pubsub => pubsub(&args, target, &pids).await?,
            Scenario::Rpc => rpc(&args, target, &pids).await?,
        };
        let obj = v.as_object_mut().expect("an object");
        obj.insert("label".into(), json!(args.label));
        obj.insert("serializer".into(), json!(args.serializer.protocol()));
        obj.insert("url".into(), json!(args.url));
        obj.insert("loadavg_before".into(), json!(load));
        obj.insert("loadavg_after".into(), json!(loadavg()));
        io::Result::Ok(v)
    });
    // Dropping the runtime drops every connection task without waiting for them.
    drop(local);
    match result {
        Ok(v) => {
            println!("{v}");
            eprintln!("{}", human(&v));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            let v = json!({
                "scenario": format!("{:?}", args.scenario).to_lowercase(),
                "serializer": args.serializer.protocol(),
                "label": args.label,
                "error": e.to_string(),
            });
            println!("{v}");
            eprintln!("wamp-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Connects to a raw TCP server that answers the handshake with `headers` after the 101
    /// status line, `{accept}` in them replaced by the value right for the key sent.
    async fn connect_to_raw_server(headers: &'static str) -> io::Result<WsConn> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let request = loop {
                if let Some((request, _)) = handshake::parse_request(&head, 16 << 10).unwrap() {
                    break request;
                }
                assert!(tcp.read_buf(&mut head).await.unwrap() > 0);
            };
            let offer = handshake::validate_request(&request).unwrap();
            let accept = handshake::accept_key(offer.key.unwrap().as_bytes());
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Protocol: wamp.2.json\r\n{}\r\n",
                headers.replace("{accept}", &accept)
            );
            tcp.write_all(response.as_bytes()).await.unwrap();
            // Hold the connection until the client goes.
            while tcp.read_buf(&mut head).await.is_ok_and(|n| n > 0) {}
        });
        let target = Target::parse(&format!("ws://127.0.0.1:{port}/wamp"))?;
        WsConn::connect(&target, Ser::Json).await
    }

    #[tokio::test]
    async fn the_handshake_needs_the_right_accept_value_in_its_own_header() {
        assert!(connect_to_raw_server("Sec-WebSocket-Accept: {accept}\r\n")
            .await
            .is_ok());
        let wrong = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
        let elsewhere = "X-Accept: {accept}\r\nSec-WebSocket-Accept: x\r\n";
        for headers in [wrong, elsewhere, "X-Accept: {accept}\r\n"] {
            let e = connect_to_raw_server(headers).await.err().expect(headers);
            assert!(e.to_string().contains("Sec-WebSocket-Accept"), "{e}");
        }
    }

    #[test]
    fn pid_lists_are_comma_separated() {
        assert!(pid_list(None).is_empty());
        assert!(pid_list(Some("")).is_empty());
        assert_eq!(pid_list(Some("12,34,")), ["12", "34"]);
    }

    #[test]
    fn urls_give_the_address_host_header_and_target() {
        let t = Target::parse("ws://[::1]:8080/wamp?x=1").unwrap();
        assert_eq!(t.addr, ("::1".to_owned(), 8080));
        assert_eq!(
            (t.host.as_str(), t.path.as_str()),
            ("[::1]:8080", "/wamp?x=1")
        );
        let t = Target::parse("ws://example.com").unwrap();
        assert_eq!(t.addr, ("example.com".to_owned(), 80));
        assert_eq!((t.host.as_str(), t.path.as_str()), ("example.com", "/"));
        assert!(Target::parse("wss://example.com/").is_err());
    }
}
