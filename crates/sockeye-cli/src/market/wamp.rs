//! The market as a WAMP component of the router at `/wamp`.
//!
//! - ticks are published to `demo.market.tick.<SYMBOL>`, retained, so that a subscriber asking
//!   for `get_retained` starts with the latest price of every symbol;
//! - `demo.market.symbols()` returns the symbols;
//! - `demo.market.quote(symbol)` returns the latest tick;
//! - `demo.market.history(symbol, n = 10)` returns the last `n` ticks, oldest first: one
//!   progressive result per tick then `[count]` for a caller that asked for progress, else
//!   `[[tick, ...]]`.
//!
//! An unknown symbol gets ERROR `demo.market.error.unknown_symbol`. A tick is the dictionary
//! `{symbol, bid, ask, last, time, seq}`.
//!
//! [`Component`] is sans-I/O: WAMP messages in, WAMP messages out, the market passed in. It
//! learns who watches from the subscription meta API: it asks `wamp.subscription.match` for
//! the tick topics when it starts, then follows `wamp.subscription.on_create` and `on_delete`.
//! [`run`] joins it to the router as a trusted in-process session.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sockeye_wamp::proto::message::code;
use sockeye_wamp::proto::uri;
use sockeye_wamp::proto::Message;
use sockeye_wamp::{Dict, MatchPolicy, Payload, Value, WampRouter};

use super::{Exchange, Market, Tick, HISTORY, TICK};

pub const TICK_TOPIC_PREFIX: &str = "demo.market.tick.";
pub const SYMBOLS: &str = "demo.market.symbols";
pub const QUOTE: &str = "demo.market.quote";
pub const HISTORY_PROCEDURE: &str = "demo.market.history";
pub const UNKNOWN_SYMBOL: &str = "demo.market.error.unknown_symbol";
const INVALID_ARGUMENT: &str = "wamp.error.invalid_argument";
/// Ticks `demo.market.history` returns when the caller does not say.
const DEFAULT_HISTORY: usize = 10;

#[derive(Debug, Clone, Copy)]
enum Procedure {
    Symbols,
    Quote,
    History,
}

#[derive(Debug, Clone, Copy)]
enum MetaTopic {
    Created,
    Deleted,
}

/// What one of the component's own requests was for.
#[derive(Debug)]
enum Pending {
    Subscribe(MetaTopic),
    Register(Procedure),
    Match,
}

/// The market's WAMP session, without I/O.
pub struct Component {
    next_request: u64,
    pending: HashMap<u64, Pending>,
    meta: HashMap<u64, MetaTopic>,
    procedures: HashMap<u64, Procedure>,
    tick_topics: Vec<String>,
    /// The router's subscriptions that receive ticks.
    watched: HashSet<u64>,
}

impl Component {
    pub fn new(market: &Market) -> Self {
        Component {
            next_request: 0,
            pending: HashMap::new(),
            meta: HashMap::new(),
            procedures: HashMap::new(),
            tick_topics: market
                .symbols()
                .map(|s| format!("{TICK_TOPIC_PREFIX}{s}"))
                .collect(),
            watched: HashSet::new(),
        }
    }

    /// Whether any subscription receives ticks.
    pub fn watching(&self) -> bool {
        !self.watched.is_empty()
    }

    /// The messages that set the component up, sent once it has joined. The meta
    /// subscriptions come before the `match` calls, so that no subscription falls between
    /// them.
    pub fn start(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        for (topic, meta) in [
            ("wamp.subscription.on_create", MetaTopic::Created),
            ("wamp.subscription.on_delete", MetaTopic::Deleted),
        ] {
            let request = self.request(Pending::Subscribe(meta));
            out.push(Message::Subscribe {
                request,
                options: Dict::new(),
                topic: topic.to_owned(),
            });
        }
        for (procedure, which) in [
            (SYMBOLS, Procedure::Symbols),
            (QUOTE, Procedure::Quote),
            (HISTORY_PROCEDURE, Procedure::History),
        ] {
            let request = self.request(Pending::Register(which));
            out.push(Message::Register {
                request,
                options: Dict::new(),
                procedure: procedure.to_owned(),
            });
        }
        for topic in self.tick_topics.clone() {
            let request = self.request(Pending::Match);
            out.push(Message::Call {
                request,
                options: Dict::new(),
                procedure: "wamp.subscription.match".to_owned(),
                payload: Payload::Args(vec![topic.into()]),
            });
        }
        out
    }

