//! Publish and subscribe: the broker's tables (subscriptions and who holds them, retained
//! events) and the handlers of SUBSCRIBE, UNSUBSCRIBE and PUBLISH.

use std::collections::{BTreeSet, HashMap};

use std::sync::Arc;

use super::{copy_passthru, deliver, error_uri as E, Action, ConnId, ConnState, Router, Session};
use crate::auth::{Operation, Verdict};
use crate::cluster::{interest_subject, Audience, ClusterEvent, Publisher};
use crate::message::{code, Message, Payload};
use crate::uri::{self, MatchPolicy};
use crate::value::{Dict, Value};

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

    /// Removes `conn` from subscription `id`: `None` if it was not subscribed, else the
    /// subscription's (policy, pattern) if it went with its last subscriber.
    pub fn unsubscribe(&mut self, conn: ConnId, id: u64) -> Option<Option<(MatchPolicy, String)>> {
        let sub = self.subs.get_mut(&id)?;
        if !sub.subscribers.remove(&conn) {
            return None;
        }
        if let Some(set) = self.by_session.get_mut(&conn) {
            set.remove(&id);
        }
        if sub.subscribers.is_empty() {
            let sub = self.subs.remove(&id).expect("present");
            self.by_pattern.remove(&(sub.policy, sub.uri.clone()));
            self.patterns.remove(&id);
            return Some(Some((sub.policy, sub.uri)));
        }
        Some(None)
    }

    /// Drops every subscription of a session that left: (subscription, its (policy, pattern)
    /// if it went).
    pub fn remove_session(&mut self, conn: ConnId) -> Vec<(u64, Option<(MatchPolicy, String)>)> {
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

#[derive(Debug)]
pub(super) struct Retained {
    /// Order of arrival within the realm.
    pub(super) seq: u64,
    pub(super) publication: u64,
    pub(super) details: Dict,
    pub(super) payload: Payload,
    pub(super) size: usize,
    /// With [`ClusterConfig::shared_retention`](crate::ClusterConfig): where the cluster's
    /// store put it (see [`Router::offer_retained`]); `None` for a publication of this node
    /// whose storing has not been answered yet, which is newer than every offer until then
    /// answered. Without it, always `Some(0)`.
    pub(super) revision: Option<u64>,
    /// The newest offer that came while `revision` was `None`, with its revision: kept if the
    /// answer shows it newer. At most one per topic.
    parked: Option<Box<(u64, ClusterEvent)>>,
}

/// A realm's retained events (WAMP spec, "Event Retention"): the last event published with
/// `retain: true` on each topic, within the realm's limits.
#[derive(Debug, Default)]
pub(super) struct RetainedEvents {
    pub(super) events: HashMap<String, Retained>,
    /// Their sizes, summed.
    bytes: usize,
    /// Counts retained events, to tell the oldest.
    seq: u64,
}

impl RetainedEvents {
    /// Keeps `event` as the retained event of its topic, then forgets the oldest retained
    /// events until the realm is within `max_events` and `max_bytes`. An event larger than
    /// `max_bytes` is not kept, and the topic's older one is forgotten.
    pub(super) fn retain(
        &mut self,
        event: &ClusterEvent,
        revision: Option<u64>,
        max_events: usize,
        max_bytes: usize,
    ) {
        let topic = event.topic.clone();
        if let Some(old) = self.events.remove(&topic) {
            self.bytes -= old.size;
        }
        let details = event.details();
        let size = topic.len() + details.size_hint() + event.payload.size_hint();
        if size > max_bytes || max_events == 0 {
            return;
        }
        self.seq += 1;
        self.bytes += size;
        self.events.insert(
            topic,
            Retained {
                seq: self.seq,
                publication: event.publication,
                details,
                payload: event.payload.clone(),
                size,
                revision,
                parked: None,
            },
        );
        while self.events.len() > max_events || self.bytes > max_bytes {
            let oldest = self
                .events
                .iter()
                .min_by_key(|(_, r)| r.seq)
                .map(|(t, _)| t.clone())
                .expect("over a limit means not empty");
            let gone = self.events.remove(&oldest).expect("just found");
            self.bytes -= gone.size;
        }
    }

    /// An event the cluster's store has at `revision` (see [`Router::offer_retained`]):
    /// whether it was taken (kept, parked, or its topic's event confirmed) rather than found
    /// older than what the topic has.
    fn offer(
        &mut self,
        event: ClusterEvent,
        revision: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> bool {
        match self.events.get_mut(&event.topic) {
            Some(current) if current.publication == event.publication => {
                let topic = event.topic.clone();
                self.stored(
                    &topic,
                    event.publication,
                    Some(revision),
                    max_events,
                    max_bytes,
                );
                true
            }
            Some(current) if current.revision.is_none() => {
                // This node's own publication is newer than everything stored before it, and
                // an offer stored after it can come before its answer: which one is newer
                // is known once the answer comes.
                if current.parked.as_ref().is_some_and(|p| p.0 >= revision) {
                    return false;
                }
                current.parked = Some(Box::new((revision, event)));
                true
            }
            Some(current) if current.revision >= Some(revision) => false,
            _ => {
                self.retain(&event, Some(revision), max_events, max_bytes);
                true
            }
        }
    }

    /// The cluster's store answered for `publication` on `topic`: kept at `revision`, or not
    /// kept (`None`), when any offer is newer.
    fn stored(
        &mut self,
        topic: &str,
        publication: u64,
        revision: Option<u64>,
        max_events: usize,
        max_bytes: usize,
    ) {
        let Some(current) = self.events.get_mut(topic) else {
            return;
        };
        if current.publication != publication {
            return;
        }
        let revision = revision.unwrap_or(0);
        if current.revision.is_some_and(|r| r >= revision) {
            return;
        }
        current.revision = Some(revision);
        if let Some(parked) = current.parked.take() {
            let (parked_revision, parked) = *parked;
            if parked_revision > revision {
                self.retain(&parked, Some(parked_revision), max_events, max_bytes);
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

impl Router {
    pub(super) fn subscribe(
        &mut self,
        conn: ConnId,
        session: &Session,
        request: u64,
        options: &Dict,
        topic: &str,
    ) {
        let policy = options
            .get_str("match")
            .and_then(MatchPolicy::parse)
            .unwrap_or(MatchPolicy::Exact);
        if !uri::is_valid_pattern(topic, policy, self.config.uri_check) {
            self.send(
                conn,
                Message::error(code::SUBSCRIBE, request, E::INVALID_URI),
            );
            return;
        }
        if self.authorize(session, Operation::Subscribe, topic) == Verdict::Denied {
            self.send(
                conn,
                Message::error(code::SUBSCRIBE, request, E::NOT_AUTHORIZED),
            );
            return;
        }
        let candidate = self.next_router_id + 1;
        let realm = self.realm_mut(session);
        let (id, added) = realm.broker.subscribe(conn, policy, topic, || candidate);
        let created = id == candidate;
        if created {
            self.next_router_id = candidate;
            self.interest(&session.realm, policy, topic, true);
        }
        self.send(
            conn,
            Message::Subscribed {
                request,
                subscription: id,
            },
        );
        let realm = session.realm.as_str();
        if created {
            let info = Dict::new()
                .with("id", id)
                .with("uri", topic)
                .with("match", policy.as_str());
            self.publish_meta(
                realm,
                "wamp.subscription.on_create",
                vec![session.id.into(), Value::Dict(info)],
            );
        }
        if added {
            self.publish_meta(
                realm,
                "wamp.subscription.on_subscribe",
                vec![session.id.into(), id.into()],
            );
        }
        if options.get_bool("get_retained") == Some(true) {
            let realm = &self.realms[&session.realm];
            let mut retained: Vec<_> = realm
                .retained
                .events
                .iter()
                .filter(|(t, _)| uri::matches(topic, policy, t))
                .map(|(t, r)| {
                    let mut details = r.details.clone().with("retained", true);
                    if policy != MatchPolicy::Exact {
                        details.insert("topic", t.as_str());
                    }
                    (r.seq, r.publication, details, r.payload.clone())
                })
                .collect();
            // In the order they were published.
            retained.sort_by_key(|(seq, ..)| *seq);
            for (_, publication, details, payload) in retained {
                self.send(
                    conn,
                    Message::Event {
                        subscription: id,
                        publication,
                        details,
                        payload,
                    },
                );
            }
        }
    }

    pub(super) fn unsubscribe(
        &mut self,
        conn: ConnId,
        session: &Session,
        request: u64,
        subscription: u64,
    ) {
        if let Some(gone) = self
            .realm_mut(session)
            .broker
            .unsubscribe(conn, subscription)
        {
            self.send(conn, Message::Unsubscribed { request });
            self.subscription_gone(session, subscription, gone);
        } else {
            self.send(
                conn,
                Message::error(code::UNSUBSCRIBE, request, E::NO_SUCH_SUBSCRIPTION),
            );
        }
    }

    pub(super) fn publish(
        &mut self,
        conn: ConnId,
        session: &Session,
        request: u64,
        options: Dict,
        topic: String,
        payload: Payload,
    ) {
        let acknowledge = options.get_bool("acknowledge").unwrap_or(false);
        if !uri::is_valid(&topic, self.config.uri_check) {
            if acknowledge {
                self.send(conn, Message::error(code::PUBLISH, request, E::INVALID_URI));
            }
            return;
        }
        // The meta events (`wamp.session.on_join`, `wamp.subscription.on_create`, ...) are the
        // router's word: a session that could publish them could lie to every meta subscriber.
        let reserved = topic.starts_with("wamp.") && !session.trusted;
        let verdict = if reserved {
            Verdict::Denied
        } else {
            self.authorize(session, Operation::Publish, &topic)
        };
        let disclose = match verdict {
            Verdict::Denied => {
                if acknowledge {
                    self.send(
                        conn,
                        Message::error(code::PUBLISH, request, E::NOT_AUTHORIZED),
                    );
                }
                return;
            }
            Verdict::Allowed { disclose } => disclose,
        };
        self.stats.publications += 1;
        let publication = self.ids.global_id();

        // Who may receive it (WAMP spec, "Subscriber Black- and Whitelisting", "Publisher
        // Exclusion"): exclude_me defaults to true.
        let exclude_me = options.get_bool("exclude_me").unwrap_or(true);
        let audience = Audience::from_options(&options);
        let publisher =
            (disclose || options.get_bool("disclose_me") == Some(true)).then(|| Publisher {
                session: session.id,
                authid: session.authid.clone(),
                authrole: session.authrole.clone(),
            });
        let mut passthru = Dict::new();
        copy_passthru(&options, &mut passthru);
        let retain = options.get_bool("retain") == Some(true);
        let event = ClusterEvent {
            origin: self.origin,
            realm: session.realm.clone(),
            topic,
            publication,
            publisher,
            passthru,
            audience,
            retain,
            payload,
        };
        let skip = exclude_me.then_some(conn);
        self.dispatch_event(&event, skip);
        if self.config.cluster.is_some() {
            // exclude_me is not forwarded: the publisher is on this node, so on every other
            // node it excludes nobody.
            self.stats.forwarded += 1;
            self.out.push_back(Action::Forward(Box::new(event)));
        }
        if acknowledge {
            self.send(
                conn,
                Message::Published {
                    request,
                    publication,
                },
            );
        }
    }

    /// Meta events after `session` left subscription `id` (`gone`: it was the last one, and
    /// the subscription with this policy and pattern is deleted).
    pub(super) fn subscription_gone(
        &mut self,
        session: &Session,
        id: u64,
        gone: Option<(MatchPolicy, String)>,
    ) {
        let deleted = gone.is_some();
        if let Some((policy, uri)) = gone {
            self.interest(&session.realm, policy, &uri, false);
        }
        let args = vec![Value::from(session.id), Value::from(id)];
        self.publish_meta(
            &session.realm,
            "wamp.subscription.on_unsubscribe",
            args.clone(),
        );
        if deleted {
            self.publish_meta(&session.realm, "wamp.subscription.on_delete", args);
        }
    }
}

impl Router {
    /// Delivers a publication of another node (its [`Action::Forward`]) to this node's
    /// subscribers, as if it had been published here: exact, prefix and wildcard
    /// subscriptions, the black- and whitelists applied, the publisher disclosed as the
    /// origin disclosed it, the same publication id; and keeps it as the topic's retained
    /// event if it was published with `retain`. Never emits [`Action::Forward`] (a forwarded
    /// event goes no further), so nodes cannot loop.
    ///
    /// Dropped (and counted in [`RouterStats::remote_dropped`](super::RouterStats)) if its
    /// realm does not exist here (a realm is never created for it: a realm HELLOs create
    /// exists only while it has sessions, and has then no subscribers), or if this router
    /// emitted it itself. Drain [`Router::poll`] afterwards.
    pub fn deliver_remote(&mut self, event: ClusterEvent) {
        if (self.config.cluster.is_some() && event.origin == self.origin)
            || !self.realms.contains_key(&event.realm)
        {
            self.stats.remote_dropped += 1;
            return;
        }
        self.stats.remote_publications += 1;
        self.dispatch_event(&event, None);
    }

    /// With [`ClusterConfig::shared_retention`](crate::ClusterConfig): a retained event the
    /// cluster's store keeps, at `revision` (higher for every later store). It becomes the
    /// retained event of its topic unless the topic has a newer one: one of a higher revision,
    /// or a publication of this node whose storing has not been answered yet
    /// ([`Router::retained_stored`]) — then the offer waits for that answer, which tells
    /// which is newer. It is never sent to the current subscribers: it only serves
    /// `get_retained`.
    ///
    /// For a realm that does not exist here yet (and `auto_create_realms`), it is kept for the
    /// realm until a HELLO creates it, within the same limits as in a realm
    /// (`max_retained_events`, `max_retained_bytes`) and for at most `max_auto_realms` realms;
    /// offers for more realms are dropped. A realm a HELLO created gives its retained events
    /// back to that keeping when its last session leaves.
    ///
    /// Offers taken are counted in [`RouterStats::retained_offers`](super::RouterStats), those
    /// found older or without room in `retained_offers_dropped`. Emits nothing.
    pub fn offer_retained(&mut self, event: ClusterEvent, revision: u64) {
        let (max_events, max_bytes) = (
            self.config.max_retained_events,
            self.config.max_retained_bytes,
        );
        let realm_name = event.realm.clone();
        let taken = match self.realms.get_mut(&event.realm) {
            Some(realm) => realm.retained.offer(event, revision, max_events, max_bytes),
            None if self.config.auto_create_realms
                && (self.pending_retained.contains_key(&event.realm)
                    || self.pending_retained.len() < self.config.max_auto_realms) =>
            {
                let pending = self
                    .pending_retained
                    .entry(event.realm.clone())
                    .or_default();
                let taken = pending.offer(event, revision, max_events, max_bytes);
                if pending.is_empty() {
                    self.pending_retained.remove(&realm_name);
                }
                taken
            }
            None => false,
        };
        if taken {
            self.stats.retained_offers += 1;
        } else {
            self.stats.retained_offers_dropped += 1;
        }
    }

    /// With [`ClusterConfig::shared_retention`](crate::ClusterConfig): the cluster's store
    /// answered for a retained publication of this node (its [`Action::Forward`]): kept at
    /// `revision` (`Some`), or not kept (`None`: the topic's event here then yields to any
    /// offer). Until this answer (or the offer of the same publication) the publication stays
    /// the topic's retained event here whatever is offered. Emits nothing.
    pub fn retained_stored(
        &mut self,
        realm: &str,
        topic: &str,
        publication: u64,
        revision: Option<u64>,
    ) {
        let (max_events, max_bytes) = (
            self.config.max_retained_events,
            self.config.max_retained_bytes,
        );
        let store = match self.realms.get_mut(realm) {
            Some(realm) => &mut realm.retained,
            None => match self.pending_retained.get_mut(realm) {
                Some(pending) => pending,
                None => return,
            },
        };
        store.stored(topic, publication, revision, max_events, max_bytes);
    }

    /// Keeps a freed realm's retained events for when it is created again, if there is room
    /// (as for offers).
    pub(super) fn keep_pending(&mut self, realm: &str, retained: RetainedEvents) {
        if self.config.auto_create_realms
            && self.pending_retained.len() < self.config.max_auto_realms
        {
            self.pending_retained.insert(realm.to_owned(), retained);
        }
    }

    /// With shared retention, whether this router keeps the retained events of other nodes'
    /// publications only as [`Router::offer_retained`] gives them.
    pub(super) fn shared_retention(&self) -> bool {
        self.config
            .cluster
            .as_ref()
            .is_some_and(|c| c.shared_retention)
    }

    /// Sends the EVENTs of a publication to the subscribers in its realm (but `skip`, the
    /// publisher when `exclude_me`), and retains it if asked to.
    fn dispatch_event(&mut self, event: &ClusterEvent, skip: Option<ConnId>) {
        let base = event.details();
        let topic = event.topic.as_str();
        let realm = &self.realms[&event.realm];
        let mut sent = 0;
        for sub in realm.broker.matching(topic) {
            let mut details = base.clone();
            if sub.policy != MatchPolicy::Exact {
                // Pattern subscribers need the concrete topic.
                details.insert("topic", topic);
            }
            let msg = Arc::new(Message::Event {
                subscription: sub.id,
                publication: event.publication,
                details,
                payload: event.payload.clone(),
            });
            let to: Vec<ConnId> = sub
                .subscribers
                .iter()
                .copied()
                .filter(|&to| Some(to) != skip)
                .filter(|to| {
                    matches!(self.conns.get(to), Some(ConnState::Established(peer)) if event.audience.admits(peer.id, &peer.authid, &peer.authrole))
                })
                .collect();
            sent += to.len() as u64;
            deliver(&mut self.out, to, msg);
        }
        self.stats.events_sent += sent;
        let own = event.origin == self.origin;
        let shared = self.shared_retention();
        // With shared retention another node's publication is kept as the store offers it,
        // in the store's order; this node's own is kept at once, so that its publisher and
        // subscribers here see it as on a single node, and waits for the store's answer.
        if event.retain && (own || !shared) {
            // Kept for later subscribers asking for `get_retained`; black- and whitelists
            // applied to this publication only.
            let (max_events, max_bytes) = (
                self.config.max_retained_events,
                self.config.max_retained_bytes,
            );
            let revision = if shared { None } else { Some(0) };
            self.realms
                .get_mut(&event.realm)
                .expect("checked by the caller")
                .retained
                .retain(event, revision, max_events, max_bytes);
        }
    }

    /// Cluster mode: counts one more (`on`) or one fewer subscription needing the interest
    /// subject of (`policy`, `uri`) in `realm`, and emits [`Action::Interest`] when the count
    /// leaves or reaches zero.
    fn interest(&mut self, realm: &str, policy: MatchPolicy, uri: &str, on: bool) {
        let Some(cluster) = &self.config.cluster else {
            return;
        };
        let subject = interest_subject(&cluster.subject_prefix, realm, policy, uri);
        let changed = if on {
            let n = &mut self
                .interests
                .entry(subject.clone())
                .or_insert_with(|| (realm.to_owned(), 0))
                .1;
            *n += 1;
            *n == 1
        } else {
            match self.interests.get_mut(&subject) {
                Some((_, n)) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    self.interests.remove(&subject);
                    true
                }
                None => false,
            }
        };
        if changed {
            self.out.push_back(Action::Interest {
                realm: realm.to_owned(),
                subject,
                on,
            });
        }
    }

    /// Cluster mode: every NATS subject the local subscriptions need now, with its realm, as
    /// `(realm, subject)` sorted by subject (what the [`Action::Interest`]s so far add up
    /// to), for a transport that attaches late or subscribes again.
    pub fn interests(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .interests
            .iter()
            .map(|(subject, (realm, _))| (realm.clone(), subject.clone()))
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v
    }
}
