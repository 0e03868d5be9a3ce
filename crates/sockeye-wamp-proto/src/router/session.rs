//! Sessions: opening (HELLO, CHALLENGE, AUTHENTICATE, WELCOME), closing (GOODBYE, ABORT,
//! a transport that is gone), and what a session leaves behind when it ends.

use std::sync::Arc;

use super::{error_uri as E, router_roles, Action, ConnId, Router, TRUSTED};
use crate::auth::{Decision, Pending};
use crate::message::Message;
use crate::uri;
use crate::value::{Dict, Value};

/// An established session.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub(super) id: u64,
    pub(super) realm: String,
    pub(super) authid: String,
    pub(super) authrole: String,
    pub(super) authmethod: String,
    /// The client's `roles` from HELLO, for its features.
    pub(super) roles: Dict,
    /// A component inside the router's process ([`Router::join_trusted`]): the realm's roles
    /// do not restrict it.
    pub(super) trusted: bool,
}

impl Session {
    /// What the session meta API tells about a session.
    pub(super) fn info(&self) -> Dict {
        Dict::new()
            .with("session", self.id)
            .with("authid", self.authid.as_str())
            .with("authrole", self.authrole.as_str())
            .with("authmethod", self.authmethod.as_str())
            .with("authprovider", "static")
    }

    pub(super) fn feature(&self, role: &str, feature: &str) -> bool {
        self.roles
            .get_dict(role)
            .and_then(|r| r.get_dict("features"))
            .and_then(|f| f.get_bool(feature))
            .unwrap_or(false)
    }
}

#[derive(Debug)]
pub(super) enum ConnState {
    /// Transport open, no session: waiting for HELLO.
    Fresh,
    /// CHALLENGE sent, waiting for AUTHENTICATE.
    Challenging {
        session: u64,
        realm: String,
        roles: Dict,
        pending: Pending,
    },
    Established(Arc<Session>),
    /// The router sent GOODBYE (shutdown) and waits for the client's; the session is over.
    Closing,
}

impl Router {
    /// Ends a session with GOODBYE (for example `wamp.close.system_shutdown`) and waits for
    /// the client's GOODBYE in reply, then closes the transport ([`Action::Close`]). How long
    /// to wait is the transport's business. False if the connection has no session (there is
    /// nobody to say goodbye to).
    pub fn goodbye(&mut self, conn: ConnId, reason: &str, message: &str) -> bool {
        if !matches!(self.conns.get(&conn), Some(ConnState::Established(_))) {
            return false;
        }
        let Some(ConnState::Established(session)) = self.conns.insert(conn, ConnState::Closing)
        else {
            unreachable!("checked above");
        };
        self.send(
            conn,
            Message::Goodbye {
                details: Dict::new().with("message", message),
                reason: reason.to_owned(),
            },
        );
        self.leave(conn, &session);
        true
    }

    /// Joins a fresh connection to `realm` without authentication, as `authid` with authrole
    /// and authmethod `trusted`: for components that run inside the router's own process (a
    /// service the server offers), in the manner of Crossbar's router components. The realm
    /// is created if it does not exist, whatever `auto_create_realms` says, and its roles do
    /// not restrict the session. The WELCOME is sent as for any session. `None` if `conn` is
    /// not fresh or `realm` is not a valid URI.
    pub fn join_trusted(&mut self, conn: ConnId, realm: &str, authid: &str) -> Option<u64> {
        if !matches!(self.conns.get(&conn), Some(ConnState::Fresh))
            || !uri::is_valid(realm, self.config.uri_check)
        {
            return None;
        }
        if !self.realms.contains_key(realm) {
            let new = self.new_realm(realm, false);
            self.realms.insert(realm.to_owned(), new);
        }
        let id = self.fresh_session_id();
        let roles = Dict::new()
            .with("publisher", Dict::new())
            .with("subscriber", Dict::new())
            .with("caller", Dict::new())
            .with(
                "callee",
                Dict::new().with(
                    "features",
                    Dict::new().with("progressive_call_results", true),
                ),
            );
        self.establish(
            conn,
            id,
            realm.to_owned(),
            roles,
            authid.to_owned(),
            TRUSTED.to_owned(),
            TRUSTED,
        );
        Some(id)
    }

