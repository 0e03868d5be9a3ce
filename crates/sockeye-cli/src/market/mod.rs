//! The demo market of `sockeye serve`: a few made-up symbols whose prices move by a seeded
//! random walk, one tick per symbol every [`TICK`]. The seed document names stock trading as
//! the use case WebSockets are made for, and its two subprotocols both serve this market:
//! WAMP at `/wamp` ([`wamp`]: ticks as events, quotes and history as procedures) and SOAP at
//! `/soap` ([`soap`]: `GetQuote`, `GetQuotes`).
//!
//! [`Market`] is a plain value: it moves only when [`Market::step`] is called and is told the
//! time, so tests drive it tick by tick. [`Exchange`] shares it between the endpoints and
//! knows whether anyone watches: the market ticks only then, so an idle server stays idle.

pub mod soap;
pub mod wamp;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

/// How often each symbol ticks while someone watches.
pub const TICK: Duration = Duration::from_millis(100);

/// Ticks kept per symbol for `demo.market.history`: one minute.
pub const HISTORY: usize = 600;

/// The symbols and their opening prices. Made up: no real company trades here.
const LISTING: [(&str, f64); 5] = [
    ("SOCK", 101.25),
    ("EYE", 42.10),
    ("RUST", 187.60),
    ("CRAB", 12.34),
    ("TOKIO", 64.00),
];

/// One price of one symbol.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tick {
    pub symbol: &'static str,
    pub bid: f64,
    pub ask: f64,
    pub last: f64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Counts this symbol's ticks from 0 (the opening price).
    pub seq: u64,
}

impl Tick {
    /// `time` as RFC 3339 in UTC with milliseconds, as both JSON and `xsd:dateTime` take it.
    pub fn time(&self) -> String {
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(self.time_ms))
            .to_string()
    }
}

struct Stock {
    symbol: &'static str,
    opening: f64,
    history: VecDeque<Tick>,
}

/// The market's state.
pub struct Market {
    rng: u64,
    stocks: Vec<Stock>,
}

impl Market {
    /// The market at its opening prices, stamped `now_ms`; `seed` decides every later price.
    pub fn new(seed: u64, now_ms: u64) -> Self {
        let stocks = LISTING
            .iter()
            .map(|&(symbol, opening)| {
                let mut history = VecDeque::with_capacity(HISTORY);
                history.push_back(priced(symbol, opening, now_ms, 0));
                Stock {
                    symbol,
                    opening,
                    history,
                }
            })
            .collect();
        Market { rng: seed, stocks }
    }

    pub fn symbols(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.stocks.iter().map(|s| s.symbol)
    }

    /// The symbol as listed, matched without regard to ASCII case.
    pub fn symbol(&self, name: &str) -> Option<&'static str> {
        self.stocks
            .iter()
            .find(|s| s.symbol.eq_ignore_ascii_case(name))
            .map(|s| s.symbol)
    }

    /// Moves every symbol one tick, stamped `now_ms`, and returns the new ticks in listing
    /// order.
    pub fn step(&mut self, now_ms: u64) -> Vec<Tick> {
        let mut ticks = Vec::with_capacity(self.stocks.len());
        for i in 0..self.stocks.len() {
            // Uniform in [-1, 1): at most 0.2% a tick, pulled gently back to the opening price
            // so that a long run does not wander off to zero or to the moon.
            let step = (self.next_random() >> 11) as f64 / (1u64 << 52) as f64 - 1.0;
            let stock = &mut self.stocks[i];
            let previous = *stock.history.back().expect("a stock always has a price");
            let last =
                previous.last * (1.0 + 0.002 * step) + 0.001 * (stock.opening - previous.last);
            let tick = priced(stock.symbol, last, now_ms, previous.seq + 1);
            if stock.history.len() == HISTORY {
                stock.history.pop_front();
            }
            stock.history.push_back(tick);
            ticks.push(tick);
        }
        ticks
    }

    /// The latest tick of `symbol`.
    pub fn quote(&self, symbol: &str) -> Option<Tick> {
        self.stock(symbol)
            .map(|s| *s.history.back().expect("a stock always has a price"))
    }

    /// The last `n` ticks of `symbol` (at most [`HISTORY`]), oldest first.
    pub fn history(&self, symbol: &str, n: usize) -> Option<Vec<Tick>> {
        let history = &self.stock(symbol)?.history;
        Some(
            history
                .iter()
                .skip(history.len().saturating_sub(n))
                .copied()
                .collect(),
        )
    }

    fn stock(&self, symbol: &str) -> Option<&Stock> {
        self.stocks
            .iter()
            .find(|s| s.symbol.eq_ignore_ascii_case(symbol))
    }

    /// SplitMix64: a demo's prices need to look random and repeat for a seed, nothing more.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A tick at `last`, with a spread of about 4 basis points (one cent at least).
