//! The dealer's bookkeeping: registrations, and the calls in flight between callers and
//! callees.

use std::collections::{BTreeSet, HashMap};

use super::ConnId;
use crate::uri::{self, MatchPolicy};

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
}

impl Dealer {
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
    /// `None` if `callee` was not registered there, else whether the registration went.
    pub fn unregister(&mut self, callee: ConnId, id: u64) -> Option<bool> {
        let reg = self.regs.get_mut(&id)?;
        let i = reg.callees.iter().position(|c| *c == callee)?;
        reg.callees.remove(i);
        if let Some(set) = self.by_callee.get_mut(&callee) {
            set.remove(&id);
        }
        if reg.callees.is_empty() {
            let reg = self.regs.remove(&id).expect("present");
            self.by_pattern.remove(&(reg.policy, reg.uri));
            self.prefix.remove(&id);
            self.wildcard.remove(&id);
            return Some(true);
        }
        Some(false)
    }

    /// Drops every registration of a callee that left: (registration, whether it went).
    pub fn remove_callee(&mut self, callee: ConnId) -> Vec<(u64, bool)> {
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
