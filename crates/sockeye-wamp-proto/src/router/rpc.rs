//! Remote procedure calls: the dealer's tables (registrations, and the calls in flight between
//! callers and callees) and the handlers of REGISTER, UNREGISTER, CALL, YIELD, ERROR, CANCEL,
//! and of call timeouts.

use std::collections::{BTreeSet, HashMap};

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{copy_passthru, error_uri as E, Action, ConnId, ConnState, Router, Session};
use crate::auth::{Operation, Verdict};
use crate::cluster::rpc::CallKey;
use crate::message::{code, Message, Payload};
use crate::uri::{self, MatchPolicy};
use crate::value::{Dict, Value};

/// How a shared registration picks among its callees (WAMP spec, "Shared Registration").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invoke {
    /// One callee only; a second REGISTER is refused.
    Single,
    RoundRobin,
    Random,
    First,
    Last,
}

impl Invoke {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "single" => Invoke::Single,
            "roundrobin" => Invoke::RoundRobin,
            "random" => Invoke::Random,
            "first" => Invoke::First,
            "last" => Invoke::Last,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Invoke::Single => "single",
            Invoke::RoundRobin => "roundrobin",
            Invoke::Random => "random",
            Invoke::First => "first",
            Invoke::Last => "last",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Registration {
    pub id: u64,
    pub uri: String,
    pub policy: MatchPolicy,
    pub invoke: Invoke,
    /// In registration order.
    pub callees: Vec<ConnId>,
    /// Round-robin position.
    next: usize,
    /// `disclose_caller` from REGISTER: every invocation names its caller.
    pub disclose_caller: bool,
}

impl Registration {
    /// The callee for the next call; `random` is a random number from the router.
    pub fn pick(&mut self, random: u64) -> ConnId {
        let n = self.callees.len();
        let i = match self.invoke {
            Invoke::Single | Invoke::First => 0,
            Invoke::Last => n - 1,
            Invoke::Random => (random % n as u64) as usize,
            Invoke::RoundRobin => {
                self.next = (self.next + 1) % n;
                (self.next + n - 1) % n
            }
        };
        self.callees[i]
    }
}

/// A call in flight, keyed by the callee and the INVOCATION's request id.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    pub caller: ConnId,
    /// The CALL's request id (caller's session scope).
    pub call_request: u64,
    /// The caller asked for progressive results and the callee supports them.
    pub progress: bool,
    /// A CANCEL in mode `kill` was forwarded; the callee's answer ends the call.
    pub interrupted: bool,
    /// When the call times out (CALL.Options.timeout), if it does.
    pub deadline: Option<std::time::Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct Dealer {
    regs: HashMap<u64, Registration>,
    by_pattern: HashMap<(MatchPolicy, String), u64>,
    prefix: BTreeSet<u64>,
    wildcard: BTreeSet<u64>,
    by_callee: HashMap<ConnId, BTreeSet<u64>>,
    /// (callee, invocation request) → the call.
    pub invocations: HashMap<(ConnId, u64), Invocation>,
    /// (caller, call request) → (callee, invocation request).
    pub calls: HashMap<(ConnId, u64), (ConnId, u64)>,
    /// The last INVOCATION request id sent to each callee (session scope, counting up).
    last_invocation: HashMap<ConnId, u64>,
    /// Cluster mode: (callee, invocation request) → a call of another node's caller.
    pub remote_invocations: HashMap<(ConnId, u64), RemoteInvocation>,
    /// Cluster mode: the calls of `remote_invocations` by their key.
    pub remote_keys: HashMap<CallKey, (ConnId, u64)>,
}

/// A call of another node's caller in flight to a callee here, keyed by the callee and the
/// INVOCATION's request id.
#[derive(Debug, Clone)]
pub(crate) struct RemoteInvocation {
    pub key: CallKey,
    /// The caller asked for progressive results and the callee supports them.
    pub progress: bool,
    /// A cancel in mode `kill` was passed on; the callee's answer ends the call.
    pub interrupted: bool,
}

impl Dealer {
    /// The request id of the next INVOCATION to `callee`.
    pub fn next_invocation(&mut self, callee: ConnId) -> u64 {
        let last = self.last_invocation.entry(callee).or_default();
        *last = crate::id::next_scoped(*last);
        *last
    }

