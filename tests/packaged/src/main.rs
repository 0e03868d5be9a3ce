//! A sockeye echo server on 127.0.0.1:0 and a sockeye client that sends it one message and
//! checks the echo, written against the public API of the packaged `sockeye` crate only.

use std::net::SocketAddr;
use std::time::Duration;

use sockeye::{ClientRequest, Config, Message, Upgrade};
use tokio::net::{TcpListener, TcpStream};

async fn echo(upgrade: Upgrade<TcpStream>, _peer: SocketAddr) {
    let Ok(mut ws) = upgrade.accept(None).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.recv().await {
        if matches!(msg, Message::Close(_)) || ws.send(msg).await.is_err() {
            break;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(sockeye::serve(listener, Config::default(), echo));

    // No proxy: a proxy variable in the environment must not take a loopback connection away.
    let request = ClientRequest::new(&format!("ws://{addr}/echo"))?.no_proxy();
    let run = async {
        let mut ws = sockeye::connect_with(request, Config::default()).await?;
        ws.send("hello from the packaged crate").await?;
        let echo = match ws.recv().await {
            Some(Ok(Message::Text(text))) => text,
            other => return Err(format!("expected the echo, got {other:?}").into()),
        };
        if echo != "hello from the packaged crate" {
            return Err(format!("wrong echo: {echo:?}").into());
        }
        ws.close(Some(1000), "done").await?;
        Ok::<_, Box<dyn std::error::Error>>(echo)
    };
    let echo = tokio::time::timeout(Duration::from_secs(10), run).await??;
    println!("packaged sockeye: echo {echo:?} from {addr}");
    Ok(())
}
