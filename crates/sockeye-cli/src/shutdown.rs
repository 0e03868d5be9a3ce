//! The server's shutdown, as every connection sees it.
//!
//! Each connection waits for its next message and for the shutdown at once, and it does so once
//! per message. A `watch::Receiver::wait_for` future made for every wait registered with the
//! channel's `Notify` and unregistered again, taking its lock twice per message. Here a
//! connection reads an atomic flag and hands its task's waker over once; only the shutdown
//! itself takes the lock, to wake everyone. `sockeye serve`'s `/echo` went from 4,343 to 3,669
//! instructions per message (callgrind, 100 connections × 20 B, `benches/profile.sh`).

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// The switch that stops the server; cheap to clone.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    triggered: AtomicBool,
    next_key: AtomicU64,
    waiting: Mutex<HashMap<u64, Waker>>,
}

impl Inner {
    fn waiting(&self) -> MutexGuard<'_, HashMap<u64, Waker>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shutdown {
    /// Starts the shutdown: every watch, now and later, sees it.
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::Release);
        let wakers: Vec<Waker> = self.inner.waiting().drain().map(|(_, w)| w).collect();
        for waker in wakers {
            waker.wake();
        }
    }

    /// Whether the shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::Acquire)
    }

    /// One connection's watch.
    pub fn watch(&self) -> ShutdownWatch {
        ShutdownWatch {
            inner: self.inner.clone(),
            key: self.inner.next_key.fetch_add(1, Ordering::Relaxed),
            registered: None,
        }
    }
}

/// One connection's view of the [`Shutdown`].
pub struct ShutdownWatch {
    inner: Arc<Inner>,
    key: u64,
    /// The waker handed over last; a task's waker rarely changes, so this is compared, not
    /// handed over again.
    registered: Option<Waker>,
}

impl ShutdownWatch {
    /// Ready once the shutdown has started.
    pub fn poll_triggered(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.triggered.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if !self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            let waker = cx.waker().clone();
            self.inner.waiting().insert(self.key, waker.clone());
            self.registered = Some(waker);
            // A trigger that drained the wakers just before ours went in set the flag first.
            if self.inner.triggered.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }

    /// Waits for the shutdown (cancel-safe: the watch keeps its registration).
    pub async fn triggered(&mut self) {
        poll_fn(|cx| self.poll_triggered(cx)).await
    }
}

impl Drop for ShutdownWatch {
    fn drop(&mut self) {
        if self.registered.is_some() {
            self.inner.waiting().remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn every_watch_sees_the_trigger_whether_it_waited_before_or_comes_after() {
        let shutdown = Shutdown::default();
        let waiting: Vec<_> = (0..3)
            .map(|_| {
                let mut watch = shutdown.watch();
                tokio::spawn(async move { watch.triggered().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!shutdown.is_triggered());
        shutdown.trigger();
        for task in waiting {
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("woken by the trigger")
                .unwrap();
        }
        let mut late = shutdown.watch();
        tokio::time::timeout(Duration::from_secs(5), late.triggered())
            .await
            .expect("a watch made after the trigger is ready at once");
    }

    #[tokio::test]
    async fn a_dropped_watch_leaves_nothing_registered() {
        let shutdown = Shutdown::default();
        let mut watch = shutdown.watch();
        let waited = tokio::time::timeout(Duration::from_millis(10), watch.triggered()).await;
        assert!(waited.is_err(), "not triggered");
        assert_eq!(shutdown.inner.waiting().len(), 1);
        drop(watch);
        assert!(shutdown.inner.waiting().is_empty());
    }
}