    /// Registers a procedure, or joins a shared registration with the same invoke policy;
    /// `None` when (policy, uri) is taken otherwise.
    pub fn register(
        &mut self,
        callee: ConnId,
        policy: MatchPolicy,
        uri: &str,
        invoke: Invoke,
        disclose_caller: bool,
        new_id: impl FnOnce() -> u64,
    ) -> Option<u64> {
        let key = (policy, uri.to_owned());
        if let Some(&id) = self.by_pattern.get(&key) {
            let reg = self.regs.get_mut(&id).expect("indexed");
            if invoke == Invoke::Single || reg.invoke != invoke || reg.callees.contains(&callee) {
                return None;
            }
            reg.callees.push(callee);
            self.by_callee.entry(callee).or_default().insert(id);
            return Some(id);
        }
        let id = new_id();
        self.by_pattern.insert(key, id);
        match policy {
            MatchPolicy::Exact => {}
            MatchPolicy::Prefix => {
                self.prefix.insert(id);
            }
            MatchPolicy::Wildcard => {
                self.wildcard.insert(id);
            }
        }
        self.regs.insert(
            id,
            Registration {
                id,
                uri: uri.to_owned(),
                policy,
                invoke,
                callees: vec![callee],
                next: 0,
                disclose_caller,
            },
        );
        self.by_callee.entry(callee).or_default().insert(id);
        Some(id)
    }

    /// Removes `callee` from registration `id`; the registration goes with its last callee.
    /// `None` if `callee` was not registered there, else `Some` of the registration's policy
    /// and URI if it went.
    pub fn unregister(&mut self, callee: ConnId, id: u64) -> Option<Option<(MatchPolicy, String)>> {
        let reg = self.regs.get_mut(&id)?;
        let i = reg.callees.iter().position(|c| *c == callee)?;
        reg.callees.remove(i);
        if let Some(set) = self.by_callee.get_mut(&callee) {
            set.remove(&id);
        }
        if reg.callees.is_empty() {
            let reg = self.regs.remove(&id).expect("present");
            self.by_pattern.remove(&(reg.policy, reg.uri.clone()));
            self.prefix.remove(&id);
            self.wildcard.remove(&id);
            return Some(Some((reg.policy, reg.uri)));
        }
        Some(None)
    }

    /// Drops every registration of a callee that left: (registration, its policy and URI if
    /// it went).
    pub fn remove_callee(&mut self, callee: ConnId) -> Vec<(u64, Option<(MatchPolicy, String)>)> {
        let ids = self.by_callee.remove(&callee).unwrap_or_default();
        ids.into_iter()
            .filter_map(|id| Some((id, self.unregister(callee, id)?)))
            .collect()
    }