fn priced(symbol: &'static str, last: f64, time_ms: u64, seq: u64) -> Tick {
    let last = cents(last).max(0.01);
    let half = cents(last * 0.0002).max(0.01);
    Tick {
        symbol,
        bid: cents(last - half).max(0.0),
        ask: cents(last + half),
        last,
        time_ms,
        seq,
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The market shared by the endpoints, and who watches it.
#[derive(Clone)]
pub struct Exchange {
    shared: Arc<Shared>,
}

struct Shared {
    market: Mutex<Market>,
    /// Open `/soap` sessions.
    soap_watchers: AtomicUsize,
    /// Told when the number of watchers changes.
    watchers_changed: Notify,
}

impl Exchange {
    pub fn new(seed: u64) -> Self {
        Exchange {
            shared: Arc::new(Shared {
                market: Mutex::new(Market::new(seed, now_ms())),
                soap_watchers: AtomicUsize::new(0),
                watchers_changed: Notify::new(),
            }),
        }
    }

    pub fn market(&self) -> MutexGuard<'_, Market> {
        // A panic while holding the lock leaves a market that is still a valid market.
        self.shared
            .market
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a SOAP session as a watcher for as long as the guard lives.
    pub fn soap_watcher(&self) -> SoapWatcher {
        self.shared.soap_watchers.fetch_add(1, Ordering::Relaxed);
        self.shared.watchers_changed.notify_one();
        SoapWatcher(self.clone())
    }

    pub fn soap_watchers(&self) -> usize {
        self.shared.soap_watchers.load(Ordering::Relaxed)
    }

    /// Completes when the number of SOAP watchers may have changed.
    pub async fn watchers_changed(&self) {
        self.shared.watchers_changed.notified().await;
    }
}

/// See [`Exchange::soap_watcher`].
pub struct SoapWatcher(Exchange);

impl Drop for SoapWatcher {
    fn drop(&mut self) {
        let shared = &self.0.shared;
        shared.soap_watchers.fetch_sub(1, Ordering::Relaxed);
        shared.watchers_changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_prices() {
        let (mut a, mut b) = (Market::new(7, 0), Market::new(7, 0));
        for t in 1..=100 {
            assert_eq!(a.step(t), b.step(t));
        }
        let mut c = Market::new(8, 0);
        assert_ne!(a.step(101), c.step(101));
    }

    #[test]
    fn prices_stay_positive_with_the_bid_below_the_ask_over_a_long_run() {
        let mut market = Market::new(1, 0);
        // A day of ticks.
        for t in 0..864_000 {
            for tick in market.step(t) {
                assert!(tick.bid > 0.0 && tick.bid < tick.ask, "{tick:?}");
                assert!(tick.bid <= tick.last && tick.last <= tick.ask, "{tick:?}");
            }
        }
        // The pull towards the opening price keeps a day's walk within a factor of two.
        for (symbol, opening) in LISTING {
            let last = market.quote(symbol).unwrap().last;
            assert!(
                last > opening / 2.0 && last < opening * 2.0,
                "{symbol} {last}"
            );
        }
    }

    #[test]
    fn history_keeps_the_last_minute_oldest_first() {
        let mut market = Market::new(3, 0);
        for t in 1..=1000 {
            market.step(t);
        }
        let all = market.history("CRAB", usize::MAX).unwrap();
        assert_eq!(all.len(), HISTORY);
        assert_eq!(all.first().unwrap().seq, 1000 - HISTORY as u64 + 1);
        assert_eq!(all.last().unwrap().seq, 1000);
        let three = market.history("crab", 3).unwrap();
        assert_eq!(
            three.iter().map(|t| t.seq).collect::<Vec<_>>(),
            [998, 999, 1000]
        );
        assert_eq!(three[2], market.quote("CRAB").unwrap());
        assert!(market.history("NOPE", 3).is_none());
    }

    #[test]
    fn tick_times_are_rfc3339_utc_with_milliseconds() {
        let tick = Market::new(0, 1_764_928_800_123).quote("SOCK").unwrap();
        assert_eq!(tick.time(), "2025-12-05T10:00:00.123Z");
    }
}