    /// One message from the router; returns the answers.
    pub fn handle(&mut self, msg: &Message, market: &Market) -> Vec<Message> {
        match msg {
            Message::Subscribed {
                request,
                subscription,
            } => {
                if let Some(Pending::Subscribe(meta)) = self.pending.remove(request) {
                    self.meta.insert(*subscription, meta);
                }
            }
            Message::Registered {
                request,
                registration,
            } => {
                if let Some(Pending::Register(procedure)) = self.pending.remove(request) {
                    self.procedures.insert(*registration, procedure);
                }
            }
            Message::Result {
                request, payload, ..
            } => {
                if let Some(Pending::Match) = self.pending.remove(request) {
                    if let Some(Value::List(ids)) = payload.args().first() {
                        self.watched.extend(ids.iter().filter_map(Value::as_u64));
                    }
                }
            }
            Message::Error { request, error, .. } => {
                if let Some(pending) = self.pending.remove(request) {
                    tracing::warn!("market: {pending:?} failed: {error}");
                }
            }
            Message::Event {
                subscription,
                payload,
                ..
            } => self.meta_event(*subscription, payload),
            Message::Invocation {
                request,
                registration,
                details,
                payload,
            } => {
                if let Some(&procedure) = self.procedures.get(registration) {
                    return invoke(procedure, *request, details, payload, market);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// The PUBLISH messages of one round of ticks.
    pub fn publish(&mut self, ticks: &[Tick]) -> Vec<Message> {
        ticks
            .iter()
            .map(|tick| Message::Publish {
                request: self.request_id(),
                options: Dict::new().with("retain", true),
                topic: format!("{TICK_TOPIC_PREFIX}{}", tick.symbol),
                payload: Payload::Args(vec![tick_value(tick)]),
            })
            .collect()
    }

    fn meta_event(&mut self, subscription: u64, payload: &Payload) {
        let args = payload.args();
        match self.meta.get(&subscription) {
            // [session, {id, uri, match}]
            Some(MetaTopic::Created) => {
                let Some(Value::Dict(info)) = args.get(1) else {
                    return;
                };
                let (Some(id), Some(pattern)) =
                    (info.get("id").and_then(Value::as_u64), info.get_str("uri"))
                else {
                    return;
                };
                let policy = info
                    .get_str("match")
                    .and_then(MatchPolicy::parse)
                    .unwrap_or(MatchPolicy::Exact);
                if self
                    .tick_topics
                    .iter()
                    .any(|topic| uri::matches(pattern, policy, topic))
                {
                    self.watched.insert(id);
                }
            }
            // [session, id]
            Some(MetaTopic::Deleted) => {
                if let Some(id) = args.get(1).and_then(Value::as_u64) {
                    self.watched.remove(&id);
                }
            }
            None => {}
        }
    }

    fn request(&mut self, pending: Pending) -> u64 {
        let id = self.request_id();
        self.pending.insert(id, pending);
        id
    }

    fn request_id(&mut self) -> u64 {
        // Session-scope ids run from 1 to 2^53 (WAMP spec, "IDs").
        self.next_request = self.next_request % (1 << 53) + 1;
        self.next_request
    }
}

fn invoke(
    procedure: Procedure,
    request: u64,
    details: &Dict,
    payload: &Payload,
    market: &Market,
) -> Vec<Message> {
    let args = payload.args();
    let reply = |payload: Payload| Message::Yield {
        request,
        options: Dict::new(),
        payload,
    };
    let error = |uri: &str, text: String| Message::Error {
        request_type: code::INVOCATION,
        request,
        details: Dict::new(),
        error: uri.to_owned(),
        payload: Payload::Args(vec![text.into()]),
    };
    if let Procedure::Symbols = procedure {
        let symbols = market.symbols().map(Value::from).collect::<Vec<_>>();
        return vec![reply(Payload::Args(vec![symbols.into()]))];
    }
    let Some(name) = args.first().and_then(Value::as_str) else {
        return vec![error(
            INVALID_ARGUMENT,
            "the first argument must be a symbol".into(),
        )];
    };
    let Some(symbol) = market.symbol(name) else {
        return vec![Message::Error {
            request_type: code::INVOCATION,
            request,
            details: Dict::new(),
            error: UNKNOWN_SYMBOL.to_owned(),
            payload: Payload::ArgsKwargs(
                vec![format!("unknown symbol {name:?}").into()],
                Dict::new().with("symbol", name),
            ),
        }];
    };
    match procedure {
        Procedure::Quote => {
            let tick = market.quote(symbol).expect("a listed symbol");
            vec![reply(Payload::Args(vec![tick_value(&tick)]))]
        }
        Procedure::History => {
            let n = match args.get(1) {
                None => DEFAULT_HISTORY,
                Some(v) => match v.as_u64() {
                    Some(n) if (1..=HISTORY as u64).contains(&n) => n as usize,
                    _ => {
                        return vec![error(
                            INVALID_ARGUMENT,
                            format!("the count must be an integer from 1 to {HISTORY}"),
                        )]
                    }
                },
            };
            let ticks = market.history(symbol, n).expect("a listed symbol");
            if details.get_bool("receive_progress") == Some(true) {
                let count = ticks.len() as u64;
                let mut out: Vec<Message> = ticks
                    .iter()
                    .map(|tick| Message::Yield {
                        request,
                        options: Dict::new().with("progress", true),
                        payload: Payload::Args(vec![tick_value(tick)]),
                    })
                    .collect();
                out.push(reply(Payload::Args(vec![count.into()])));
                out
            } else {
                let list: Vec<Value> = ticks.iter().map(tick_value).collect();
                vec![reply(Payload::Args(vec![list.into()]))]
            }
        }
        Procedure::Symbols => unreachable!("answered above"),
    }
}

pub fn tick_value(tick: &Tick) -> Value {
    Dict::new()
        .with("symbol", tick.symbol)
        .with("bid", tick.bid)
        .with("ask", tick.ask)
        .with("last", tick.last)
        .with("time", tick.time())
        .with("seq", tick.seq)
        .into()
}

/// Runs the market's WAMP session in `realm` of `router` for as long as the server runs:
/// answers its procedures, and ticks every [`TICK`] while a subscription or a SOAP session
/// watches. If the router ends the session, it joins again a second later.
pub async fn run(exchange: Exchange, router: WampRouter, realm: String) {
    loop {
        let Some(mut session) = router.join_local(&realm, "demo.market") else {
            tracing::warn!("market: cannot join realm {realm:?}; the market is off");
            return;
        };
        let mut component = Component::new(&exchange.market());
        for msg in component.start() {
            session.send(msg);
        }
        let mut ticker: Option<tokio::time::Interval> = None;
        loop {
            let watching = component.watching() || exchange.soap_watchers() > 0;
            match (&ticker, watching) {
                (None, true) => {
                    let mut every =
                        tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
                    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    ticker = Some(every);
                }
                (Some(_), false) => ticker = None,
                _ => {}
            }
            tokio::select! {
                msg = session.recv() => {
                    let Some(msg) = msg else { break };
                    let answers = component.handle(&msg, &exchange.market());
                    for answer in answers {
                        session.send(answer);
                    }
                }
                _ = async { ticker.as_mut().expect("guarded").tick().await }, if ticker.is_some() => {
                    let ticks = exchange.market().step(super::now_ms());
                    for msg in component.publish(&ticks) {
                        session.send(msg);
                    }
                }
                _ = exchange.watchers_changed() => {}
            }
        }
        tracing::warn!("market: the router ended the market's session; joining again");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sockeye_wamp::proto::{Action, ConnId, Router, RouterConfig};

    use super::*;

    /// The router and the component wired together without I/O, plus one client connection.
    struct Harness {
        router: Router,
        component: Component,
        market: Market,
        me: ConnId,
        client: ConnId,
        /// What the router sent the client.
        inbox: Vec<Arc<Message>>,
    }

    /// The messages an action sends, one per recipient.
    fn sends(action: Action) -> Vec<(ConnId, Arc<Message>)> {
        match action {
            Action::Send(to, msg) => vec![(to, msg)],
            Action::Broadcast(to, msg) => to.into_iter().map(|to| (to, msg.clone())).collect(),
            Action::Close(to) => panic!("the router closed {to:?}"),
            // A router of one node: nothing for other nodes.
            Action::Forward(_)
            | Action::Interest { .. }
            | Action::RemoteCall(_)
            | Action::RemoteAnswer(_)
            | Action::RemoteCancel(_)
            | Action::Registered { .. } => Vec::new(),
        }
    }

    impl Harness {
        fn new() -> Self {
            let mut router = Router::with_seed(RouterConfig::default(), 5);
            let market = Market::new(9, 0);
            let mut component = Component::new(&market);
            let me = router.connect();
            router.join_trusted(me, "realm1", "demo.market").unwrap();
            let client = router.connect();
            router.handle(
                client,
                Message::Hello {
                    realm: "realm1".into(),
                    details: Dict::new().with(
                        "roles",
                        Dict::new()
                            .with("subscriber", Dict::new())
                            .with("caller", Dict::new()),
                    ),
                },
            );
            let start = component.start();
            let mut h = Harness {
                router,
                component,
                market,
                me,
                client,
                inbox: Vec::new(),
            };
            for msg in start {
                h.router.handle(me, msg);
            }
            h.pump();
            h.inbox.clear();
            h
        }

        /// Carries messages between the router and the component until neither has more.
        fn pump(&mut self) {
            while let Some(action) = self.router.poll() {
                for (to, msg) in sends(action) {
                    if to == self.me {
                        for answer in self.component.handle(&msg, &self.market) {
                            self.router.handle(self.me, answer);
                        }
                    } else {
                        assert_eq!(to, self.client, "{msg:?}");
                        self.inbox.push(msg);
                    }
                }
            }
        }

        fn client_sends(&mut self, msg: Message) -> Vec<Arc<Message>> {
            self.router.handle(self.client, msg);
            self.pump();
            std::mem::take(&mut self.inbox)
        }

        fn subscribe(&mut self, request: u64, topic: &str, policy: &str) -> u64 {
            let out = self.client_sends(Message::Subscribe {
                request,
                options: Dict::new().with("match", policy),
                topic: topic.into(),
            });
            match &*out[0] {
                Message::Subscribed { subscription, .. } => *subscription,
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_subscription_that_receives_ticks_makes_the_market_watched_and_its_end_unwatched() {
        let mut h = Harness::new();
        assert!(!h.component.watching());
        // Not a tick topic: nobody watches the market.
        let news = h.subscribe(1, "demo.market.news", "exact");
        assert!(!h.component.watching());
        for (request, (topic, policy)) in [
            ("demo.market.tick.CRAB", "exact"),
            ("demo.market.", "prefix"),
            ("demo..tick.", "wildcard"),
        ]
        .into_iter()
        .enumerate()
        {
            let id = h.subscribe(10 + request as u64, topic, policy);
            assert!(h.component.watching(), "{topic} {policy}");
            h.client_sends(Message::Unsubscribe {
                request: 20 + request as u64,
                subscription: id,
            });
            assert!(!h.component.watching(), "{topic} {policy}");
        }
        // A subscription made before the component started is found by `match`.
        h.subscribe(30, "demo.market.tick.", "prefix");
        let mut late = Component::new(&h.market);
        let me = h.router.connect();
        h.router
            .join_trusted(me, "realm1", "demo.market.2")
            .unwrap();
        for msg in late.start() {
            h.router.handle(me, msg);
        }
        while let Some(action) = h.router.poll() {
            for (to, msg) in sends(action) {
                if to == me {
                    let _ = late.handle(&msg, &h.market);
                }
            }
        }
        assert!(late.watching());
        let _ = news;
    }

    #[test]
    fn published_ticks_reach_a_prefix_subscriber_with_their_topic() {
        let mut h = Harness::new();
        let sub = h.subscribe(1, "demo.market.tick.", "prefix");
        let ticks = h.market.step(100);
        for msg in h.component.publish(&ticks) {
            h.router.handle(h.me, msg);
        }
        h.pump();
        let events: Vec<_> = h
            .inbox
            .iter()
            .map(|m| match &**m {
                Message::Event {
                    subscription,
                    details,
                    payload,
                    ..
                } => {
                    assert_eq!(*subscription, sub);
                    (
                        details.get_str("topic").unwrap().to_owned(),
                        payload.clone(),
                    )
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(events.len(), 5);
        for ((topic, payload), tick) in events.iter().zip(&ticks) {
            assert_eq!(topic, &format!("demo.market.tick.{}", tick.symbol));
            assert_eq!(payload.args(), &[tick_value(tick)]);
        }
    }

    #[test]
    fn calls_get_quotes_history_and_the_errors_of_the_market() {
        let mut h = Harness::new();
        for t in 1..=20 {
            h.market.step(t);
        }
        let call = |request, procedure: &str, args: Vec<Value>, options: Dict| Message::Call {
            request,
            options,
            procedure: procedure.into(),
            payload: Payload::Args(args),
        };
        let out = h.client_sends(call(1, QUOTE, vec!["rust".into()], Dict::new()));
        let quote = h.market.quote("RUST").unwrap();
        assert!(
            matches!(&*out[0], Message::Result { request: 1, payload, .. } if payload.args() == [tick_value(&quote)]),
            "{out:?}"
        );
        let out = h.client_sends(call(2, QUOTE, vec!["NOPE".into()], Dict::new()));
        assert!(
            matches!(&*out[0], Message::Error { request: 2, error, .. } if error == UNKNOWN_SYMBOL),
            "{out:?}"
        );
        let out = h.client_sends(call(3, QUOTE, vec![], Dict::new()));
        assert!(
            matches!(&*out[0], Message::Error { request: 3, error, .. } if error == INVALID_ARGUMENT),
            "{out:?}"
        );
        let out = h.client_sends(call(
            4,
            HISTORY_PROCEDURE,
            vec!["SOCK".into(), 0u64.into()],
            Dict::new(),
        ));
        assert!(
            matches!(&*out[0], Message::Error { error, .. } if error == INVALID_ARGUMENT),
            "{out:?}"
        );
        let out = h.client_sends(call(5, SYMBOLS, vec![], Dict::new()));
        let symbols: Vec<Value> = h.market.symbols().map(Value::from).collect();
        assert!(
            matches!(&*out[0], Message::Result { payload, .. } if payload.args() == [Value::List(symbols)]),
            "{out:?}"
        );
    }
}
