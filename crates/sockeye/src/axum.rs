//! An axum 0.8 extractor that gives a Sockeye [`WebSocket`], over HTTP/1.1 and HTTP/2.
//!
//! ```no_run
//! use axum::{routing::any, Router};
//! use sockeye::axum::WebSocketUpgrade;
//!
//! async fn echo(ws: WebSocketUpgrade) -> axum::response::Response {
//!     ws.protocols(["soap", "wamp"]).on_upgrade(|mut socket| async move {
//!         while let Some(Ok(msg)) = socket.recv().await {
//!             if socket.send(msg).await.is_err() {
//!                 break;
//!             }
//!         }
//!     })
//! }
//!
//! // `any`: HTTP/1.1 upgrades are GET, HTTP/2 ones (RFC 8441) are CONNECT.
//! let app: Router = Router::new().route("/echo", any(echo));
//! ```

/// axum-core, whose `Response` and extractor traits this module implements.
pub use axum_core;

use std::future::Future;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::config::Config;
use crate::hyper::{Rejection, UpgradeRequest, UpgradedStream};
use crate::socket::WebSocket;

/// Extracts a WebSocket handshake. Requests that are not one are refused with 400 (426 for a
/// wrong `Sec-WebSocket-Version`), as the native server refuses them.
#[derive(Debug)]
pub struct WebSocketUpgrade {
    request: UpgradeRequest,
    protocols: Vec<String>,
}

/// The extractor's rejection: the status and text body of the failed handshake.
#[derive(Debug)]
pub struct WebSocketUpgradeRejection(Rejection);

impl WebSocketUpgradeRejection {
    /// The status and text of the refusal, as the client received them.
    pub fn rejection(&self) -> &Rejection {
        &self.0
    }
}

impl std::fmt::Display for WebSocketUpgradeRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for WebSocketUpgradeRejection {}

impl IntoResponse for WebSocketUpgradeRejection {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = WebSocketUpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let request = UpgradeRequest::from_parts(parts, Config::default())
            .map_err(WebSocketUpgradeRejection)?;
        Ok(WebSocketUpgrade {
            request,
            protocols: Vec::new(),
        })
    }
}

impl WebSocketUpgrade {
    /// The subprotocols this route speaks, most preferred first; the first one the client
    /// offered is selected.
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Limits, keepalive, permessage-deflate and timeouts for this socket
    /// (default: [`Config::default`]).
    pub fn config(mut self, config: Config) -> Self {
        *self.request.config_mut() = config;
        self
    }

    /// The subprotocols the client offered, in its order.
    pub fn offered_protocols(&self) -> &[String] {
        self.request.offered_protocols()
    }

    /// The subprotocol that [`WebSocketUpgrade::on_upgrade`] will select.
    pub fn selected_protocol(&self) -> Option<String> {
        self.request.select_protocol(&self.protocols)
    }

    /// `HTTP/1.1` or `HTTP/2`, whichever carried the handshake.
    pub fn http_version(&self) -> http::Version {
        self.request.http_version()
    }

    /// Answers the handshake (101 over HTTP/1.1, 200 over HTTP/2) and runs `callback` with the
    /// socket once the connection is handed over. If the client goes away before that, the
    /// callback is not called.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(WebSocket<UpgradedStream>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let protocol = self.selected_protocol();
        let (response, pending) = self.request.accept(protocol);
        tokio::spawn(async move {
            match pending.await {
                Ok(socket) => callback(socket).await,
                Err(e) => tracing::debug!("WebSocket upgrade failed: {e}"),
            }
        });
        response
    }
}
