//! `Registry`: the concurrent map behind the process registry, a thin wrapper over `flurry`.
//!
//! Callers see owned values (cheap clones such as `Arc`s) and never a guard, so no guard is
//! ever held across a blocking call, and swapping flurry for papaya or dashmap touches only
//! this file. Reads are lock-free; writes are per-bin.

use std::{borrow::Borrow, fmt, hash::Hash};

/// A concurrent map from `K` to cheaply clonable `V`.
pub struct Registry<K, V> {
    map: flurry::HashMap<K, V>,
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
        }
    }
}

impl<K, V> Registry<K, V>
where
    K: 'static + Sync + Send + Clone + Hash + Ord,
    V: 'static + Sync + Send + Clone,
{
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
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
        match self.map.pin().try_insert(key, value) {
            Ok(_) => Ok(()),
            Err(e) => Err(e.current.clone()),
        }
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
        removed
    }

    /// Removes `key`; returns the removed value.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Ord,
    {
        self.map.pin().remove(key).cloned()
    }

    /// A snapshot of all values (unordered).
    pub fn values(&self) -> Vec<V> {
        let map = self.map.pin();
        let mut out = Vec::with_capacity(map.len());
        out.extend(map.values().cloned());
        out
    }

    /// A snapshot of the values for which `keep` holds (unordered).
    pub fn values_where(&self, mut keep: impl FnMut(&V) -> bool) -> Vec<V> {
        let map = self.map.pin();
        map.values().filter(|v| keep(v)).cloned().collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the registry is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
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
        assert!(!r.replace_if("a", |v| *v == 5, 9));
        assert!(r.replace_if("a", |v| *v == 1, 9));
        assert_eq!(r.get("a"), Some(9));
        assert_eq!(r.remove_if("a", |v| *v == 1), None);
        assert_eq!(r.remove_if("a", |v| *v == 9), Some(9));
        assert!(r.is_empty());
        assert!(!r.replace_if("missing", |_| true, 1));
        r.insert_new("b".into(), 2).unwrap();
        assert_eq!(r.values(), vec![2]);
        assert_eq!(r.remove("b"), Some(2));
        assert_eq!(r.len(), 0);
    }
}
