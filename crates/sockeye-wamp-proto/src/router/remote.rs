//! The dealer across nodes ([`crate::cluster::rpc`]): the caller's side (CALLs no local
//! registration matches, sent out as [`Action::RemoteCall`] and answered through
//! [`Router::remote_answer`]) and the callee's side (calls of other nodes taken with
//! [`Router::invoke_remote`], answered with [`Action::RemoteAnswer`]).
//!
//! The caller's side of a call, per call key:
//!
//! ```text
//!             RemoteCall emitted
//!   (CALL) ───────────────────────> Pending ── Accepted ──> Pending(node known)
//!                                     │ final RESULT / ERROR, remote_call_failed,
//!                                     │ node_gone(node), timeout, CANCEL skip|killnowait,
//!                                     │ caller left
//!                                     v
//!                                   gone: later answers for the key are dropped
//! ```
//!
//! CANCEL `kill` keeps the call pending (marked interrupted) until the callee's node answers,
//! as the local dealer waits for the callee; the callee's node answers at once with ERROR
//! `wamp.error.canceled` if its callee did not announce `call_canceling`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{copy_passthru, error_uri as E, Action, ConnId, ConnState, Router, Session};
use crate::cluster::procedure_subject;
use crate::cluster::rpc::{
    Answer, CallKey, Caller, CancelMode, RemoteAnswer, RemoteCall, RemoteCancel,
};
use crate::message::{code, Message, Payload};
use crate::uri::MatchPolicy;
use crate::value::Dict;

use super::rpc::{call_timed_out, RemoteInvocation};

/// A call of a caller here that another node serves.
#[derive(Debug, Clone)]
pub(super) struct PendingRemote {
    pub caller: ConnId,
    /// The CALL's request id.
    pub request: u64,
    pub realm: String,
    /// The caller asked for progressive results.
    pub progress: bool,
    /// The node serving it, once it said so.
    pub node: Option<u64>,
    /// A cancel in mode `kill` was sent; the callee's node's answer ends the call.
    pub interrupted: bool,
    /// When the call times out, if it does.
    pub deadline: Option<Instant>,
}

impl Router {
    /// This router's name in the cluster: the `origin` of its [`crate::ClusterEvent`]s and
    /// [`CallKey`]s, the `node` of its [`RemoteAnswer`]s, and what other nodes give
    /// [`Router::node_gone`] when this one goes. Random, drawn at construction; 0 out of
    /// cluster mode.
    pub fn origin(&self) -> u64 {
        self.origin
    }

