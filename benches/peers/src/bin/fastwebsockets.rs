//! fastwebsockets, as its `echo_server` example: a hyper HTTP/1 connection with upgrades, the
//! `upgrade::upgrade` handshake, and a `FragmentCollector` (whole messages) echoing frames.

use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use tokio::net::TcpStream;

fn main() {
    let args = sockeye_bench_peers::Args::parse(false, false);
    sockeye_bench_peers::serve(&args, serve_connection);
}

async fn serve_connection(stream: TcpStream) {
    let io = hyper_util::rt::TokioIo::new(stream);
    let conn = http1::Builder::new()
        .serve_connection(io, service_fn(server_upgrade))
        .with_upgrades();
    let _ = conn.await;
}

async fn server_upgrade(
    mut req: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade::upgrade(&mut req)?;
    tokio::spawn(async move {
        let _ = handle_client(fut).await;
    });
    Ok(response)
}

async fn handle_client(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(fut.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
    Ok(())
}
