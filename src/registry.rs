//! `Registry`: the one concurrent map behind both managers' registries (processes and proxies),
//! a thin wrapper over `flurry`.
//!
//! Callers see owned values (cheap clones such as `Arc`s) and never a guard, so no guard is
//! ever held across a blocking call, and swapping flurry for papaya or dashmap touches only
//! this file. Point reads (`get`) are lock-free; writes are per-bin.
//!
//! Listing is the read that dominates status screens and MCP `proc list`, and walking
//! flurry's bins costs ~30 ns per entry. So `values` serves a snapshot (`Arc<[V]>`, kept in
//! the order given by [`Registry::with_order`]) that is rebuilt lazily after a write: every
//! write bumps a version counter *after* changing the map, and a snapshot is used only while
//! its version is current. A snapshot taken while a write is half done is either current (the
//! write had not finished) or stale (rebuilt on the next list), never silently wrong.

use std::{
    borrow::Borrow,
    fmt,
    hash::Hash,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use parking_lot::RwLock;

/// A concurrent map from `K` to cheaply clonable `V`.
pub struct Registry<K, V> {
    map: flurry::HashMap<K, V>,
    version: AtomicU64,
    snapshot: RwLock<(u64, Arc<[V]>)>,
    order: Option<fn(&V) -> u64>,
}

impl<K, V> fmt::Debug for Registry<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("len", &self.map.len())
            .finish()
    }
}

impl<K, V> Default for Registry<K, V>
where
    K: 'static + Sync + Send + Clone + Hash + Ord,
    V: 'static + Sync + Send + Clone,
{
    fn default() -> Self {
        Registry {
            map: flurry::HashMap::new(),
            // Version 1 with an empty snapshot: stale until the first list.
            version: AtomicU64::new(1),
            snapshot: RwLock::new((0, Arc::from(Vec::new()))),
            order: None,
        }
    }
}

