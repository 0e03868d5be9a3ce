//! `sockeye serve`: the demo endpoints of the seed document.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sockeye::http::{header, HeaderValue, Response, StatusCode};
use sockeye::{CloseCode, MaybeTlsStream, Message, PreparedMessage, Upgrade, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;

use crate::chat::{Delivery, Hub};

use crate::metrics::Metrics;
use crate::shutdown::{Shutdown, ShutdownWatch};

const INDEX_HTML: &str = include_str!("../assets/index.html");

/// The flags of `sockeye serve`: the same struct as its TOML file.
pub type ServeArgs = crate::config::Settings;

struct App {
    endpoints: crate::config::Endpoints,
    allow_origin: Vec<String>,
    trust_proxy: Vec<sockeye::forwarded::Cidr>,
    /// The chat rooms, and through them the other nodes.
    chat: Arc<Hub>,
    /// Whether the node was told to join a cluster (`--cluster`).
    clustered: bool,
    /// Whether the WAMP retained events the cluster kept have all been loaded (always, out
    /// of a cluster): until then the node is not ready.
    retained_loaded: Arc<std::sync::atomic::AtomicBool>,
    /// WAMP events from other nodes dropped at the bridge's full queue (`crate::cluster`).
    wamp_events_dropped: Arc<std::sync::atomic::AtomicU64>,
    metrics: Metrics,
    max_connections: i64,
    shutdown: Shutdown,
    /// The WAMP router at `/wamp`, with the realms of the config file.
    wamp: sockeye_wamp::WampRouter,
    /// The demo market, unless `[endpoints] market = false`.
    market: Option<crate::market::Exchange>,
}

/// Counts a connection as open for as long as it lives, and its close code when it ends.
struct OpenConnection<'a>(&'a Metrics);

impl<'a> OpenConnection<'a> {
    fn new(metrics: &'a Metrics, version: sockeye::http::Version) -> Self {
        metrics.connection_opened();
        metrics.accepted(version);
        OpenConnection(metrics)
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.connection_gone();
    }
}

/// Reads the settings (flags over the file) and makes the runtime they ask for.
pub fn runtime(
    flags: ServeArgs,
) -> crate::Result<(crate::config::Resolved, tokio::runtime::Runtime)> {
    let settings = crate::config::Settings::load(flags)?.resolve()?;
    let runtime = match settings.workers {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()?,
        None => tokio::runtime::Runtime::new()?,
    };
    Ok((settings, runtime))
}

