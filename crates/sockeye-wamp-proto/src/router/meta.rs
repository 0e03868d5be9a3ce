//! The meta API (WAMP spec, "Session Meta API", "Registration Meta API", "Subscription Meta
//! API"): procedures under `wamp.` answered by the router itself, and the `wamp.session.on_join`
//! / `on_leave` events. Everything is scoped to the caller's realm.

use std::sync::Arc;

use super::{deliver, error_uri as E, ConnId, ConnState, Router, Session};
use crate::message::{Message, Payload};
use crate::uri::MatchPolicy;
use crate::value::{Dict, Value};

impl Router {
    /// `wamp.session.kill(session)`, `kill_by_authid(authid)` and `kill_by_authrole(authrole)`,
    /// with the optional keyword arguments `reason` (a URI, default `wamp.close.killed`) and
    /// `message`: the sessions named (in the caller's realm, never the caller itself) get
    /// GOODBYE and their transports are closed. `kill` answers nothing, `kill_by_authid` the
    /// list of sessions killed, `kill_by_authrole` their number. `None` if `procedure` is not
    /// one of these.
    pub(super) fn meta_kill(
        &mut self,
        caller: ConnId,
        session: &Session,
        procedure: &str,
        payload: &Payload,
    ) -> Option<Result<Option<Value>, &'static str>> {
        if !matches!(
            procedure,
            "wamp.session.kill" | "wamp.session.kill_by_authid" | "wamp.session.kill_by_authrole"
        ) {
            return None;
        }
        let kwargs = payload.kwargs();
        let reason = kwargs
            .and_then(|k| k.get_str("reason"))
            .unwrap_or(E::CLOSE_KILLED)
            .to_owned();
        if !crate::uri::is_valid(&reason, self.config.uri_check) {
            return Some(Err(E::INVALID_URI));
        }
        let message = kwargs
            .and_then(|k| k.get_str("message"))
            .unwrap_or("")
            .to_owned();
        let first = payload.args().first();
        let realm = &self.realms[&session.realm];
        let in_realm = |pick: &dyn Fn(&Session) -> bool| -> Vec<(ConnId, u64)> {
            realm
                .sessions
                .iter()
                .filter(|c| **c != caller)
                .filter_map(|c| match self.conns.get(c) {
                    Some(ConnState::Established(s)) if pick(s) => Some((*c, s.id)),
                    _ => None,
                })
                .collect()
        };
        let (victims, answer) = match procedure {
            "wamp.session.kill" => {
                let Some(id) = first.and_then(Value::as_u64) else {
                    return Some(Err(E::INVALID_ARGUMENT));
                };
                if id == session.id {
                    return Some(Err(E::INVALID_ARGUMENT)); // leaving is done with GOODBYE
                }
                let victims = in_realm(&|s| s.id == id);
                if victims.is_empty() {
                    return Some(Err(E::NO_SUCH_SESSION));
                }
                (victims, None)
            }
            _ => {
                let Some(name) = first.and_then(Value::as_str) else {
                    return Some(Err(E::INVALID_ARGUMENT));
                };
                let by_authid = procedure.ends_with("authid");
                let victims = in_realm(&|s| {
                    name == if by_authid {
                        s.authid.as_str()
                    } else {
                        s.authrole.as_str()
                    }
                });
                let answer = if by_authid {
                    Value::List(victims.iter().map(|(_, id)| Value::from(*id)).collect())
                } else {
                    Value::from(victims.len() as u64)
                };
                (victims, Some(answer))
            }
        };
        for (conn, _) in victims {
            self.kick(conn, &reason, &message);
        }
        Some(Ok(answer))
    }

    /// Answers a meta procedure, or `None` if `procedure` is not one.
    pub(super) fn meta_call(
        &mut self,
        session: &Session,
        procedure: &str,
        payload: &Payload,
    ) -> Option<Result<Value, &'static str>> {
        let args = payload.args();
        let realm = &self.realms[&session.realm];
        let id_arg = || {
            args.first()
                .and_then(Value::as_u64)
                .ok_or(E::INVALID_ARGUMENT)
        };
        let uri_arg = || {
            args.first()
                .and_then(Value::as_str)
                .ok_or(E::INVALID_ARGUMENT)
        };
        let policy_arg = || {
            args.get(1)
                .and_then(Value::as_dict)
                .and_then(|o| o.get_str("match"))
                .map_or(Some(MatchPolicy::Exact), MatchPolicy::parse)
                .ok_or(E::INVALID_ARGUMENT)
        };
        // `wamp.session.count` / `list` take an optional list of authroles to filter by.
        let sessions = || -> Vec<&Session> {
            let roles: Option<Vec<&str>> = args
                .first()
                .and_then(Value::as_list)
                .map(|l| l.iter().filter_map(Value::as_str).collect());
            realm
                .sessions
                .iter()
                .filter_map(|c| match self.conns.get(c) {
                    Some(ConnState::Established(s)) => Some(&**s),
                    _ => None,
                })
                .filter(|s| {
                    roles
                        .as_ref()
                        .is_none_or(|r| r.contains(&s.authrole.as_str()))
                })
                .collect()
        };
        let ids = |v: Vec<u64>| Value::List(v.into_iter().map(Value::from).collect());
        let by_policy = |items: Vec<(u64, MatchPolicy)>| {
            let pick = |p: MatchPolicy| {
                ids(items
                    .iter()
                    .filter(|(_, q)| *q == p)
                    .map(|(id, _)| *id)
                    .collect())
            };
            Value::Dict(
                Dict::new()
                    .with("exact", pick(MatchPolicy::Exact))
                    .with("prefix", pick(MatchPolicy::Prefix))
                    .with("wildcard", pick(MatchPolicy::Wildcard)),
            )
        };
        let session_ids = |conns: Vec<super::ConnId>| {
            ids(conns
                .into_iter()
                .filter_map(|c| match self.conns.get(&c) {
                    Some(ConnState::Established(s)) => Some(s.id),
                    _ => None,
                })
                .collect())
        };
        let broker = &realm.broker;
        let dealer = &realm.dealer;
        Some(match procedure {
            "wamp.session.count" => Ok(Value::from(sessions().len() as u64)),
            "wamp.session.list" => Ok(ids(sessions().iter().map(|s| s.id).collect())),
            "wamp.session.get" => id_arg().and_then(|id| {
                sessions()
                    .into_iter()
                    .find(|s| s.id == id)
                    .map(|s| Value::Dict(s.info()))
                    .ok_or(E::NO_SUCH_SESSION)
            }),
            "wamp.subscription.list" => Ok(by_policy(
                broker.all().iter().map(|s| (s.id, s.policy)).collect(),
            )),
            "wamp.subscription.lookup" => uri_arg().and_then(|uri| {
                Ok(broker
                    .find(policy_arg()?, uri)
                    .map_or(Value::Null, |s| s.id.into()))
            }),
            "wamp.subscription.match" => uri_arg().map(|uri| {
                let m: Vec<u64> = broker.matching(uri).iter().map(|s| s.id).collect();
                if m.is_empty() {
                    Value::Null
                } else {
                    ids(m)
                }
            }),
            "wamp.subscription.get" => id_arg().and_then(|id| {
                broker
                    .get(id)
                    .map(|s| {
                        Value::Dict(
                            Dict::new()
                                .with("id", s.id)
                                .with("uri", s.uri.as_str())
                                .with("match", s.policy.as_str()),
                        )
                    })
                    .ok_or(E::NO_SUCH_SUBSCRIPTION)
            }),
            "wamp.subscription.list_subscribers" | "wamp.subscription.count_subscribers" => {
                id_arg().and_then(|id| {
                    let sub = broker.get(id).ok_or(E::NO_SUCH_SUBSCRIPTION)?;
                    let list = session_ids(sub.subscribers.iter().copied().collect());
                    Ok(match procedure.ends_with("count_subscribers") {
                        true => Value::from(list.as_list().map_or(0, <[Value]>::len) as u64),
                        false => list,
                    })
                })
            }
            "wamp.registration.list" => Ok(by_policy(
                dealer.all().iter().map(|r| (r.id, r.policy)).collect(),
            )),
            "wamp.registration.lookup" => uri_arg().and_then(|uri| {
                Ok(dealer
                    .find(policy_arg()?, uri)
                    .map_or(Value::Null, |r| r.id.into()))
            }),
            "wamp.registration.match" => {
                uri_arg().map(|uri| dealer.lookup(uri).map_or(Value::Null, |r| r.id.into()))
            }
            "wamp.registration.get" => id_arg().and_then(|id| {
                dealer
                    .get(id)
                    .map(|r| {
                        Value::Dict(
                            Dict::new()
                                .with("id", r.id)
                                .with("uri", r.uri.as_str())
                                .with("match", r.policy.as_str())
                                .with("invoke", r.invoke.as_str()),
                        )
                    })
                    .ok_or(E::NO_SUCH_REGISTRATION)
            }),
            "wamp.registration.list_callees" | "wamp.registration.count_callees" => id_arg()
                .and_then(|id| {
                    let reg = dealer.get(id).ok_or(E::NO_SUCH_REGISTRATION)?;
                    let list = session_ids(reg.callees.clone());
                    Ok(match procedure.ends_with("count_callees") {
                        true => Value::from(list.as_list().map_or(0, <[Value]>::len) as u64),
                        false => list,
                    })
                }),
            _ => return None,
        })
    }

    /// Publishes a meta event from the router to a realm's subscribers.
    pub(super) fn publish_meta(&mut self, realm: &str, topic: &str, args: Vec<Value>) {
        let Some(r) = self.realms.get(realm) else {
            return;
        };
        let subs = r.broker.matching(topic);
        if subs.is_empty() {
            return;
        }
        let publication = self.ids.global_id();
        let mut sent = 0;
        for sub in subs {
            let mut details = Dict::new();
            if sub.policy != MatchPolicy::Exact {
                details.insert("topic", topic);
            }
            let event = Arc::new(Message::Event {
                subscription: sub.id,
                publication,
                details,
                payload: Payload::Args(args.clone()),
            });
            sent += sub.subscribers.len() as u64;
            deliver(
                &mut self.out,
                sub.subscribers.iter().copied().collect(),
                event,
            );
        }
        self.stats.events_sent += sent;
    }
}