impl<K, V> Registry<K, V>
where
    K: 'static + Sync + Send + Clone + Hash + Ord,
    V: 'static + Sync + Send + Clone,
{
    /// An empty registry; `values` come unordered.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty registry whose `values` come sorted by `key`.
    pub fn with_order(key: fn(&V) -> u64) -> Self {
        Registry {
            order: Some(key),
            ..Self::default()
        }
    }

    /// The value under `key`.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Ord,
    {
        self.map.pin().get(key).cloned()
    }

    /// Inserts `value` unless `key` is taken; on conflict returns the current value.
    pub fn insert_new(&self, key: K, value: V) -> Result<(), V> {
        let res = match self.map.pin().try_insert(key, value) {
            Ok(_) => Ok(()),
            Err(e) => Err(e.current.clone()),
        };
        if res.is_ok() {
            self.bump();
        }
        res
    }

    /// Replaces the value under `key` with `new` if `expected(current)` holds. Returns whether
    /// it replaced.
    pub fn replace_if<Q>(&self, key: &Q, expected: impl Fn(&V) -> bool, new: V) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Ord,
    {
        let mut replaced = false;
        self.map.pin().compute_if_present(key, |_, cur| {
            if expected(cur) {
                replaced = true;
                Some(new)
            } else {
                Some(cur.clone())
            }
        });
        if replaced {
            self.bump();
        }
        replaced
    }

    /// Removes `key` if `expected(current)` holds; returns the removed value.
    pub fn remove_if<Q>(&self, key: &Q, expected: impl Fn(&V) -> bool) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Ord,
    {
        let map = self.map.pin();
        let cur = map.get(key)?.clone();
        if !expected(&cur) {
            return None;
        }
        let mut removed = None;
        map.compute_if_present(key, |_, v| {
            if expected(v) {
                removed = Some(v.clone());
                None
            } else {
                Some(v.clone())
            }
        });
        drop(map);
        if removed.is_some() {
            self.bump();
        }
        removed
    }

    /// Removes `key`; returns the removed value.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Ord,
    {
        let removed = self.map.pin().remove(key).cloned();
        if removed.is_some() {
            self.bump();
        }
        removed
    }

    /// All values, as a shared snapshot (sorted if the registry has an order).
    pub fn snapshot(&self) -> Arc<[V]> {
        let v = self.version.load(Ordering::Acquire);
        {
            let snap = self.snapshot.read();
            if snap.0 == v {
                return Arc::clone(&snap.1);
            }
        }
        let mut fresh: Vec<V> = {
            let map = self.map.pin();
            let mut out = Vec::with_capacity(map.len());
            out.extend(map.values().cloned());
            out
        };
        if let Some(key) = self.order {
            fresh.sort_unstable_by_key(key);
        }
        let fresh: Arc<[V]> = Arc::from(fresh);
        let mut snap = self.snapshot.write();
        if snap.0 < v {
            *snap = (v, Arc::clone(&fresh));
        }
        fresh
    }

    /// A snapshot of all values (sorted if the registry has an order).
    pub fn values(&self) -> Vec<V> {
        self.snapshot().to_vec()
    }

    /// A snapshot of the values for which `keep` holds (sorted if the registry has an order).
    pub fn values_where(&self, mut keep: impl FnMut(&V) -> bool) -> Vec<V> {
        self.snapshot()
            .iter()
            .filter(|v| keep(v))
            .cloned()
            .collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the registry is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Marks the snapshot stale and drops it (so removed values are not kept alive by it).
    fn bump(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
        let mut snap = self.snapshot.write();
        snap.0 = 0;
        snap.1 = Arc::from(Vec::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_replace_remove() {
        let r: Registry<String, u32> = Registry::new();
        assert!(r.insert_new("a".into(), 1).is_ok());
        assert_eq!(r.insert_new("a".into(), 2), Err(1));
        assert_eq!(r.get("a"), Some(1));
        assert_eq!(r.values(), vec![1]);
        assert!(!r.replace_if("a", |v| *v == 5, 9));
        assert!(r.replace_if("a", |v| *v == 1, 9));
        assert_eq!(r.get("a"), Some(9));
        assert_eq!(r.values(), vec![9]);
        assert_eq!(r.remove_if("a", |v| *v == 1), None);
        assert_eq!(r.remove_if("a", |v| *v == 9), Some(9));
        assert!(r.is_empty());
        assert!(r.values().is_empty());
        assert!(!r.replace_if("missing", |_| true, 1));
        r.insert_new("b".into(), 2).unwrap();
        assert_eq!(r.values(), vec![2]);
        assert_eq!(r.remove("b"), Some(2));
        assert_eq!(r.len(), 0);
        assert!(r.values().is_empty());
    }

    #[test]
    fn ordered_snapshots_follow_writes() {
        let r: Registry<u32, u32> = Registry::with_order(|v| u64::from(*v));
        for i in [5, 3, 9, 1] {
            r.insert_new(i, i * 10).unwrap();
        }
        assert_eq!(r.values(), vec![10, 30, 50, 90]);
        let a = r.snapshot();
        assert!(
            Arc::ptr_eq(&a, &r.snapshot()),
            "unchanged map reuses the snapshot"
        );
        r.remove(&3);
        assert_eq!(r.values(), vec![10, 50, 90]);
        assert_eq!(r.values_where(|v| *v > 20), vec![50, 90]);
    }

    #[test]
    fn concurrent_writers_never_leave_a_stale_list() {
        let r: Arc<Registry<u32, u32>> = Arc::new(Registry::with_order(|v| u64::from(*v)));
        let hs: Vec<_> = (0..4)
            .map(|t| {
                let r = Arc::clone(&r);
                crate::thread::spawn("test-writer", crate::thread::SMALL_STACK, move || {
                    for i in 0..200 {
                        let k = t * 1000 + i;
                        r.insert_new(k, k).unwrap();
                        r.values();
                    }
                })
                .unwrap()
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(r.values().len(), 800);
    }
}