    /// The registration a call to `procedure` goes to (WAMP spec, "Pattern-based
    /// Registration"): an exact match wins, then the longest matching prefix, then the
    /// matching wildcard with the most literal components (ties: the oldest).
    pub fn lookup(&self, procedure: &str) -> Option<&Registration> {
        if let Some(id) = self
            .by_pattern
            .get(&(MatchPolicy::Exact, procedure.to_owned()))
        {
            return Some(&self.regs[id]);
        }
        let best_prefix = self
            .prefix
            .iter()
            .map(|id| &self.regs[id])
            .filter(|r| uri::matches(&r.uri, r.policy, procedure))
            .max_by_key(|r| (r.uri.len(), std::cmp::Reverse(r.id)));
        if best_prefix.is_some() {
            return best_prefix;
        }
        self.wildcard
            .iter()
            .map(|id| &self.regs[id])
            .filter(|r| uri::matches(&r.uri, r.policy, procedure))
            .max_by_key(|r| (uri::wildcard_specificity(&r.uri), std::cmp::Reverse(r.id)))
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Registration> {
        self.regs.get_mut(&id)
    }

    pub fn get(&self, id: u64) -> Option<&Registration> {
        self.regs.get(&id)
    }

    pub fn find(&self, policy: MatchPolicy, uri: &str) -> Option<&Registration> {
        self.by_pattern
            .get(&(policy, uri.to_owned()))
            .map(|id| &self.regs[id])
    }

    /// Every registration, oldest first.
    pub fn all(&self) -> Vec<&Registration> {
        let mut v: Vec<_> = self.regs.values().collect();
        v.sort_by_key(|r| r.id);
        v
    }
}

impl Router {
    pub(super) fn register(
        &mut self,
        conn: ConnId,
        session: &Session,
        request: u64,
        options: &Dict,
        procedure: &str,
    ) {
        let policy = options
            .get_str("match")
            .and_then(MatchPolicy::parse)
            .unwrap_or(MatchPolicy::Exact);
        if !uri::is_valid_pattern(procedure, policy, self.config.uri_check) {
            self.send(
                conn,
                Message::error(code::REGISTER, request, E::INVALID_URI),
            );
            return;
        }
        // "wamp." is the router's own namespace (the meta API).
        if procedure.starts_with("wamp.") {
            self.send(
                conn,
                Message::error(code::REGISTER, request, E::INVALID_URI),
            );
            return;
        }
        if self.authorize(session, Operation::Register, procedure) == Verdict::Denied {
            self.send(
                conn,
                Message::error(code::REGISTER, request, E::NOT_AUTHORIZED),
            );
            return;
        }
        let invoke = options
            .get_str("invoke")
            .and_then(Invoke::parse)
            .unwrap_or(Invoke::Single);
        let disclose = options.get_bool("disclose_caller").unwrap_or(false);
        let next = self.next_router_id + 1;
        let realm = self.realm_mut(session);
        match realm
            .dealer
            .register(conn, policy, procedure, invoke, disclose, || next)
        {
            Some(id) => {
                let created = id == next;
                if created {
                    self.next_router_id = next;
                }
                self.send(
                    conn,
                    Message::Registered {
                        request,
                        registration: id,
                    },
                );
                let realm = session.realm.as_str();
                if created && policy == MatchPolicy::Exact {
                    self.announce_procedure(realm, procedure, true);
                }
                if created {
                    let info = Dict::new()
                        .with("id", id)
                        .with("uri", procedure)
                        .with("match", policy.as_str())
                        .with("invoke", invoke.as_str());
                    self.publish_meta(
                        realm,
                        "wamp.registration.on_create",
                        vec![session.id.into(), Value::Dict(info)],
                    );
                }
                self.publish_meta(
                    realm,
                    "wamp.registration.on_register",
                    vec![session.id.into(), id.into()],
                );
            }
            None => self.send(
                conn,
                Message::error(code::REGISTER, request, E::PROCEDURE_ALREADY_EXISTS),
            ),
        }
    }

    pub(super) fn unregister(
        &mut self,
        conn: ConnId,
        session: &Session,
        request: u64,
        registration: u64,
    ) {
        if let Some(gone) = self
            .realm_mut(session)
            .dealer
            .unregister(conn, registration)
        {
            self.send(conn, Message::Unregistered { request });
            self.registration_gone(session, registration, gone);
        } else {
            self.send(
                conn,
                Message::error(code::UNREGISTER, request, E::NO_SUCH_REGISTRATION),
            );
        }
    }

