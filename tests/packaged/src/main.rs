//! A sockeye echo server on 127.0.0.1:0 and a sockeye client that sends it one message and
//! checks the echo, then a WAMP router and client and a SOAP envelope, written against the
//! public API of the packaged crates only.

use std::net::SocketAddr;
use std::time::Duration;

use sockeye::{ClientRequest, Config, Message, Upgrade};
use sockeye_wamp::client::Client;
use sockeye_wamp::{Dict, Payload, RouterConfig, Serializer, TransportConfig, WampRouter};
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

    // The packaged WAMP crates: a router at /wamp and a client that calls itself.
    let router = WampRouter::new(RouterConfig::default(), TransportConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let wamp_addr = listener.local_addr()?;
    tokio::spawn(sockeye::serve(
        listener,
        Config::default(),
        move |upgrade, _| {
            let router = router.clone();
            async move {
                let _ = router.serve(upgrade).await;
            }
        },
    ));
    let url = format!("ws://{wamp_addr}/wamp");
    let wamp = async {
        let client = Client::connect(&url, "realm1", Serializer::Json).await?;
        let mut registration = client.register("com.example.twice", Dict::new()).await?;
        let callee = client.clone();
        tokio::spawn(async move {
            while let Some(inv) = registration.next().await {
                let n = inv.payload.args()[0].as_i64().unwrap_or(0);
                let _ = callee
                    .yield_result(inv.request, Payload::Args(vec![(2 * n).into()]))
                    .await;
            }
        });
        let result = client
            .call(
                "com.example.twice",
                Payload::Args(vec![21.into()]),
                Dict::new(),
            )
            .await?;
        Ok::<_, Box<dyn std::error::Error>>(result.payload.args()[0].as_i64())
    };
    let twice = tokio::time::timeout(Duration::from_secs(10), wamp).await??;
    if twice != Some(42) {
        return Err(format!("com.example.twice(21) gave {twice:?}").into());
    }
    println!("packaged sockeye-wamp: com.example.twice(21) = 42");

    // The packaged SOAP crate: an attribute escaped as XML wants it.
    let escaped = sockeye_soap::escape_attribute("a<\"b\">&");
    println!("packaged sockeye-soap: {escaped}");
    Ok(())
}
