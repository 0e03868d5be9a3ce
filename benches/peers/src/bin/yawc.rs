//! yawc, as its `echo_server` example: hyper HTTP/1 with upgrades, `WebSocket::upgrade_with_options`,
//! echo text and binary frames. UTF-8 validation is on (`with_utf8`, off by default in yawc),
//! so that text messages cost what RFC 6455 §8.1 asks of every other contender. `--deflate`
//! offers permessage-deflate at zlib level 6, sockeye's default.

use futures_util::{SinkExt, StreamExt};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use tokio::net::TcpStream;
use yawc::{CompressionLevel, OpCode, Options, WebSocket};

fn main() {
    let args = sockeye_bench_peers::Args::parse(true, false);
    let deflate = args.deflate;
    sockeye_bench_peers::serve(&args, move |stream| serve_connection(stream, deflate));
}

fn options(deflate: bool) -> Options {
    let options = Options::default()
        .with_utf8()
        .with_max_payload_read(64 << 20)
        .with_max_read_buffer(128 << 20);
    if deflate {
        options.with_compression_level(CompressionLevel::new(6))
    } else {
        options.without_compression()
    }
}

async fn serve_connection(stream: TcpStream, deflate: bool) {
    let io = hyper_util::rt::TokioIo::new(stream);
    let service = service_fn(move |req| server_upgrade(req, deflate));
    let conn = http1::Builder::new()
        .serve_connection(io, service)
        .with_upgrades();
    let _ = conn.await;
}

async fn server_upgrade(
    mut req: Request<Incoming>,
    deflate: bool,
) -> yawc::Result<Response<Empty<Bytes>>> {
    let (response, fut) = WebSocket::upgrade_with_options(&mut req, options(deflate))?;
    tokio::spawn(async move {
        let _ = handle_client(fut).await;
    });
    Ok(response)
}

async fn handle_client(fut: yawc::UpgradeFut) -> yawc::Result<()> {
    let mut ws = fut.await?;
    while let Some(frame) = ws.next().await {
        if let OpCode::Text | OpCode::Binary = frame.opcode() {
            ws.send(frame).await?;
        }
    }
    Ok(())
}