    pub(super) fn call(
        &mut self,
        conn: ConnId,
        session: &Session,
        request: u64,
        options: Dict,
        procedure: String,
        payload: Payload,
    ) {
        if !uri::is_valid(&procedure, self.config.uri_check) {
            self.send(conn, Message::error(code::CALL, request, E::INVALID_URI));
            return;
        }
        let disclose = match self.authorize(session, Operation::Call, &procedure) {
            Verdict::Denied => {
                self.send(conn, Message::error(code::CALL, request, E::NOT_AUTHORIZED));
                return;
            }
            Verdict::Allowed { disclose } => disclose,
        };
        if procedure.starts_with("wamp.") {
            let answer = match self.meta_kill(conn, session, &procedure, &payload) {
                Some(answer) => Some(answer),
                None => self
                    .meta_call(session, &procedure, &payload)
                    .map(|a| a.map(Some)),
            };
            if let Some(answer) = answer {
                let msg = match answer {
                    Ok(value) => Message::Result {
                        request,
                        details: Dict::new(),
                        payload: value.map_or(Payload::Empty, |v| Payload::Args(vec![v])),
                    },
                    Err(error) => Message::error(code::CALL, request, error),
                };
                self.send(conn, msg);
                return;
            }
        }
        let realm = &self.realms[&session.realm];
        if realm.dealer.calls.contains_key(&(conn, request))
            || self.remote_by_request.contains_key(&(conn, request))
        {
            self.abort(
                conn,
                E::PROTOCOL_VIOLATION,
                &format!("CALL request id {request} is already in flight"),
            );
            return;
        }
        let Some(reg) = realm.dealer.lookup(&procedure) else {
            // Cluster mode: another node may have it (meta procedures are this node's own).
            if self.config.cluster.is_some() && !procedure.starts_with("wamp.") {
                self.call_remote(
                    conn, session, request, &options, procedure, payload, disclose,
                );
                return;
            }
            self.send(
                conn,
                Message::error(code::CALL, request, E::NO_SUCH_PROCEDURE),
            );
            return;
        };
        let (reg_id, reg_policy, reg_disclose) = (reg.id, reg.policy, reg.disclose_caller);
        let random = self.ids.next_u64();
        let callee = self
            .realm_mut(session)
            .dealer
            .get_mut(reg_id)
            .expect("just found")
            .pick(random);
        let mut details = Dict::new();
        if reg_policy != MatchPolicy::Exact {
            details.insert("procedure", procedure.as_str());
        }
        if reg_disclose || disclose || options.get_bool("disclose_me") == Some(true) {
            details.insert("caller", session.id);
            details.insert("caller_authid", session.authid.as_str());
            details.insert("caller_authrole", session.authrole.as_str());
        }
        let Some(ConnState::Established(callee_session)) = self.conns.get(&callee) else {
            unreachable!("registrations are removed when their callee leaves");
        };
        let progress = options.get_bool("receive_progress") == Some(true)
            && callee_session.feature("callee", "progressive_call_results");
        if progress {
            details.insert("receive_progress", true);
        }
        copy_passthru(&options, &mut details);
        let inv_request = self.realm_mut(session).dealer.next_invocation(callee);
        self.stats.calls += 1;
        // Call timeout (WAMP spec, "Call Timeouts"): 0 or absent means none.
        let deadline = match (options.get_u64("timeout"), self.now) {
            (Some(ms), Some(now)) if ms > 0 => Some(now + Duration::from_millis(ms)),
            _ => None,
        };
        if let Some(at) = deadline {
            self.deadlines.insert((at, conn, request));
        }
        let dealer = &mut self.realm_mut(session).dealer;
        dealer.calls.insert((conn, request), (callee, inv_request));
        dealer.invocations.insert(
            (callee, inv_request),
            Invocation {
                caller: conn,
                call_request: request,
                progress,
                interrupted: false,
                deadline,
            },
        );
        self.send(
            callee,
            Message::Invocation {
                request: inv_request,
                registration: reg_id,
                details,
                payload,
            },
        );
    }

