//! The broker's bookkeeping: subscriptions and who holds them. Routing decisions (filters,
//! details, acknowledgements) are made by the router, which also knows the sessions.

use std::collections::{BTreeSet, HashMap};

use super::ConnId;
use crate::uri::{self, MatchPolicy};

/// One subscription: a (pattern, policy) pair, shared by every session that subscribed to it
/// (WAMP spec: "the Broker MUST return the same Subscription ID" for the same topic and match
/// policy, whoever subscribes).
#[derive(Debug)]
pub(crate) struct Subscription {
    pub id: u64,
    pub uri: String,
    pub policy: MatchPolicy,
    pub subscribers: BTreeSet<ConnId>,
}

#[derive(Debug, Default)]
pub(crate) struct Broker {
    subs: HashMap<u64, Subscription>,
    by_pattern: HashMap<(MatchPolicy, String), u64>,
    /// Ids of prefix and wildcard subscriptions, scanned on every publication.
    patterns: BTreeSet<u64>,
    by_session: HashMap<ConnId, BTreeSet<u64>>,
}

impl Broker {
    /// Adds `conn` to the subscription for (`policy`, `uri`), creating it with `new_id()` if
    /// needed. Returns its id, and whether `conn` was added (false: it already was there).
    pub fn subscribe(
        &mut self,
        conn: ConnId,
        policy: MatchPolicy,
        uri: &str,
        new_id: impl FnOnce() -> u64,
    ) -> (u64, bool) {
        let key = (policy, uri.to_owned());
        let id = match self.by_pattern.get(&key) {
            Some(&id) => id,
            None => {
                let id = new_id();
                self.by_pattern.insert(key, id);
                if policy != MatchPolicy::Exact {
                    self.patterns.insert(id);
                }
                self.subs.insert(
                    id,
                    Subscription {
                        id,
                        uri: uri.to_owned(),
                        policy,
                        subscribers: BTreeSet::new(),
                    },
                );
                id
            }
        };
        let added = self
            .subs
            .get_mut(&id)
            .expect("indexed")
            .subscribers
            .insert(conn);
        self.by_session.entry(conn).or_default().insert(id);
        (id, added)
    }

    /// Removes `conn` from subscription `id`: `None` if it was not subscribed, else whether
    /// the subscription went with its last subscriber.
    pub fn unsubscribe(&mut self, conn: ConnId, id: u64) -> Option<bool> {
        let sub = self.subs.get_mut(&id)?;
        if !sub.subscribers.remove(&conn) {
            return None;
        }
        if let Some(set) = self.by_session.get_mut(&conn) {
            set.remove(&id);
        }
        if sub.subscribers.is_empty() {
            let sub = self.subs.remove(&id).expect("present");
            self.by_pattern.remove(&(sub.policy, sub.uri));
            self.patterns.remove(&id);
            return Some(true);
        }
        Some(false)
    }

    /// Drops every subscription of a session that left: (subscription, whether it went).
    pub fn remove_session(&mut self, conn: ConnId) -> Vec<(u64, bool)> {
        let ids = self.by_session.remove(&conn).unwrap_or_default();
        ids.into_iter()
            .filter_map(|id| Some((id, self.unsubscribe(conn, id)?)))
            .collect()
    }

    /// The subscriptions a publication to `topic` reaches: the exact one first, then patterns
    /// in the order they were created.
    pub fn matching(&self, topic: &str) -> Vec<&Subscription> {
        let mut out = Vec::new();
        if let Some(id) = self.by_pattern.get(&(MatchPolicy::Exact, topic.to_owned())) {
            out.push(&self.subs[id]);
        }
        for id in &self.patterns {
            let sub = &self.subs[id];
            if uri::matches(&sub.uri, sub.policy, topic) {
                out.push(sub);
            }
        }
        out
    }

    pub fn get(&self, id: u64) -> Option<&Subscription> {
        self.subs.get(&id)
    }

    pub fn find(&self, policy: MatchPolicy, uri: &str) -> Option<&Subscription> {
        self.by_pattern
            .get(&(policy, uri.to_owned()))
            .map(|id| &self.subs[id])
    }

    /// Every subscription, oldest first.
    pub fn all(&self) -> Vec<&Subscription> {
        let mut v: Vec<_> = self.subs.values().collect();
        v.sort_by_key(|s| s.id);
        v
    }
}