    /// Cluster mode: every NATS subject the local exact registrations need (see
    /// [`procedure_subject`]), as `(realm, subject)` sorted by subject — what the
    /// [`Action::Registered`]s so far add up to, for a transport that attaches late or
    /// subscribes again.
    pub fn registrations(&self) -> Vec<(String, String)> {
        let Some(cluster) = &self.config.cluster else {
            return Vec::new();
        };
        let mut v: Vec<(String, String)> = self
            .realms
            .iter()
            .flat_map(|(name, realm)| {
                realm
                    .dealer
                    .all()
                    .into_iter()
                    .filter(|r| r.policy == MatchPolicy::Exact)
                    .map(|r| {
                        (
                            name.clone(),
                            procedure_subject(&cluster.subject_prefix, name, &r.uri),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v
    }

    /// Cluster mode: an exact registration of `uri` in `realm` was created (`on`) or deleted.
    pub(super) fn announce_procedure(&mut self, realm: &str, uri: &str, on: bool) {
        if let Some(cluster) = &self.config.cluster {
            let subject = procedure_subject(&cluster.subject_prefix, realm, uri);
            self.out.push_back(Action::Registered {
                realm: realm.to_owned(),
                subject,
                on,
            });
        }
    }

    /// A CALL no local registration matches, in cluster mode: it goes to the other nodes.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn call_remote(
        &mut self,
        conn: ConnId,
        session: &Session,
        request: u64,
        options: &Dict,
        procedure: String,
        payload: Payload,
        disclose: bool,
    ) {
        self.next_remote_call += 1;
        let key = CallKey {
            origin: self.origin,
            call: self.next_remote_call,
        };
        let timeout = options.get_u64("timeout").unwrap_or(0);
        // The call timeout runs here, as for a local callee.
        let deadline = match self.now {
            Some(now) if timeout > 0 => Some(now + Duration::from_millis(timeout)),
            _ => None,
        };
        if let Some(at) = deadline {
            self.deadlines.insert((at, conn, request));
        }
        let receive_progress = options.get_bool("receive_progress") == Some(true);
        self.remote_calls.insert(
            key.call,
            PendingRemote {
                caller: conn,
                request,
                realm: session.realm.clone(),
                progress: receive_progress,
                node: None,
                interrupted: false,
                deadline,
            },
        );
        self.remote_by_request.insert((conn, request), key.call);
        let mut passthru = Dict::new();
        copy_passthru(options, &mut passthru);
        self.stats.remote_calls += 1;
        self.out.push_back(Action::RemoteCall(Box::new(RemoteCall {
            key,
            realm: session.realm.clone(),
            procedure,
            caller: Caller {
                session: session.id,
                authid: session.authid.clone(),
                authrole: session.authrole.clone(),
            },
            disclose_me: disclose || options.get_bool("disclose_me") == Some(true),
            receive_progress,
            timeout,
            passthru,
            payload,
        })));
    }

    /// Forgets a pending remote call; `None` if it is not pending.
    fn take_remote(&mut self, call: u64) -> Option<PendingRemote> {
        let p = self.remote_calls.remove(&call)?;
        self.remote_by_request.remove(&(p.caller, p.request));
        Some(p)
    }

    /// An answer of the node serving a call made here ([`Action::RemoteAnswer`] there): the
    /// caller gets RESULT or ERROR as from a local callee. After the final answer (or a
    /// timeout, cancel, [`Router::remote_call_failed`] or [`Router::node_gone`]) the call is
    /// forgotten and anything later for its key is dropped (counted in
    /// [`RouterStats::remote_answers_dropped`](super::RouterStats)), so a caller never gets
    /// two final answers. Answers from a node other than the one that accepted the call are
    /// dropped too. Drain [`Router::poll`] afterwards.
    pub fn remote_answer(&mut self, answer: RemoteAnswer) {
        let RemoteAnswer { key, node, answer } = answer;
        let pending = match self.remote_calls.get_mut(&key.call) {
            Some(p) if key.origin == self.origin && p.node.is_none_or(|n| n == node) => p,
            _ => {
                self.stats.remote_answers_dropped += 1;
                return;
            }
        };
        pending.node = Some(node);
        let (caller, request, progress) = (pending.caller, pending.request, pending.progress);
        let msg = match answer {
            Answer::Accepted => return,
            Answer::Result {
                progress: true,
                mut details,
                payload,
            } => {
                if !progress {
                    return; // the caller did not ask for progressive results
                }
                details.insert("progress", true);
                Message::Result {
                    request,
                    details,
                    payload,
                }
            }
            Answer::Result {
                progress: false,
                details,
                payload,
            } => {
                self.take_remote(key.call);
                Message::Result {
                    request,
                    details,
                    payload,
                }
            }
            Answer::Error {
                error,
                details,
                payload,
            } => {
                self.take_remote(key.call);
                Message::Error {
                    request_type: code::CALL,
                    request,
                    details,
                    error,
                    payload,
                }
            }
        };
        self.send(caller, msg);
    }

    /// A call made here cannot be served: the caller gets ERROR `error` (e.g.
    /// `wamp.error.no_such_procedure` when no node has the procedure — NATS "no responders" —
    /// or `wamp.error.canceled` when the call could not be delivered). Ignored if the call is
    /// no longer pending. Drain [`Router::poll`] afterwards.
    pub fn remote_call_failed(&mut self, key: CallKey, error: &str) {
        if key.origin != self.origin {
            return;
        }
        if let Some(p) = self.take_remote(key.call) {
            self.send(p.caller, Message::error(code::CALL, p.request, error));
        }
    }

    /// Another node (its [`Router::origin`]) is gone. Calls made here that it serves fail
    /// with ERROR `wamp.error.canceled`, and later answers from it are dropped; calls of its
    /// callers served here are interrupted at their callees (mode `killnowait`, if the callee
    /// announced `call_canceling`) and forgotten. Calls not yet accepted by any node are left
    /// to their timeout, or to the transport ([`Router::remote_call_failed`]). Drain
    /// [`Router::poll`] afterwards.
    pub fn node_gone(&mut self, node: u64) {
        let mut served: Vec<u64> = self
            .remote_calls
            .iter()
            .filter(|(_, p)| p.node == Some(node))
            .map(|(call, _)| *call)
            .collect();
        served.sort_unstable();
        for call in served {
            let p = self.take_remote(call).expect("listed");
            self.send(
                p.caller,
                Message::Error {
                    request_type: code::CALL,
                    request: p.request,
                    details: Dict::new(),
                    error: E::CANCELED.to_owned(),
                    payload: Payload::Args(vec!["the callee's node is gone".into()]),
                },
            );
        }
        let mut theirs: Vec<(ConnId, u64)> = Vec::new();
        for realm in self.realms.values_mut() {
            let dealer = &mut realm.dealer;
            dealer.remote_invocations.retain(|k, inv| {
                let keep = inv.key.origin != node;
                if !keep {
                    theirs.push(*k);
                    dealer.remote_keys.remove(&inv.key);
                }
                keep
            });
        }
        theirs.sort_unstable();
        for (callee, inv_request) in theirs {
            self.interrupt(callee, inv_request, CancelMode::KillNoWait, None);
        }
    }

    /// INTERRUPT to a callee, if it announced `call_canceling`; whether it was sent.
    fn interrupt(
        &mut self,
        callee: ConnId,
        inv_request: u64,
        mode: CancelMode,
        reason: Option<&str>,
    ) -> bool {
        let cancels = matches!(
            self.conns.get(&callee),
            Some(ConnState::Established(s)) if s.feature("callee", "call_canceling")
        );
        if cancels {
            let mut options = Dict::new().with("mode", mode.as_str());
            if let Some(r) = reason {
                options.insert("reason", r);
            }
            self.out.push_back(Action::Send(
                callee,
                Arc::new(Message::Interrupt {
                    request: inv_request,
                    options,
                }),
            ));
        }
        cancels
    }

    /// Tells the node serving remote call `call` (every node while `node` is not known) to
    /// cancel it in `mode`, the INTERRUPT carrying `reason`.
    fn send_remote_cancel(
        &mut self,
        call: u64,
        realm: String,
        node: Option<u64>,
        mode: CancelMode,
        reason: Option<&str>,
    ) {
        self.out
            .push_back(Action::RemoteCancel(Box::new(RemoteCancel {
                key: CallKey {
                    origin: self.origin,
                    call,
                },
                realm,
                node,
                mode,
                reason: reason.map(str::to_owned),
            })));
    }

    /// The CANCEL of a call that may be a remote one: see [`Router::cancel`]'s modes. `skip`
    /// and `killnowait` answer the caller at once; `kill` waits for the callee's node.
    pub(super) fn cancel_call_remote(&mut self, conn: ConnId, request: u64, options: &Dict) {
        let Some(&call) = self.remote_by_request.get(&(conn, request)) else {
            return; // already answered
        };
        let p = &self.remote_calls[&call];
        if p.interrupted {
            return;
        }
        // An unknown mode is not `kill` nor `skip`, as the local dealer reads it.
        let mode = match options.get_str("mode") {
            None => CancelMode::Kill,
            Some(m) => CancelMode::parse(m).unwrap_or(CancelMode::KillNoWait),
        };
        let (realm, node) = (p.realm.clone(), p.node);
        if mode == CancelMode::Kill {
            self.remote_calls
                .get_mut(&call)
                .expect("present")
                .interrupted = true;
        } else {
            self.take_remote(call);
            self.send(conn, Message::error(code::CALL, request, E::CANCELED));
        }
        self.send_remote_cancel(call, realm, node, mode, None);
    }

    /// A deadline passed that may be a remote call's: as for a local call, the caller gets
    /// ERROR `wamp.error.timeout` and the callee's node a cancel in mode `killnowait`.
    pub(super) fn time_out_remote(&mut self, caller: ConnId, request: u64, at: Instant) {
        let Some(&call) = self.remote_by_request.get(&(caller, request)) else {
            return;
        };
        if self.remote_calls[&call].deadline != Some(at) {
            return;
        }
        let p = self.take_remote(call).expect("present");
        self.send(caller, call_timed_out(request));
        self.send_remote_cancel(
            call,
            p.realm,
            p.node,
            CancelMode::KillNoWait,
            Some(E::TIMEOUT),
        );
    }

    /// A session left: the remote calls it made are canceled (`killnowait`), the remote
    /// calls it was serving fail for their callers (ERROR `wamp.error.canceled`).
    pub(super) fn leave_remote(&mut self, conn: ConnId, realm: &str) {
        let mut made: Vec<u64> = self
            .remote_calls
            .iter()
            .filter(|(_, p)| p.caller == conn)
            .map(|(call, _)| *call)
            .collect();
        made.sort_unstable();
        for call in made {
            let p = self.take_remote(call).expect("listed");
            self.send_remote_cancel(call, p.realm, p.node, CancelMode::KillNoWait, None);
        }
        let Some(r) = self.realms.get_mut(realm) else {
            return;
        };
        let dealer = &mut r.dealer;
        let mut served: Vec<(ConnId, u64)> = dealer
            .remote_invocations
            .keys()
            .filter(|(callee, _)| *callee == conn)
            .copied()
            .collect();
        served.sort_unstable();
        let keys: Vec<CallKey> = served
            .into_iter()
            .map(|k| {
                let inv = dealer.remote_invocations.remove(&k).expect("listed");
                dealer.remote_keys.remove(&inv.key);
                inv.key
            })
            .collect();
        for key in keys {
            let a = self.answer(
                key,
                Answer::Error {
                    error: E::CANCELED.to_owned(),
                    details: Dict::new(),
                    payload: Payload::Args(vec!["callee left the session".into()]),
                },
            );
            self.out.push_back(a);
        }
    }

    fn answer(&self, key: CallKey, answer: Answer) -> Action {
        Action::RemoteAnswer(Box::new(RemoteAnswer {
            key,
            node: self.origin,
            answer,
        }))
    }

    /// A call of another node's caller ([`Action::RemoteCall`] there): the local
    /// registration it matches (exact, then prefix, then wildcard, as for a local CALL) picks
    /// a callee by its `invoke` policy, which gets the INVOCATION — with the caller disclosed
    /// if the call or the registration asks for it, and `receive_progress` if the caller
    /// asked and the callee supports it. The caller's node is told
    /// [`Answer::Accepted`] at once, then every YIELD and ERROR of the callee as
    /// [`Action::RemoteAnswer`]s; if the callee leaves first, ERROR `wamp.error.canceled`.
    ///
    /// With no matching registration here, or no such realm, the answer is at once ERROR
    /// `wamp.error.no_such_procedure`. A call whose key is already in progress here is
    /// ignored (a duplicate delivery is never invoked twice). The call's `timeout` is not
    /// run here: the caller's node runs it and sends [`Router::cancel_remote`]. Drain
    /// [`Router::poll`] afterwards.
    pub fn invoke_remote(&mut self, call: RemoteCall) {
        let found = self.realms.get(&call.realm).and_then(|r| {
            if r.dealer.remote_keys.contains_key(&call.key) {
                return Some(None);
            }
            let reg = r.dealer.lookup(&call.procedure)?;
            Some(Some((reg.id, reg.policy, reg.disclose_caller)))
        });
        let (reg_id, policy, reg_disclose) = match found {
            Some(Some(reg)) => reg,
            Some(None) => return, // a duplicate
            None => {
                self.out.push_back(self.answer(
                    call.key,
                    Answer::Error {
                        error: E::NO_SUCH_PROCEDURE.to_owned(),
                        details: Dict::new(),
                        payload: Payload::Empty,
                    },
                ));
                return;
            }
        };
        let random = self.ids.next_u64();
        let dealer = &mut self.realms.get_mut(&call.realm).expect("found").dealer;
        let callee = dealer.get_mut(reg_id).expect("found").pick(random);
        let inv_request = dealer.next_invocation(callee);
        let mut details = Dict::new();
        if policy != MatchPolicy::Exact {
            details.insert("procedure", call.procedure.as_str());
        }
        if reg_disclose || call.disclose_me {
            details.insert("caller", call.caller.session);
            details.insert("caller_authid", call.caller.authid.as_str());
            details.insert("caller_authrole", call.caller.authrole.as_str());
        }
        let progress = call.receive_progress
            && matches!(
                self.conns.get(&callee),
                Some(ConnState::Established(s)) if s.feature("callee", "progressive_call_results")
            );
        if progress {
            details.insert("receive_progress", true);
        }
        copy_passthru(&call.passthru, &mut details);
        let dealer = &mut self.realms.get_mut(&call.realm).expect("found").dealer;
        dealer.remote_keys.insert(call.key, (callee, inv_request));
        dealer.remote_invocations.insert(
            (callee, inv_request),
            RemoteInvocation {
                key: call.key,
                progress,
                interrupted: false,
            },
        );
        self.stats.calls += 1;
        self.stats.remote_invocations += 1;
        self.out.push_back(self.answer(call.key, Answer::Accepted));
        self.send(
            callee,
            Message::Invocation {
                request: inv_request,
                registration: reg_id,
                details,
                payload: call.payload,
            },
        );
    }

    /// The caller's node gives up on a call served here ([`Action::RemoteCancel`] there), as
    /// a local CANCEL would: `skip` forgets it (the callee's answer is dropped); `killnowait`
    /// interrupts the callee and forgets it; `kill` interrupts the callee, whose answer goes
    /// back as usual. A callee that did not announce `call_canceling` is never interrupted:
    /// its call is forgotten, and for `kill` the caller's node is answered at once with
    /// ERROR `wamp.error.canceled`. Unknown calls are ignored. Drain [`Router::poll`]
    /// afterwards.
    pub fn cancel_remote(&mut self, cancel: RemoteCancel) {
        let Some(realm) = self.realms.get_mut(&cancel.realm) else {
            return;
        };
        let dealer = &mut realm.dealer;
        let Some(&(callee, inv_request)) = dealer.remote_keys.get(&cancel.key) else {
            return;
        };
        let inv = dealer
            .remote_invocations
            .get_mut(&(callee, inv_request))
            .expect("indexed");
        if inv.interrupted {
            return;
        }
        let cancels = matches!(
            self.conns.get(&callee),
            Some(ConnState::Established(s)) if s.feature("callee", "call_canceling")
        );
        if cancel.mode == CancelMode::Kill && cancels {
            inv.interrupted = true;
            self.interrupt(
                callee,
                inv_request,
                CancelMode::Kill,
                cancel.reason.as_deref(),
            );
            return;
        }
        dealer.remote_invocations.remove(&(callee, inv_request));
        dealer.remote_keys.remove(&cancel.key);
        match cancel.mode {
            CancelMode::KillNoWait => {
                self.interrupt(
                    callee,
                    inv_request,
                    CancelMode::KillNoWait,
                    cancel.reason.as_deref(),
                );
            }
            CancelMode::Kill => {
                // The caller's node waits for an answer the callee cannot give.
                let a = self.answer(
                    cancel.key,
                    Answer::Error {
                        error: E::CANCELED.to_owned(),
                        details: Dict::new(),
                        payload: Payload::Empty,
                    },
                );
                self.out.push_back(a);
            }
            CancelMode::Skip => {}
        }
    }

    /// A YIELD that may answer a remote call: it goes back to the caller's node.
    pub(super) fn yield_remote(
        &mut self,
        conn: ConnId,
        realm: &str,
        request: u64,
        options: &Dict,
        payload: Payload,
    ) {
        let dealer = &mut self.realms.get_mut(realm).expect("the session's").dealer;
        // Unknown: canceled (skip, killnowait), or its caller's node is gone.
        let Some(inv) = dealer.remote_invocations.get(&(conn, request)).cloned() else {
            return;
        };
        let progress = options.get_bool("progress") == Some(true);
        if progress && !inv.progress {
            return; // the caller did not ask for progressive results
        }
        if !progress {
            dealer.remote_invocations.remove(&(conn, request));
            dealer.remote_keys.remove(&inv.key);
        }
        let mut details = Dict::new();
        copy_passthru(options, &mut details);
        let a = self.answer(
            inv.key,
            Answer::Result {
                progress,
                details,
                payload,
            },
        );
        self.out.push_back(a);
    }

    /// An ERROR to an INVOCATION that may be a remote call's: it goes back unchanged.
    pub(super) fn invocation_error_remote(
        &mut self,
        conn: ConnId,
        realm: &str,
        request: u64,
        details: Dict,
        error: String,
        payload: Payload,
    ) {
        let dealer = &mut self.realms.get_mut(realm).expect("the session's").dealer;
        let Some(inv) = dealer.remote_invocations.remove(&(conn, request)) else {
            return;
        };
        dealer.remote_keys.remove(&inv.key);
        let a = self.answer(
            inv.key,
            Answer::Error {
                error,
                details,
                payload,
            },
        );
        self.out.push_back(a);
    }
}
