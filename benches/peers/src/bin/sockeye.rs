//! sockeye through its public API, as `sockeye serve`'s `/echo` does it: `sockeye::serve`,
//! `accept`, then `recv` and `send`. `--deflate` keeps `Config::default()`'s permessage-deflate;
//! without it the config is `without_compression()`. Keepalive pings are off (the default).

use sockeye::{Config, Message, Upgrade};
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let args = sockeye_bench_peers::Args::parse(true);
    let config = if args.deflate {
        Config::default()
    } else {
        Config::default().without_compression()
    };
    // sockeye has its own accept loop; run it on the same runtimes the other peers get.
    let runtime = if args.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .expect("runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind(args.addr).await.expect("bind");
        println!("LISTENING {}", listener.local_addr().expect("local_addr"));
        std::io::Write::flush(&mut std::io::stdout()).expect("stdout");
        sockeye::serve(listener, config, |upgrade, _peer| async move {
            let _ = echo(upgrade).await;
        })
        .await
        .expect("serve");
    });
}

async fn echo(upgrade: Upgrade<TcpStream>) -> sockeye::Result<()> {
    let mut ws = upgrade.accept(None).await?;
    while let Some(msg) = ws.recv().await {
        match msg? {
            msg @ (Message::Text(_) | Message::Binary(_)) => ws.send(msg).await?,
            Message::Close(_) => break,
        }
    }
    Ok(())
}
