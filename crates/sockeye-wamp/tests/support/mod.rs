//! What the integration tests share: serving a router on a loopback WebSocket listener, a
//! timeout for anything awaited, and reading a countdown's progressive results.

use std::time::Duration;

use sockeye::Config;
use sockeye_wamp::client::Call;
use sockeye_wamp::WampRouter;
use tokio::net::TcpListener;
use tokio::time::timeout;

/// Serves `router` on an ephemeral loopback port; returns its `ws://…/wamp` URL.
pub async fn serve(router: WampRouter) -> String {
    serve_with(router, Config::default()).await
}

/// [`serve`] with the WebSocket `config` given.
#[allow(dead_code)] // only some test files need it
pub async fn serve_with(router: WampRouter, config: Config) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/wamp", listener.local_addr().unwrap());
    tokio::spawn(sockeye::serve(listener, config, move |upgrade, _| {
        let r = router.clone();
        async move {
            let _ = r.serve(upgrade).await;
        }
    }));
    url
}

/// Awaits `f`, failing the test after 10 seconds.
#[allow(dead_code)] // not every test file waits
pub async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    timeout(Duration::from_secs(10), f)
        .await
        .expect("timed out")
}

/// Reads `call` to its end: a countdown from 3 gives progressive results 3, 2, 1 and then
/// the final "liftoff".
#[allow(dead_code)] // only the RPC tests count down
pub async fn assert_counts_down(mut call: Call) {
    let mut seen = Vec::new();
    while let Some(r) = within(call.next()).await {
        let r = r.unwrap();
        seen.push((r.is_progress(), r.payload.args()[0].clone()));
    }
    assert_eq!(
        seen,
        vec![
            (true, 3.into()),
            (true, 2.into()),
            (true, 1.into()),
            (false, "liftoff".into())
        ]
    );
}
