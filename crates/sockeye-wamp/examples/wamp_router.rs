//! A standalone WAMP router: `cargo run -p sockeye-wamp --example wamp_router [ADDR]`
//! (default 127.0.0.1:8080). Prints `LISTENING <addr>` once it accepts connections; any path
//! serves WAMP (`ws://ADDR/` or `ws://ADDR/wamp`).

use sockeye_wamp::{RouterConfig, TransportConfig, WampRouter};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("LISTENING {}", listener.local_addr()?);
    let router = WampRouter::new(RouterConfig::default(), TransportConfig::default());
    sockeye::serve(
        listener,
        sockeye::Config::default(),
        move |upgrade, peer| {
            let router = router.clone();
            async move {
                if let Err(e) = router.serve(upgrade).await {
                    tracing::debug!(%peer, "wamp session ended: {e}");
                }
            }
        },
    )
    .await
}