    pub(super) fn yield_(
        &mut self,
        conn: ConnId,
        session: &Session,
        request: u64,
        options: &Dict,
        payload: Payload,
    ) {
        let dealer = &mut self.realm_mut(session).dealer;
        // An unknown request is a call that was canceled (mode skip/killnowait) or whose
        // caller left: the result has nowhere to go.
        let Some(inv) = dealer.invocations.get(&(conn, request)).cloned() else {
            self.yield_remote(conn, &session.realm, request, options, payload);
            return;
        };
        let progress = options.get_bool("progress") == Some(true);
        let mut details = Dict::new();
        copy_passthru(options, &mut details);
        if progress {
            if !inv.progress {
                return; // the caller did not ask for progressive results
            }
            details.insert("progress", true);
        } else {
            dealer.invocations.remove(&(conn, request));
            dealer.calls.remove(&(inv.caller, inv.call_request));
        }
        let msg = Message::Result {
            request: inv.call_request,
            details,
            payload,
        };
        self.send(inv.caller, msg);
    }

    pub(super) fn invocation_error(
        &mut self,
        conn: ConnId,
        session: &Session,
        request: u64,
        details: Dict,
        error: String,
        payload: Payload,
    ) {
        let dealer = &mut self.realm_mut(session).dealer;
        let Some(inv) = dealer.invocations.remove(&(conn, request)) else {
            self.invocation_error_remote(conn, &session.realm, request, details, error, payload);
            return;
        };
        dealer.calls.remove(&(inv.caller, inv.call_request));
        // The error URI, args and kwargs reach the caller unchanged.
        self.send(
            inv.caller,
            Message::Error {
                request_type: code::CALL,
                request: inv.call_request,
                details,
                error,
                payload,
            },
        );
    }

    /// CANCEL (WAMP spec, "Call Canceling"): `skip` answers the caller at once and lets the
    /// callee finish unheard; `kill` interrupts the callee and waits for its answer;
    /// `killnowait` interrupts the callee and answers the caller at once. A callee that did
    /// not announce `call_canceling` is never interrupted (its calls are skipped).
    pub(super) fn cancel(&mut self, conn: ConnId, session: &Session, request: u64, options: &Dict) {
        let dealer = &self.realms[&session.realm].dealer;
        let Some(&(callee, inv_request)) = dealer.calls.get(&(conn, request)) else {
            self.cancel_call_remote(conn, request, options);
            return; // else already answered
        };
        if dealer.invocations[&(callee, inv_request)].interrupted {
            return;
        }
        let callee_cancels = self
            .peer(callee)
            .is_some_and(|s| s.feature("callee", "call_canceling"));
        let mode = match options.get_str("mode").unwrap_or("kill") {
            _ if !callee_cancels => "skip",
            m => m,
        };
        let dealer = &mut self.realm_mut(session).dealer;
        if mode == "kill" {
            dealer
                .invocations
                .get_mut(&(callee, inv_request))
                .expect("indexed")
                .interrupted = true;
        } else {
            dealer.calls.remove(&(conn, request));
            dealer.invocations.remove(&(callee, inv_request));
            self.send(conn, Message::error(code::CALL, request, E::CANCELED));
        }
        if mode != "skip" {
            self.send(
                callee,
                Message::Interrupt {
                    request: inv_request,
                    options: Dict::new().with("mode", mode),
                },
            );
        }
    }

    /// A call's deadline passed: the dealer cancels it as with mode `killnowait` — the caller
    /// gets ERROR `wamp.error.timeout` at once; the callee is interrupted if it can be, and
    /// its late answer is dropped.
    pub(super) fn time_out_call(&mut self, caller: ConnId, request: u64, at: Instant) {
        let Some(session) = self.peer(caller).cloned() else {
            return; // the caller left; its calls went with it
        };
        let dealer = &self.realms[&session.realm].dealer;
        let Some(&(callee, inv_request)) = dealer.calls.get(&(caller, request)) else {
            self.time_out_remote(caller, request, at);
            return; // else answered in time
        };
        if dealer.invocations[&(callee, inv_request)].deadline != Some(at) {
            return;
        }
        let dealer = &mut self.realm_mut(&session).dealer;
        dealer.calls.remove(&(caller, request));
        dealer.invocations.remove(&(callee, inv_request));
        self.send(caller, call_timed_out(request));
        if self
            .peer(callee)
            .is_some_and(|s| s.feature("callee", "call_canceling"))
        {
            self.send(
                callee,
                Message::Interrupt {
                    request: inv_request,
                    options: Dict::new()
                        .with("mode", "killnowait")
                        .with("reason", E::TIMEOUT),
                },
            );
        }
    }

