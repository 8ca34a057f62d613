//! Shared, bounded budgets the event loops draw from: `Budget` (a limit and an atomic count) and
//! `Lease` (what one holder has drawn; given back on drop, so a connection that dies any way at
//! all — closed, panicked loop, stopped proxy — returns what it held).
//!
//! Two budgets use it: the file descriptors all proxies of a `ProxyManager` may hold together
//! (one per client socket, one per upstream socket; see [`fd_limit`]), and the bytes of HTML one
//! proxy holds for injection across all its exchanges. Nothing here blocks; a draw that does not
//! fit fails at once and the caller decides (a 503, a page passed through uninjected).

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

/// Descriptors kept out of the proxies' budget: the control socket and its clients, supervised
/// processes' pipes, state and log files. A tenth of the limit, at least 64, at most 1024.
pub fn fd_reserve(limit: usize) -> usize {
    (limit / 10).clamp(64, 1024)
}

/// The process's descriptor limit, raised once: the soft `RLIMIT_NOFILE` goes up to the hard one,
/// or down to `AGNT_MAX_FDS` when that is set (so tests can reach the budget with a few hundred
/// sockets). Returns the soft limit now in force.
pub fn fd_limit() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let cur = getrlimit(Resource::Nofile);
        let hard = cur.maximum;
        let want = match std::env::var("AGNT_MAX_FDS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            Some(n) => Some(hard.map_or(n, |h| n.min(h))),
            None => hard,
        };
        if let Some(want) = want
            && Some(want) != cur.current
        {
            let new = Rlimit {
                current: Some(want),
                maximum: hard,
            };
            if let Err(e) = setrlimit(Resource::Nofile, new) {
                log::warn!("cannot set RLIMIT_NOFILE to {want}: {e}");
            }
        }
        let now = getrlimit(Resource::Nofile).current;
        now.map_or(1 << 20, |n| usize::try_from(n).unwrap_or(usize::MAX))
    })
}

/// A limit and how much of it is drawn.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
}

/// What one holder has drawn from a [`Budget`]; returned on drop.
#[derive(Debug)]
pub(crate) struct Lease {
    budget: Arc<Budget>,
    held: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// An empty lease (grown later with [`Lease::resize`]).
    pub fn empty(self: &Arc<Self>) -> Lease {
        Lease {
            budget: self.clone(),
            held: 0,
        }
    }

    /// Draws `n`, or `None` when that would pass the limit.
    pub fn lease(self: &Arc<Self>, n: usize) -> Option<Lease> {
        let mut l = self.empty();
        l.resize(n).then_some(l)
    }

    fn grow(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|&t| t <= self.limit)
            })
            .is_ok()
    }
}

impl Lease {
    /// Holds exactly `n` now; false (holding what it held) if growing to `n` does not fit.
    pub fn resize(&mut self, n: usize) -> bool {
        if n > self.held {
            if !self.budget.grow(n - self.held) {
                return false;
            }
        } else {
            self.budget.used.fetch_sub(self.held - n, Ordering::AcqRel);
        }
        self.held = n;
        true
    }

    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_stay_within_the_limit_and_return_on_drop() {
        let b = Budget::new(10);
        let a = b.lease(6).unwrap();
        assert!(b.lease(5).is_none());
        let mut c = b.lease(4).unwrap();
        assert_eq!(b.used(), 10);
        assert!(!c.resize(5));
        assert_eq!(c.held(), 4);
        assert!(c.resize(1));
        assert_eq!(b.used(), 7);
        drop(a);
        assert!(c.resize(9));
        drop(c);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn reserve_is_a_tenth_clamped() {
        assert_eq!(fd_reserve(300), 64);
        assert_eq!(fd_reserve(4096), 409);
        assert_eq!(fd_reserve(1 << 20), 1024);
    }
}