    /// A session id no session has now.
    pub(super) fn fresh_session_id(&mut self) -> u64 {
        loop {
            let node = self.config.cluster.as_ref().and_then(|c| c.node_id);
            let id = self.ids.session_id(node);
            if !self.session_ids.contains_key(&id) {
                return id;
            }
        }
    }

    /// The transport is gone (closed, reset, or dropped by the server). Calls in flight to its
    /// procedures fail, its calls are interrupted, its subscriptions and registrations go.
    pub fn disconnect(&mut self, conn: ConnId) {
        match self.conns.remove(&conn) {
            Some(ConnState::Established(session)) => self.leave(conn, &session),
            Some(ConnState::Challenging { session, .. }) => {
                self.session_ids.remove(&session);
            }
            _ => {}
        }
    }

    /// Ends a session with GOODBYE (for example on shutdown) and closes its transport.
    pub fn kick(&mut self, conn: ConnId, reason: &str, message: &str) {
        if let Some(ConnState::Established(session)) = self.conns.remove(&conn) {
            self.send(
                conn,
                Message::Goodbye {
                    details: Dict::new().with("message", message),
                    reason: reason.to_owned(),
                },
            );
            self.out.push_back(Action::Close(conn));
            self.leave(conn, &session);
        }
    }

    pub(super) fn hello(&mut self, conn: ConnId, realm: String, details: Dict) {
        if !uri::is_valid(&realm, self.config.uri_check) {
            self.abort(conn, E::INVALID_URI, &format!("invalid realm {realm:?}"));
            return;
        }
        if !self.realms.contains_key(&realm) {
            if !self.config.auto_create_realms {
                self.abort(conn, E::NO_SUCH_REALM, &format!("no realm {realm:?}"));
                return;
            }
            if self.realms.values().filter(|r| r.auto).count() >= self.config.max_auto_realms {
                self.abort(
                    conn,
                    E::NO_SUCH_REALM,
                    &format!("no realm {realm:?}, and no room for another"),
                );
                return;
            }
            let new = self.new_realm(&realm, true);
            self.realms.insert(realm.clone(), new);
        }
        let id = self.fresh_session_id();
        let roles = details.get_dict("roles").cloned().unwrap_or_default();
        let random = self.ids.challenge();
        let auth = self.realms[&realm]
            .auth
            .as_deref()
            .unwrap_or(&self.config.auth);
        match auth.decide(&details, id, random) {
            Decision::Anonymous => {
                let authid = format!("anonymous-{id}");
                self.establish(
                    conn,
                    id,
                    realm,
                    roles,
                    authid,
                    "anonymous".into(),
                    "anonymous",
                );
            }
            Decision::Challenge {
                method,
                extra,
                pending,
            } => {
                // The id is taken now: the WAMP-CRA challenge names it.
                self.session_ids.insert(id, conn);
                self.conns.insert(
                    conn,
                    ConnState::Challenging {
                        session: id,
                        realm,
                        roles,
                        pending,
                    },
                );
                self.send(
                    conn,
                    Message::Challenge {
                        method: method.to_owned(),
                        extra,
                    },
                );
            }
            Decision::NoMethod => self.abort(
                conn,
                E::NO_AUTH_METHOD,
                "no authentication method offered is acceptable",
            ),
        }
    }