pub async fn run(settings: crate::config::Resolved) -> crate::Result<ExitCode> {
    let listeners = crate::tls::bind(&settings.listen, &settings.tls).await?;
    if let Some(n) = settings.shared_compressors {
        sockeye::proto::deflate::set_shared_compressors(n);
    }
    let config = settings.config;
    let shutdown_timeout = settings.shutdown_timeout;
    let cluster = settings.cluster;
    let backplane: Arc<dyn sockeye_cluster::Backplane> = match &cluster.url {
        Some(url) => {
            tracing::info!(url, node = cluster.node_name, "joining the cluster");
            Arc::new(
                sockeye_cluster::Nats::connect(url, &cluster.node_name, cluster.history).await?,
            )
        }
        None => Arc::new(sockeye_cluster::InProcess::new(cluster.history)),
    };
    let mut router = settings.router;
    if cluster.url.is_some() {
        let mut cluster_config = sockeye_wamp::ClusterConfig::node(cluster.node_id);
        cluster_config.shared_retention = true;
        router.cluster = Some(cluster_config);
    }
    let wamp = sockeye_wamp::WampRouter::new(router, settings.transport);
    let retained_loaded = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let wamp_events_dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
    if let Some(cluster_config) = wamp.with_router(|r| r.config().cluster.clone()) {
        retained_loaded.store(false, std::sync::atomic::Ordering::Relaxed);
        tokio::spawn(crate::cluster::run(
            wamp.clone(),
            backplane.clone(),
            cluster_config.subject_prefix,
            retained_loaded.clone(),
            wamp_events_dropped.clone(),
        ));
    }
    let market = settings.endpoints.market.then(|| {
        let exchange = crate::market::Exchange::new(settings.market.seed);
        tokio::spawn(crate::market::wamp::run(
            exchange.clone(),
            wamp.clone(),
            settings.market.realm,
        ));
        exchange
    });
    let app = Arc::new(App {
        endpoints: settings.endpoints,
        allow_origin: settings.allow_origin,
        trust_proxy: settings.trust_proxy,
        chat: Hub::start(backplane, cluster.node_name),
        clustered: cluster.url.is_some(),
        retained_loaded,
        wamp_events_dropped,
        metrics: Metrics::default(),
        max_connections: settings.max_connections,
        shutdown: Shutdown::default(),
        wamp,
        market,
    });
    // Connections that went quiet give their shared zlib state back within two seconds.
    tokio::spawn(async {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            sockeye::proto::deflate::release_idle_shared();
        }
    });
    let handler_app = app.clone();
    let accepting = listeners.serve(config, move |upgrade, peer| {
        let app = handler_app.clone();
        // Boxed: what an async fn takes keeps its room in the task for the WebSocket's whole
        // life, at every level it is passed down (1.5 KiB per connection unboxed, measured).
        let upgrade = Box::new(upgrade);
        async move { route(app, upgrade, peer).await }
    });
    tokio::select! {
        result = accepting => result?,
        signal = shutdown_signal() => {
            tracing::info!("{signal}: closing connections with 1001 Going Away");
            app.shutdown.trigger();
            let deadline = tokio::time::Instant::now() + shutdown_timeout;
            while app.metrics.open() > 0
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let left = app.metrics.open();
            if left > 0 {
                tracing::warn!("{left} connections did not close in time");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// Receives the next message, and on shutdown starts the closing handshake with 1001
/// "Going Away" (once), then keeps receiving until the close event.
async fn recv_until_shutdown<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocket<S>,
    app: &App,
    shutdown: &mut ShutdownWatch,
    going_away: &mut bool,
) -> Option<sockeye::Result<Message>> {
    loop {
        tokio::select! {
            // The message first: the shutdown is looked at only while none is ready.
            biased;
            msg = ws.recv() => {
                if let Some(Ok(Message::Close(event))) = &msg {
                    app.metrics.ended(event.code.0, ws.deflate_stats(), ws.message_stats());
                }
                return msg;
            }
            _ = shutdown.triggered(), if !*going_away => {
                *going_away = true;
                let _ = ws.close_with(CloseCode::GOING_AWAY, "Going Away").await;
            }
        }
    }
}

/// A request, boxed so that the task keeps a pointer to it rather than a copy (see `run`).
type Request = Box<Upgrade<MaybeTlsStream>>;

/// The request out of its box, and the box freed now: moving out with `*` would free it only when
/// the function that holds it ends, which for a WebSocket is when it closes.
fn unbox(upgrade: Request) -> Upgrade<MaybeTlsStream> {
    *upgrade
}

/// Refuses the request with `status` and `body`, the answer's future boxed: inline, its state
/// (the request, the lingering close) would size every connection's task.
async fn refuse(upgrade: Request, status: StatusCode, body: &str) -> sockeye::Result<()> {
    Box::pin(unbox(upgrade).reject(status, body)).await
}

/// Completes the handshake, its future boxed and freed once done: inline, the handshake's
/// state (the request, the response being written) would size the connection's task for its
/// whole life. (The task of an idle `/echo` connection was 7,936 bytes, massif.)
async fn accept(
    upgrade: Request,
    protocol: Option<String>,
) -> sockeye::Result<WebSocket<MaybeTlsStream>> {
    Box::pin(unbox(upgrade).accept(protocol)).await
}

async fn route(app: Arc<App>, upgrade: Request, peer: SocketAddr) {
    let on = app.endpoints;
    let path = match upgrade.path() {
        "/" | "/index.html" if on.page => "/",
        "/metrics" if on.metrics => "/metrics",
        "/echo" if on.echo => "/echo",
        "/hello" if on.hello => "/hello",
        "/chat" if on.chat => "/chat",
        p if on.chat && p.starts_with("/chat/") => "/chat",
        "/healthz" => "/healthz",
        "/wamp" if on.wamp => "/wamp",
        "/soap" if on.soap && app.market.is_some() => "/soap",
        _ => "",
    };
    if !upgrade.is_websocket() {
        let _ = match path {
            // Boxed, as `refuse` is: a page's future would size every WebSocket's task.
            "/" => Box::pin(page(upgrade, INDEX_HTML)).await,
            "/metrics" => Box::pin(metrics_page(upgrade, &app)).await,
            "/healthz" => Box::pin(health_page(upgrade, &app)).await,
            "/soap" if upgrade.request().uri().query() == Some("wsdl") => {
                Box::pin(wsdl_page(upgrade)).await
            }
            "/echo" | "/hello" | "/chat" | "/wamp" | "/soap" => {
                // 426 asks for `Upgrade`, a header HTTP/2 does not have (RFC 9113 §8.2.2).
                let status = if upgrade.http_version() == sockeye::http::Version::HTTP_2 {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::UPGRADE_REQUIRED
                };
                refuse(upgrade, status, "This endpoint speaks WebSocket.\n").await
            }
            _ => refuse(upgrade, StatusCode::NOT_FOUND, "Not Found\n").await,
        };
        return;
    }
    // The client's address: the TCP peer's, or what a trusted reverse proxy says it is.
    let client = sockeye::forwarded::client_addr(upgrade.request(), peer, &app.trust_proxy);
    tracing::info!(%client, %peer, path = upgrade.path(), "connection");
    if let Some(origin) = upgrade.header("origin") {
        if !app.allow_origin.is_empty() && !app.allow_origin.iter().any(|o| o == origin) {
            tracing::info!(%client, %peer, origin, "refused origin");
            app.metrics.refused("origin");
            let _ = refuse(upgrade, StatusCode::FORBIDDEN, "Origin not allowed\n").await;
            return;
        }
    }
    if app.metrics.open() >= app.max_connections {
        app.metrics.refused("limit");
        let _ = refuse(
            upgrade,
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many connections\n",
        )
        .await;
        return;
    }
    if app.shutdown.is_triggered() {
        app.metrics.refused("shutdown");
        let _ = refuse(upgrade, StatusCode::SERVICE_UNAVAILABLE, "Shutting down\n").await;
        return;
    }
    let _open = OpenConnection::new(&app.metrics, upgrade.http_version());
    // Every endpoint but /echo is boxed: the task of each connection is as large as the largest
    // future it may await inline, and /chat's or /wamp's would size every echo connection's.
    let result = match path {
        "/echo" => echo(upgrade, &app).await,
        "/hello" => Box::pin(hello(upgrade, &app)).await,
        "/chat" => Box::pin(chat(upgrade, &app)).await,
        "/healthz" => {
            refuse(
                upgrade,
                StatusCode::BAD_REQUEST,
                "Not a WebSocket endpoint\n",
            )
            .await
        }
        "/wamp" => {
            let mut watch = app.shutdown.watch();
            let shutdown = async move { watch.triggered().await };
            Box::pin(app.wamp.serve_until(unbox(upgrade), shutdown)).await
        }
        "/soap" => Box::pin(soap(upgrade, &app)).await,
        _ => refuse(upgrade, StatusCode::NOT_FOUND, "Not Found\n").await,
    };
    if let Err(e) = result {
        tracing::debug!(%client, %peer, path, "connection ended: {e}");
    }
}

async fn metrics_page(upgrade: Request, app: &App) -> sockeye::Result<()> {
    let mut resp = Response::new(());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    let backplane = app.chat.backplane();
    app.metrics.cluster(
        backplane.is_connected(),
        app.chat.unsent.load(std::sync::atomic::Ordering::Relaxed),
        backplane.dropped()
            + app
                .wamp_events_dropped
                .load(std::sync::atomic::Ordering::Relaxed),
    );
    upgrade.respond(resp, app.metrics.render().as_bytes()).await
}

/// `/healthz` for load balancers: 200 while the node is ready for new clients, 503 while it
/// is not (shutting down, cut off from the cluster it was told to join, or not done loading
/// the WAMP retained events the cluster keeps). The body says which, and how the cluster link
/// stands; the node is alive whenever it answers.
async fn health_page(upgrade: Request, app: &App) -> sockeye::Result<()> {
    let backplane = app.chat.backplane();
    let connected = backplane.is_connected();
    let shutting_down = app.shutdown.is_triggered();
    let retained_loaded = app
        .retained_loaded
        .load(std::sync::atomic::Ordering::Relaxed);
    let ready = !shutting_down && (connected || !app.clustered) && retained_loaded;
    let body = serde_json::json!({
        "live": true,
        "ready": ready,
        "shutting_down": shutting_down,
        "node": app.chat.node(),
        "cluster": {
            "backplane": backplane.describe(),
            "connected": connected,
            "retained_loaded": retained_loaded,
        },
        "connections": app.metrics.open(),
    });
    let mut resp = Response::new(());
    *resp.status_mut() = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    upgrade.respond(resp, format!("{body}\n").as_bytes()).await
}

/// The WSDL of `/soap`, naming the service's address on the host and scheme the client used.
async fn wsdl_page(upgrade: Request) -> sockeye::Result<()> {
    let scheme = match upgrade.get_ref() {
        Some(MaybeTlsStream::Tls(_)) => "wss",
        // HTTP/2 names its scheme in the request.
        _ if upgrade.request().uri().scheme_str() == Some("https") => "wss",
        _ => "ws",
    };
    let host = upgrade
        .header("host")
        .map(str::to_owned)
        .or_else(|| upgrade.request().uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into());
    let mut resp = Response::new(());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    let body = crate::market::soap::wsdl(scheme, &host);
    upgrade.respond(resp, body.as_bytes()).await
}

async fn page(upgrade: Request, html: &str) -> sockeye::Result<()> {
    let mut resp = Response::new(());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    upgrade.respond(resp, html.as_bytes()).await
}

/// Echoes every message with its type; agrees to the first subprotocol offered, so
/// `new WebSocket(url, ["soap", "wamp"])` opens with `soap`. The close code and reason are
/// echoed by the protocol core.
async fn echo(upgrade: Request, app: &App) -> sockeye::Result<()> {
    let protocol = upgrade.offered_protocols().into_iter().next();
    let mut ws = accept(upgrade, protocol).await?;
    let (mut shutdown, mut going_away) = (app.shutdown.watch(), false);
    while let Some(msg) = recv_until_shutdown(&mut ws, app, &mut shutdown, &mut going_away).await {
        match msg {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                let _ = ws.send(msg).await;
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(e) => tracing::debug!("echo: {e}"),
        }
    }
    Ok(())
}

/// The seed's demo: "My name is John" gets "Hello from server, John!", and five seconds after
/// the first greeting the server closes with 1000 "Bye!".
async fn hello(upgrade: Request, app: &App) -> sockeye::Result<()> {
    let mut ws = accept(upgrade, None).await?;
    let mut bye_at: Option<tokio::time::Instant> = None;
    let (mut shutdown, mut going_away) = (app.shutdown.watch(), false);
    loop {
        let bye = async {
            match bye_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = recv_until_shutdown(&mut ws, app, &mut shutdown, &mut going_away) => match msg {
                Some(Ok(Message::Text(text))) => {
                    let reply = Message::text(greeting(&text));
                    let _ = ws.send(reply).await;
                    bye_at.get_or_insert_with(|| tokio::time::Instant::now() + Duration::from_secs(5));
                }
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::debug!("hello: {e}"),
            },
            _ = bye => {
                bye_at = None;
                ws.close(Some(1000), "Bye!").await?;
            }
        }
    }
}

pub fn greeting(text: &str) -> String {
    let name = text.split_whitespace().last().unwrap_or("Guest");
    format!("Hello from server, {name}!")
}

/// How long a sender waits, at most, for the slowest member when the room's backlog is three
/// quarters full.
const CHAT_SENDER_PATIENCE: Duration = Duration::from_secs(1);
/// Relayed messages a member queues before one write.
const CHAT_BATCH: usize = 64;

/// Holds a sender back while the slowest member of its room on this node is three quarters
/// of the backlog behind, for up to [`CHAT_SENDER_PATIENCE`]. If that member does not catch up
/// in that time, the room counts as overflowing and nobody waits until the backlog is down to
/// a quarter again: one member too slow for good must not pace the room; it falls out of the
/// backlog and is closed instead.
async fn wait_for_the_room(room: &crate::chat::Room) {
    use std::sync::atomic::Ordering::Relaxed;
    let backlog = room.backlog();
    if room.overflowing.load(Relaxed) {
        if backlog < crate::chat::BACKLOG / 4 {
            room.overflowing.store(false, Relaxed);
        }
        return;
    }
    let high = crate::chat::BACKLOG * 3 / 4;
    let deadline = tokio::time::Instant::now() + CHAT_SENDER_PATIENCE;
    while room.backlog() >= high {
        if tokio::time::Instant::now() >= deadline {
            room.overflowing.store(true, Relaxed);
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `/chat` (the room `lobby`) and `/chat/NAME`: every text message to every member of the room,
/// on every node, framed once per node.
///
/// A client that offers the `sockeye.chat.v1` subprotocol gets JSON: a welcome with its member
/// id, the room's epoch and offset and who is there, each message with its offset and sender,
/// presence changes, and with `?since=OFFSET&epoch=EPOCH` what it missed first (README, "Chat
/// rooms"). Any other client gets the seed's chat: each text as it was sent.
///
/// Nothing is lost silently. When the slowest member is three quarters of the backlog behind,
/// senders wait (their sockets are not read) for up to [`CHAT_SENDER_PATIENCE`], so a burst
/// slows to what the members can take. A member still too slow to keep the backlog is closed
/// with 1013 "Try Again Later" and a reason saying how many messages it missed.
async fn chat(upgrade: Request, app: &App) -> sockeye::Result<()> {
    use sockeye_cluster::room::{check_room_name, JoinQuery, ServerMessage, LOBBY, SUBPROTOCOL};
    let name = match upgrade.path().strip_prefix("/chat/") {
        None => LOBBY,
        Some(name) => match check_room_name(name) {
            Ok(name) => name,
            Err(e) => return refuse(upgrade, StatusCode::NOT_FOUND, &format!("{e}\n")).await,
        },
    }
    .to_owned();
    let query = match JoinQuery::parse(upgrade.request().uri().query()) {
        Ok(query) => query,
        Err(e) => return refuse(upgrade, StatusCode::BAD_REQUEST, &format!("{e}\n")).await,
    };
    let json = upgrade.offered_protocols().iter().any(|p| p == SUBPROTOCOL);
    // Joined before the 101 goes out, so that nothing published once the client sees `open`
    // can miss it.
    let mut membership = app.chat.join(&name, query.name).await;
    let mut ws = accept(upgrade, json.then(|| SUBPROTOCOL.into())).await?;
    // Live messages up to here were given in the welcome's offset or by recovery.
    let mut given = membership.offset;
    if json {
        let (recovered, missed) = match &query.since {
            Some((since, epoch)) => {
                let (recovered, missed) = app.chat.recover(&name, *since, epoch).await;
                (Some(recovered), missed)
            }
            None => (None, Vec::new()),
        };
        let welcome = ServerMessage::Welcome {
            room: name.clone(),
            me: membership.member.id.clone(),
            epoch: membership.epoch.clone(),
            offset: membership.offset,
            recovered,
            members: app.chat.members(&name),
        };
        let _ = ws
            .feed_prepared(&PreparedMessage::text(welcome.to_json()))
            .await;
        for message in missed {
            if let ServerMessage::Message {
                offset: Some(o), ..
            } = &message
            {
                given = given.max(*o);
            }
            let _ = ws
                .feed_prepared(&PreparedMessage::text(message.to_json()))
                .await;
        }
        let _ = ws.flush().await;
    }
    let (mut shutdown, mut going_away) = (app.shutdown.watch(), false);
    loop {
        tokio::select! {
            msg = recv_until_shutdown(&mut ws, app, &mut shutdown, &mut going_away) => match msg {
                Some(Ok(Message::Text(text))) => {
                    wait_for_the_room(&membership.room).await;
                    app.chat.publish(&membership.room, &membership.member, text.to_string()).await;
                }
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                _ => {}
            },
            relayed = async { membership.deliveries.as_mut().expect("guarded").recv().await }, if membership.deliveries.is_some() => {
                let mut batch = Vec::new();
                let mut missed = match relayed {
                    Ok(delivery) => {
                        batch.push(delivery);
                        0
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => n,
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                };
                let receiver = membership.deliveries.as_mut().expect("guarded");
                while missed == 0 && batch.len() < CHAT_BATCH {
                    match receiver.try_recv() {
                        Ok(delivery) => batch.push(delivery),
                        Err(broadcast::error::TryRecvError::Lagged(n)) => missed = n,
                        Err(_) => break,
                    }
                }
                if missed > 0 {
                    // Stop reading the room at once, so that senders stop waiting for this
                    // member.
                    membership.deliveries = None;
                    app.metrics.chat_slow_close();
                    tracing::info!("chat: closing a member that missed {missed} messages");
                    let _ = ws
                        .close_with(
                            CloseCode(1013),
                            &format!("Try Again Later: {missed} chat messages missed"),
                        )
                        .await;
                    continue;
                }
                for delivery in &batch {
                    let prepared = match (&**delivery, json) {
                        (Delivery::Message(m), _) if m.offset.is_some_and(|o| o <= given) => {
                            continue
                        }
                        (Delivery::Message(m), true) => m.json(),
                        (Delivery::Message(m), false) => m.plain(),
                        (Delivery::Presence(j), true) => j,
                        (Delivery::Presence(_), false) => continue,
                    };
                    if ws.feed_prepared(prepared).await.is_err() {
                        break;
                    }
                }
                let _ = ws.flush().await;
            },
        }
    }
}

/// The market's SOAP service: one SOAP 1.2 envelope per message, answered in order. A
/// handshake that does not offer the `soap` subprotocol is refused: a client that does not
/// speak SOAP would not understand the replies.
async fn soap(mut upgrade: Request, app: &App) -> sockeye::Result<()> {
    use crate::market::soap::{answer, MAX_ENVELOPE, SUBPROTOCOL};
    let Some(exchange) = &app.market else {
        return refuse(upgrade, StatusCode::NOT_FOUND, "Not Found\n").await;
    };
    if !upgrade.offered_protocols().iter().any(|p| p == SUBPROTOCOL) {
        return refuse(
            upgrade,
            StatusCode::BAD_REQUEST,
            "SOAP over WebSocket needs the `soap` subprotocol\n",
        )
        .await;
    }
    let config = upgrade.config_mut();
    let limit = config.protocol.max_message_size.min(MAX_ENVELOPE);
    *config = std::mem::take(config).max_message_size(limit);
    let mut ws = accept(upgrade, Some(SUBPROTOCOL.into())).await?;
    // The market ticks while a SOAP session is open, so that its quotes move.
    let _watching = exchange.soap_watcher();
    let (mut shutdown, mut going_away) = (app.shutdown.watch(), false);
    while let Some(msg) = recv_until_shutdown(&mut ws, app, &mut shutdown, &mut going_away).await {
        let envelope = match msg {
            Ok(Message::Text(text)) => answer(text.as_str().as_bytes(), &exchange.market()),
            Ok(Message::Binary(bytes)) => answer(&bytes, &exchange.market()),
            Ok(Message::Close(_)) => break,
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!("soap: {e}");
                continue;
            }
        };
        let _ = ws.send(Message::text(envelope)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::greeting;

    #[test]
    fn hello_greets_the_last_word() {
        assert_eq!(greeting("My name is John"), "Hello from server, John!");
        assert_eq!(greeting(""), "Hello from server, Guest!");
        assert_eq!(greeting("  "), "Hello from server, Guest!");
    }
}
