//! `/soap` of `sockeye serve`: the StockQuote service in SOAP 1.2 over WebSocket ([MS-SWSB],
//! subprotocol `soap`), against zeep and against hostile messages.
//!
//! The zeep client runs from the venv that `scripts/setup-python.sh` makes ($SOCKEYE_PYTHON or
//! interop/.venv/bin/python). Without it (or without zeep in it) that test says so and passes
//! vacuously, unless `SOCKEYE_REQUIRE_INTEROP=1` (set by `scripts/test.sh`), when a missing
//! peer is a failure.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sockeye::proto::CloseCode;
use sockeye::{ClientRequest, Config, Message};
use sockeye_soap::{Limits, Request, SOAP11_ENVELOPE_NS, SOAP12_ENVELOPE_NS, WSA_NS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::time::timeout;

type Socket = sockeye::WebSocket<sockeye::MaybeTlsStream>;

async fn start() -> (tokio::process::Child, String) {
    common::start_one(&["--listen", "127.0.0.1:0"]).await
}

/// A WebSocket to `/soap` that agreed on `soap`.
async fn soap_socket(addr: &str, config: Config) -> Socket {
    let request = ClientRequest::new(&format!("ws://{addr}/soap"))
        .unwrap()
        .protocol("soap");
    let ws = sockeye::connect_with(request, config).await.unwrap();
    assert_eq!(ws.protocol(), Some("soap"));
    ws
}

async fn next(ws: &mut Socket) -> Message {
    timeout(Duration::from_secs(10), ws.recv())
        .await
        .expect("nothing within 10 s")
        .expect("stream ended")
        .expect("error")
}

/// Sends one envelope and returns the reply's text.
async fn exchange(ws: &mut Socket, envelope: &str) -> String {
    ws.send(envelope).await.unwrap();
    match next(ws).await {
        Message::Text(text) => text.as_str().to_owned(),
        other => panic!("not a text reply: {other:?}"),
    }
}

/// A request as zeep writes it: its own prefixes, WS-Addressing declared on the Header.
fn get_quote(message_id: &str, symbol: &str) -> String {
    format!(
        "<?xml version='1.0' encoding='utf-8'?>\n\
         <soap-env:Envelope xmlns:soap-env=\"{SOAP12_ENVELOPE_NS}\">\
         <soap-env:Header xmlns:wsa=\"{WSA_NS}\">\
         <wsa:Action>urn:sockeye:demo:stockquote/GetQuote</wsa:Action>\
         <wsa:MessageID>{message_id}</wsa:MessageID></soap-env:Header>\
         <soap-env:Body><ns0:GetQuote xmlns:ns0=\"urn:sockeye:demo:stockquote\">\
         <ns0:symbol>{symbol}</ns0:symbol></ns0:GetQuote></soap-env:Body></soap-env:Envelope>"
    )
}

/// An envelope with a wsa:MessageID header and `body` inside env:Body.
fn envelope(message_id: &str, body: &str) -> String {
    format!(
        "<e:Envelope xmlns:e=\"{SOAP12_ENVELOPE_NS}\" xmlns:a=\"{WSA_NS}\"><e:Header>\
         <a:MessageID>{message_id}</a:MessageID></e:Header><e:Body>{body}</e:Body></e:Envelope>"
    )
}

/// A reply read back with the same parser the server uses.
fn read_reply(xml: &str) -> Request {
    sockeye_soap::parse_request(xml.as_bytes(), &Limits::default())
        .unwrap_or_else(|e| panic!("the reply is not a SOAP 1.2 envelope: {e}\n{xml}"))
}

/// The local name of a fault reply's Code/Value (`Sender` for `env:Sender`), and its reason.
fn fault_code(xml: &str) -> (String, String) {
    let reply = read_reply(xml);
    let fault = &reply.body;
    assert_eq!(
        (fault.namespace.as_deref(), fault.name.as_str()),
        (Some(SOAP12_ENVELOPE_NS), "Fault"),
        "{xml}"
    );
    assert_eq!(
        reply.action.as_deref(),
        Some(sockeye_soap::WSA_FAULT_ACTION),
        "{xml}"
    );
    let value = &fault.child("Code").unwrap().child("Value").unwrap().text;
    let reason = &fault.child("Reason").unwrap().child("Text").unwrap().text;
    let local = value.rsplit(':').next().unwrap().to_owned();
    (local, reason.clone())
}

/// A valid request on `ws` gets its quote: the socket is still usable.
async fn still_quotes(ws: &mut Socket, message_id: &str) {
    let reply = exchange(ws, &get_quote(message_id, "SOCK")).await;
    assert!(
        reply.contains(&format!("<wsa:RelatesTo>{message_id}</wsa:RelatesTo>")),
        "{reply}"
    );
    let response = read_reply(&reply);
    assert_eq!(response.body.name, "GetQuoteResponse", "{reply}");
    let quote = response.body.child("quote").expect("a quote");
    assert_eq!(quote.child("symbol").unwrap().text, "SOCK");
    assert_eq!(
        response.action.as_deref(),
        Some("urn:sockeye:demo:stockquote/GetQuoteResponse")
    );
}

async fn http_get(addr: &str, path: &str, host: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    timeout(Duration::from_secs(5), tcp.read_to_end(&mut out))
        .await
        .expect("the server did not end the response")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

// ---- zeep ----

#[tokio::test]
async fn zeep_loads_the_wsdl_and_gets_quotes_and_a_fault_over_one_websocket() {
    let Some(py) = common::python_with("zeep, websockets").await else {
        return;
    };
    let (_server, addr) = start().await;
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop/python/soap_zeep_client.py");
    let out = timeout(
        Duration::from_secs(60),
        Command::new(py).arg(script).arg(&addr).output(),
    )
    .await
    .expect("the zeep client did not finish within 60 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("no JSON line ({e}):\n{stdout}\n{stderr}"));
    assert!(
        out.status.success() && report["ok"] == true,
        "{report:#}\n{stderr}"
    );
    let results = &report["results"];
    assert_eq!(results["GetQuote SOCK"]["result"]["symbol"], "SOCK");
    assert_eq!(
        results["GetQuotes SOCK CRAB TOKIO"]["result"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(
        results["GetQuote NOPE"]["subcodes"][0],
        "{urn:sockeye:demo:stockquote}UnknownSymbol"
    );
}

// ---- the WSDL and the handshake ----

#[tokio::test]
async fn wsdl_is_served_over_plain_http_with_the_location_filled_in() {
    let (_server, addr) = start().await;
    let resp = http_get(&addr, "/soap?wsdl", &addr).await;
    let (head, body) = resp.split_once("\r\n\r\n").expect("a complete response");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_ascii_lowercase())
        })
        .expect("a Content-Type");
    assert!(
        content_type.starts_with("application/wsdl+xml") || content_type.starts_with("text/xml"),
        "{content_type}"
    );
    assert!(
        body.contains(&format!("<soap12:address location=\"ws://{addr}/soap\"/>")),
        "{body}"
    );
    assert!(!body.contains("{{LOCATION}}"));
    assert!(body.contains("targetNamespace=\"urn:sockeye:demo:stockquote\""));
    assert!(body.trim_end().ends_with("</wsdl:definitions>"));
    // The Host header is the client's to write; it must not write markup into the document.
    let resp = http_get(&addr, "/soap?wsdl", "evil\"><x y=\"").await;
    assert!(!resp.contains("evil\"><x"), "{resp}");
}

#[tokio::test]
async fn a_handshake_that_does_not_offer_soap_is_refused_with_400() {
    let (_server, addr) = start().await;
    for protocol in [None, Some("wamp.2.json")] {
        let mut request = ClientRequest::new(&format!("ws://{addr}/soap")).unwrap();
        if let Some(p) = protocol {
            request = request.protocol(p);
        }
        let err = sockeye::connect_with(request, Config::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("400"), "{protocol:?}: {err}");
    }
    // By hand, to see that no 101 precedes the refusal.
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(
        b"GET /soap HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 4096];
    let n = timeout(Duration::from_secs(5), tcp.read(&mut head))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
}

// ---- hostile envelopes ----

fn billion_laughs() -> String {
    let mut dtd = String::from("<!DOCTYPE lolz [<!ENTITY lol0 \"lol\">");
    for i in 1..10 {
        dtd.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&lol{};", i - 1).repeat(10)
        ));
    }
    dtd.push_str("]>");
    format!(
        "<?xml version=\"1.0\"?>{dtd}{}",
        envelope(
            "urn:uuid:lol",
            "<GetQuote xmlns=\"urn:sockeye:demo:stockquote\"><symbol>&lol9;</symbol></GetQuote>"
        )
    )
}

#[tokio::test]
async fn bad_envelopes_get_faults_and_the_socket_stays_usable() {
    let (_server, addr) = start().await;
    let nested = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
    let soap11 = format!(
        "<s:Envelope xmlns:s=\"{SOAP11_ENVELOPE_NS}\"><s:Body>\
         <GetQuote xmlns=\"urn:sockeye:demo:stockquote\"><symbol>SOCK</symbol></GetQuote>\
         </s:Body></s:Envelope>"
    );
    let external = format!(
        "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{}",
        envelope(
            "urn:uuid:xxe",
            "<GetQuote xmlns=\"urn:sockeye:demo:stockquote\"><symbol>&e;</symbol></GetQuote>"
        )
    );
    let must_understand = format!(
        "<e:Envelope xmlns:e=\"{SOAP12_ENVELOPE_NS}\" xmlns:a=\"{WSA_NS}\"><e:Header>\
         <a:MessageID>urn:uuid:mu</a:MessageID>\
         <t:Transaction xmlns:t=\"urn:t\" e:mustUnderstand=\"true\">5</t:Transaction>\
         </e:Header><e:Body><GetQuote xmlns=\"urn:sockeye:demo:stockquote\">\
         <symbol>SOCK</symbol></GetQuote></e:Body></e:Envelope>"
    );
    // (what, envelope, fault code, the MessageID the fault relates to)
    let cases = [
        ("not XML", "this is not XML <".to_owned(), "Sender", None),
        ("SOAP 1.1", soap11, "VersionMismatch", None),
        ("billion laughs", billion_laughs(), "Sender", None),
        ("external entity", external, "Sender", None),
        (
            "10,000 levels",
            envelope("urn:uuid:deep", &nested),
            "Sender",
            Some("urn:uuid:deep"),
        ),
        (
            "mustUnderstand",
            must_understand,
            "MustUnderstand",
            Some("urn:uuid:mu"),
        ),
    ];
    for (what, bad, code, relates_to) in cases {
        let mut ws = soap_socket(&addr, Config::default()).await;
        let reply = exchange(&mut ws, &bad).await;
        let (got, reason) = fault_code(&reply);
        assert_eq!(got, code, "{what}: {reason}\n{reply}");
        assert!(!reply.contains("root:"), "{what}: {reply}");
        if let Some(id) = relates_to {
            assert!(
                reply.contains(&format!("<wsa:RelatesTo>{id}</wsa:RelatesTo>")),
                "{what}: {reply}"
            );
        }
        still_quotes(
            &mut ws,
            &format!("urn:uuid:after-{}", what.replace(' ', "-")),
        )
        .await;
    }
}

#[tokio::test]
async fn an_unknown_symbol_is_a_sender_fault_with_the_unknown_symbol_subcode() {
    let (_server, addr) = start().await;
    let mut ws = soap_socket(&addr, Config::default()).await;
    let reply = exchange(&mut ws, &get_quote("urn:uuid:nope", "NOPE")).await;
    let (code, _) = fault_code(&reply);
    assert_eq!(code, "Sender");
    let fault = read_reply(&reply).body;
    let subcode = fault
        .child("Code")
        .unwrap()
        .child("Subcode")
        .expect("a subcode");
    let value = &subcode.child("Value").unwrap().text;
    assert!(value.ends_with(":UnknownSymbol"), "{reply}");
    assert!(reply.contains("<wsa:RelatesTo>urn:uuid:nope</wsa:RelatesTo>"));
    still_quotes(&mut ws, "urn:uuid:after-nope").await;
}

// ---- size ----

/// The server's resident memory in bytes, while it runs.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Samples the server's RSS every 10 ms until dropped; `highest()` is the most seen.
struct RssWatch {
    highest: std::sync::Arc<AtomicU64>,
    sampler: tokio::task::JoinHandle<()>,
}

impl RssWatch {
    fn start(pid: u32) -> Self {
        let highest = std::sync::Arc::new(AtomicU64::new(rss(pid).expect("the server runs")));
        let sampler = tokio::spawn({
            let highest = highest.clone();
            async move {
                while let Some(now) = rss(pid) {
                    highest.fetch_max(now, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        RssWatch { highest, sampler }
    }

    fn highest(&self) -> u64 {
        self.highest.load(Ordering::Relaxed)
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}

const HUNDRED_MIB: usize = 100 << 20;

/// The envelope that is 100 MiB long, in pieces: what comes before the symbol, how many bytes
/// of symbol, what comes after.
fn hundred_mib_envelope() -> (String, usize, String) {
    let whole = envelope(
        "urn:uuid:big",
        "<GetQuote xmlns=\"urn:sockeye:demo:stockquote\"><symbol>|</symbol></GetQuote>",
    );
    let (head, tail) = whole.split_once('|').unwrap();
    (
        head.to_owned(),
        HUNDRED_MIB - head.len() - tail.len(),
        tail.to_owned(),
    )
}

/// Reads server frames from `tcp` until a close frame, and returns its code.
async fn read_close_code(tcp: &mut tokio::net::tcp::OwnedReadHalf) -> u16 {
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await.expect("reading the close frame");
        assert!(n > 0, "EOF before a close frame");
        buf.extend_from_slice(&chunk[..n]);
        // Server frames are unmasked, and nothing the server sends here is long.
        while buf.len() >= 2 {
            let len = usize::from(buf[1] & 0x7f);
            if buf.len() < 2 + len {
                break;
            }
            if buf[0] & 0x0f == 0x8 {
                return u16::from_be_bytes([buf[2], buf[3]]);
            }
            buf.drain(..2 + len);
        }
    }
}

/// A 100 MiB envelope, the whole of it written as one frame by hand (so that a write failing
/// once the server has closed cannot hide the close frame, as it does in a client that reports
/// the failed write first), gets a close frame with 1009, and the server's memory does not
/// grow with the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_envelope_is_closed_with_1009_and_the_server_stays_small() {
    let (server, addr) = start().await;
    let pid = server.id().unwrap();
    // Warm up first, so that what the first connection allocates once is in the baseline.
    still_quotes(
        &mut soap_socket(&addr, Config::default()).await,
        "urn:uuid:warm",
    )
    .await;
    let before = rss(pid).unwrap();
    let watch = RssWatch::start(pid);

    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(
        b"GET /soap HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: soap\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: soap"),
        "{head}"
    );

    let (mut rx, mut tx) = tcp.into_split();
    let writing = tokio::spawn(async move {
        // FIN + text, masked, 64-bit length; an all-zero masking key leaves the payload as it is.
        let mut frame = vec![0x81, 0xff];
        frame.extend_from_slice(&(HUNDRED_MIB as u64).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        let (envelope_head, symbol_len, envelope_tail) = hundred_mib_envelope();
        frame.extend_from_slice(envelope_head.as_bytes());
        tx.write_all(&frame).await?;
        let chunk = vec![b'A'; 64 << 10];
        let mut left = symbol_len;
        while left > 0 {
            let n = left.min(chunk.len());
            tx.write_all(&chunk[..n]).await?;
            left -= n;
        }
        tx.write_all(envelope_tail.as_bytes()).await?;
        std::io::Result::Ok(())
    });
    let code = timeout(Duration::from_secs(30), read_close_code(&mut rx))
        .await
        .expect("no close frame within 30 s");
    assert_eq!(code, CloseCode::MESSAGE_TOO_BIG.0);
    // The server stops reading; the rest of the envelope may or may not have been taken.
    let _ = timeout(Duration::from_secs(30), writing).await;
    let grew = watch.highest().saturating_sub(before);
    assert!(grew < 64 << 20, "the server grew by {} MiB", grew >> 20);
    drop(watch);
    still_quotes(
        &mut soap_socket(&addr, Config::default()).await,
        "urn:uuid:after",
    )
    .await;
}

/// The same envelope compressed by permessage-deflate is ~100 KiB on the wire: a deflate bomb,
/// stopped at the 1 MiB limit of what it inflates to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_envelope_compressed_is_closed_with_1009_and_the_server_stays_small() {
    let (server, addr) = start().await;
    let pid = server.id().unwrap();
    still_quotes(
        &mut soap_socket(&addr, Config::default()).await,
        "urn:uuid:warm",
    )
    .await;
    let before = rss(pid).unwrap();
    let watch = RssWatch::start(pid);
    let mut ws = soap_socket(&addr, Config::default()).await;
    assert!(
        ws.extensions().starts_with("permessage-deflate"),
        "{}",
        ws.extensions()
    );
    let (head, symbol_len, tail) = hundred_mib_envelope();
    let big = format!("{head}{}{tail}", "A".repeat(symbol_len));
    assert_eq!(big.len(), HUNDRED_MIB);
    let sent = ws.send(big).await;
    let event = match timeout(Duration::from_secs(30), ws.recv()).await {
        Ok(Some(Ok(Message::Close(event)))) => event,
        other => panic!("no close frame: {other:?}; the send gave {sent:?}"),
    };
    assert_eq!(event.code, CloseCode::MESSAGE_TOO_BIG, "{event:?}");
    let grew = watch.highest().saturating_sub(before);
    assert!(grew < 64 << 20, "the server grew by {} MiB", grew >> 20);
    drop(watch);
    still_quotes(
        &mut soap_socket(&addr, Config::default()).await,
        "urn:uuid:after",
    )
    .await;
}