    pub(super) fn authenticate(&mut self, conn: ConnId, msg: Message) {
        let Some(ConnState::Challenging {
            session,
            realm,
            roles,
            pending,
        }) = self.conns.remove(&conn)
        else {
            unreachable!("called in state Challenging");
        };
        self.session_ids.remove(&session);
        match msg {
            Message::Authenticate { signature, .. } if pending.verify(&signature) => {
                // The realm may have been freed meanwhile (it was created by a HELLO and
                // emptied); the session then simply recreates it, as its HELLO did.
                if !self.realms.contains_key(&realm) {
                    let new = self.new_realm(&realm, true);
                    self.realms.insert(realm.clone(), new);
                }
                self.establish(
                    conn,
                    session,
                    realm,
                    roles,
                    pending.authid,
                    pending.authrole,
                    pending.method,
                );
            }
            Message::Authenticate { .. } => {
                self.conns.insert(conn, ConnState::Fresh);
                self.abort(conn, E::AUTHENTICATION_FAILED, "authentication failed");
            }
            Message::Abort { .. } => self.out.push_back(Action::Close(conn)),
            other => {
                self.conns.insert(conn, ConnState::Fresh);
                self.abort(
                    conn,
                    E::PROTOCOL_VIOLATION,
                    &format!("{} received while authenticating", other.name()),
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn establish(
        &mut self,
        conn: ConnId,
        id: u64,
        realm: String,
        roles: Dict,
        authid: String,
        authrole: String,
        authmethod: &str,
    ) {
        let session = Session {
            id,
            realm: realm.clone(),
            authid,
            authrole,
            authmethod: authmethod.to_owned(),
            roles,
            trusted: authmethod == TRUSTED,
        };
        let welcome = Dict::new()
            .with("realm", realm.as_str())
            .with("authid", session.authid.as_str())
            .with("authrole", session.authrole.as_str())
            .with("authmethod", authmethod)
            .with("authprovider", "static")
            .with("roles", router_roles());
        self.session_ids.insert(id, conn);
        self.realms
            .get_mut(&realm)
            .expect("the realm exists")
            .sessions
            .insert(conn);
        self.conns
            .insert(conn, ConnState::Established(Arc::new(session)));
        self.stats.sessions_opened += 1;
        self.send(
            conn,
            Message::Welcome {
                session: id,
                details: welcome,
            },
        );
        let info = self.peer(conn).expect("just established").info();
        self.publish_meta(&realm, "wamp.session.on_join", vec![Value::Dict(info)]);
    }

    /// Ends a connection with ABORT and closes its transport.
    pub(super) fn abort(&mut self, conn: ConnId, reason: &str, message: &str) {
        if reason == E::PROTOCOL_VIOLATION {
            self.stats.protocol_violations += 1;
        }
        self.send(conn, Message::abort(reason, message));
        self.out.push_back(Action::Close(conn));
        match self.conns.remove(&conn) {
            Some(ConnState::Established(session)) => self.leave(conn, &session),
            Some(ConnState::Challenging { session, .. }) => {
                self.session_ids.remove(&session);
            }
            _ => {}
        }
    }

    /// Cleans up after a session that ended, however it ended. The connection's state has
    /// already been changed by the caller.
    pub(super) fn leave(&mut self, conn: ConnId, session: &Session) {
        self.session_ids.remove(&session.id);
        let Some(realm) = self.realms.get_mut(&session.realm) else {
            return;
        };
        realm.sessions.remove(&conn);
        let subs = realm.broker.remove_session(conn);
        let regs = self.leave_dealer(conn, session);
        for (id, gone) in subs {
            self.subscription_gone(session, id, gone);
        }
        for (id, deleted) in regs {
            self.registration_gone(session, id, deleted);
        }
        self.publish_meta(
            &session.realm,
            "wamp.session.on_leave",
            vec![
                session.id.into(),
                session.authid.as_str().into(),
                session.authrole.as_str().into(),
            ],
        );
        // A realm a HELLO created goes with its last session, retained events and all, so
        // that naming new realms cannot grow the router without end. A session still
        // authenticating for it recreates it when it is let in. With shared retention its
        // retained events are the cluster's, kept for when it is created again as offers for
        // a realm not created yet are.
        if self
            .realms
            .get(&session.realm)
            .is_some_and(|r| r.auto && r.sessions.is_empty())
        {
            let gone = self.realms.remove(&session.realm).expect("just found");
            if self.shared_retention() && !gone.retained.is_empty() {
                self.keep_pending(&session.realm, gone.retained);
            }
        }
    }
}