    /// Meta events after `session` left registration `id` (`gone`: it was the last callee,
    /// and the registration with this policy and URI is deleted); in cluster mode, the end
    /// of an exact registration is announced ([`Action::Registered`]).
    pub(super) fn registration_gone(
        &mut self,
        session: &Session,
        id: u64,
        gone: Option<(MatchPolicy, String)>,
    ) {
        let deleted = gone.is_some();
        if let Some((MatchPolicy::Exact, uri)) = gone {
            self.announce_procedure(&session.realm, &uri, false);
        }
        let args = vec![Value::from(session.id), Value::from(id)];
        self.publish_meta(
            &session.realm,
            "wamp.registration.on_unregister",
            args.clone(),
        );
        if deleted {
            self.publish_meta(&session.realm, "wamp.registration.on_delete", args);
        }
    }

    /// A session left: its registrations go (returned, with whether each was deleted), the
    /// calls it was serving fail and the calls it made are interrupted.
    pub(super) fn leave_dealer(
        &mut self,
        conn: ConnId,
        session: &Session,
    ) -> Vec<(u64, Option<(MatchPolicy, String)>)> {
        self.leave_remote(conn, &session.realm);
        let Some(realm) = self.realms.get_mut(&session.realm) else {
            return Vec::new();
        };
        let regs = realm.dealer.remove_callee(conn);
        let dealer = &mut realm.dealer;
        dealer.last_invocation.remove(&conn);

        // Calls this session was serving fail: "callee left" is a canceled call for the caller.
        let served: Vec<((ConnId, u64), Invocation)> = dealer
            .invocations
            .iter()
            .filter(|((callee, _), _)| *callee == conn)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for (key, inv) in served {
            dealer.invocations.remove(&key);
            dealer.calls.remove(&(inv.caller, inv.call_request));
            if inv.caller == conn {
                // Its own call to itself: the session is gone, there is nobody to tell.
                continue;
            }
            let msg = Message::Error {
                request_type: code::CALL,
                request: inv.call_request,
                details: Dict::new(),
                error: E::CANCELED.to_owned(),
                payload: Payload::Args(vec!["callee left the session".into()]),
            };
            self.out.push_back(Action::Send(inv.caller, Arc::new(msg)));
        }

        // Calls this session made are interrupted at their callees (if they can be).
        let made: Vec<((ConnId, u64), (ConnId, u64))> = dealer
            .calls
            .iter()
            .filter(|((caller, _), _)| *caller == conn)
            .map(|(k, v)| (*k, *v))
            .collect();
        for (key, (callee, inv_request)) in made {
            dealer.calls.remove(&key);
            dealer.invocations.remove(&(callee, inv_request));
            let cancels = match self.conns.get(&callee) {
                Some(ConnState::Established(s)) => s.feature("callee", "call_canceling"),
                _ => false,
            };
            if cancels {
                let msg = Message::Interrupt {
                    request: inv_request,
                    options: Dict::new().with("mode", "killnowait"),
                };
                self.out.push_back(Action::Send(callee, Arc::new(msg)));
            }
        }
        regs
    }
}

/// The ERROR a caller gets when its call's deadline passes: `wamp.error.timeout`, saying so.
pub(super) fn call_timed_out(request: u64) -> Message {
    Message::Error {
        request_type: code::CALL,
        request,
        details: Dict::new(),
        error: E::TIMEOUT.to_owned(),
        payload: Payload::Args(vec!["the call timed out".into()]),
    }
}
