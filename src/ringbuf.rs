//! A bounded byte ring with a monotonic offset: the storage behind every process output stream.
//!
//! One `parking_lot::Mutex` guards the bytes (a write must be atomic with its wraparound) and an
//! `AtomicBool` says whether the ring ever dropped bytes, so readers can ask cheaply. Storage
//! grows lazily up to the cap, so an idle process costs almost nothing. Every byte ever written
//! has an absolute offset (`0..total`); a reader holding offset `N` asks for "everything since
//! `N`" and learns how many bytes between `N` and the oldest byte still held were lost.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

/// Default capacity per stream: 256 KiB.
pub const DEFAULT_CAP: usize = 256 * 1024;

/// Smallest allocation once the first byte arrives.
const MIN_ALLOC: usize = 4096;

/// A bounded byte ring. See the module docs.
#[derive(Debug)]
pub struct RingBuffer {
    inner: Mutex<Inner>,
    overflow: AtomicBool,
    /// Mirror of `Inner::total`, readable without the lock.
    total: AtomicU64,
    cap: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// Holds `min(total, cap)` bytes. While `buf.len() < cap` the bytes are in order; once
    /// full, the oldest byte is at `head` and the newest just before it.
    buf: Vec<u8>,
    head: usize,
    total: u64,
    /// The byte just before the oldest one held (meaningful once bytes were dropped).
    before: u8,
}

/// The answer of [`RingBuffer::read_since`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunk {
    /// The bytes, oldest first.
    pub data: Vec<u8>,
    /// Absolute offset of `data[0]`.
    pub start: u64,
    /// Absolute offset just after the last byte (the ring's total at read time).
    pub end: u64,
    /// Bytes between the requested offset and `start` that the ring no longer holds.
    pub lost: u64,
    /// The byte just before `data[0]`, when there is one (so a reader can tell whether
    /// `data` starts at a line boundary).
    pub before: Option<u8>,
}

impl RingBuffer {
    /// An empty ring that holds at most `cap` bytes (at least 1). Nothing is allocated yet.
    pub fn new(cap: usize) -> Self {
        RingBuffer {
            inner: Mutex::new(Inner::default()),
            overflow: AtomicBool::new(false),
            total: AtomicU64::new(0),
            cap: cap.max(1),
        }
    }

    /// The capacity in bytes.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Total bytes ever written: the offset the next byte will get. Lock-free.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Acquire)
    }

    /// Whether bytes were ever dropped. Lock-free.
    pub fn overflowed(&self) -> bool {
        self.overflow.load(Ordering::Acquire)
    }

    /// Bytes currently allocated for storage (for memory accounting).
    pub fn allocated(&self) -> usize {
        self.inner.lock().buf.capacity()
    }

    /// Appends `data`, dropping the oldest bytes beyond the cap. Returns the new total.
    pub fn write(&self, data: &[u8]) -> u64 {
        self.write_parts(&[data])
    }

    /// Appends several slices as one atomic write (no other write lands between them).
    pub fn write_parts(&self, parts: &[&[u8]]) -> u64 {
        let mut inner = self.inner.lock();
        let mut dropped = false;
        for part in parts {
            dropped |= inner.push(part, self.cap);
        }
        let total = inner.total;
        drop(inner);
        if dropped {
            self.overflow.store(true, Ordering::Release);
        }
        // Two writers can leave the lock in one order and get here in the other: never let the
        // published end offset go backwards.
        self.total.fetch_max(total, Ordering::Release);
        total
    }

    /// Everything still held from absolute offset `since` on. An offset before the oldest
    /// byte held reports the gap in `lost`; an offset past the end gives an empty chunk.
    pub fn read_since(&self, since: u64) -> Chunk {
        let inner = self.inner.lock();
        let end = inner.total;
        let first = end - inner.buf.len() as u64;
        let from = since.clamp(first, end);
        let lost = first.saturating_sub(since);
        let skip = (from - first) as usize;
        let mut data = Vec::with_capacity((end - from) as usize);
        inner.copy_from(skip, &mut data);
        let before = if skip > 0 {
            inner.byte_at(skip - 1)
        } else if first > 0 {
            Some(inner.before)
        } else {
            None
        };
        Chunk {
            data,
            start: from,
            end,
            lost,
            before,
        }
    }

    /// The newest `n` bytes (or fewer if fewer are held).
    pub fn tail(&self, n: usize) -> Chunk {
        let end = self.total();
        let since = end.saturating_sub(n as u64);
        let mut chunk = self.read_since(since);
        chunk.lost = 0;
        chunk
    }

    /// Everything still held.
    pub fn snapshot(&self) -> Chunk {
        self.read_since(0)
    }
}

impl Default for RingBuffer {
    fn default() -> Self {
        RingBuffer::new(DEFAULT_CAP)
    }
}

impl Inner {
    /// Appends one slice; returns whether bytes were dropped.
    fn push(&mut self, data: &[u8], cap: usize) -> bool {
        if data.is_empty() {
            return false;
        }
        self.total += data.len() as u64;
        if data.len() >= cap {
            // Only the tail survives; lay it out in order.
            let dropped = data.len() > cap || !self.buf.is_empty();
            if data.len() > cap {
                self.before = data[data.len() - cap - 1];
            } else if let Some(b) = self.byte_at(self.buf.len().wrapping_sub(1)) {
                self.before = b;
            }
            self.grow_to(cap, cap);
            self.buf.clear();
            self.buf.extend_from_slice(&data[data.len() - cap..]);
            self.head = 0;
            return dropped;
        }
        let mut rest = data;
        if self.buf.len() < cap {
            let n = rest.len().min(cap - self.buf.len());
            self.grow_to(self.buf.len() + n, cap);
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if rest.is_empty() {
                return false;
            }
        }
        // Full: overwrite from `head`, wrapping once at most (rest.len() < cap).
        let new_head = (self.head + rest.len()) % cap;
        self.before = self.buf[(new_head + cap - 1) % cap];
        let first = rest.len().min(cap - self.head);
        self.buf[self.head..self.head + first].copy_from_slice(&rest[..first]);
        let second = rest.len() - first;
        self.buf[..second].copy_from_slice(&rest[first..]);
        self.head = new_head;
        true
    }

    /// Makes room for `needed` bytes without ever allocating more than `cap`.
    fn grow_to(&mut self, needed: usize, cap: usize) {
        let have = self.buf.capacity();
        if needed <= have {
            return;
        }
        let want = needed.max(have * 2).max(MIN_ALLOC).min(cap);
        self.buf.reserve_exact(want - self.buf.len());
    }

    /// The held byte at logical index `i` (0 = oldest).
    fn byte_at(&self, i: usize) -> Option<u8> {
        let len = self.buf.len();
        (i < len).then(|| self.buf[(self.head + i) % len])
    }

    /// Copies the held bytes, skipping the oldest `skip`, into `out`.
    fn copy_from(&self, skip: usize, out: &mut Vec<u8>) {
        let len = self.buf.len();
        if skip >= len {
            return;
        }
        // Logical order: buf[head..] then buf[..head] (head is 0 until the ring wraps).
        let (a, b) = self.buf.split_at(self.head);
        let (older, newer) = (b, a);
        if skip < older.len() {
            out.extend_from_slice(&older[skip..]);
            out.extend_from_slice(newer);
        } else {
            out.extend_from_slice(&newer[skip - older.len()..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_check(cap: usize, writes: &[Vec<u8>]) {
        let ring = RingBuffer::new(cap);
        let mut all = Vec::new();
        for w in writes {
            ring.write(w);
            all.extend_from_slice(w);
            let held = all.len().min(cap);
            let snap = ring.snapshot();
            assert_eq!(snap.data, all[all.len() - held..], "cap {cap}");
            assert_eq!(snap.end, all.len() as u64);
            assert_eq!(snap.lost, (all.len() - held) as u64);
            assert_eq!(ring.overflowed(), all.len() > cap);
            assert!(ring.allocated() <= cap);
            // Every cursor gives the right suffix and gap.
            for since in [
                0,
                all.len() / 2,
                all.len().saturating_sub(3),
                all.len(),
                all.len() + 5,
            ] {
                let c = ring.read_since(since as u64);
                let first = all.len() - held;
                let from = since.clamp(first, all.len());
                assert_eq!(c.data, all[from..]);
                assert_eq!(c.start, from as u64);
                assert_eq!(c.lost, first.saturating_sub(since) as u64);
                assert_eq!(c.before, from.checked_sub(1).map(|i| all[i]));
            }
        }
    }

    #[test]
    fn small_writes_wrap() {
        let writes: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; (i as usize % 7) + 1]).collect();
        model_check(16, &writes);
        model_check(1, &writes);
        model_check(1000, &writes);
    }

    #[test]
    fn write_larger_than_cap_keeps_tail() {
        let ring = RingBuffer::new(8);
        ring.write(b"ab");
        ring.write(b"0123456789");
        assert_eq!(ring.snapshot().data, b"23456789");
        assert!(ring.overflowed());
        assert_eq!(ring.total(), 12);
        let c = ring.read_since(1);
        assert_eq!(c.lost, 3);
        assert_eq!(c.start, 4);
    }

    #[test]
    fn exact_cap_write_on_empty_ring_is_not_overflow() {
        let ring = RingBuffer::new(4);
        ring.write(b"abcd");
        assert!(!ring.overflowed());
        ring.write(b"e");
        assert!(ring.overflowed());
        assert_eq!(ring.snapshot().data, b"bcde");
    }

    #[test]
    fn lazy_allocation() {
        let ring = RingBuffer::new(DEFAULT_CAP);
        assert_eq!(ring.allocated(), 0);
        ring.write(b"hello");
        assert!(ring.allocated() <= MIN_ALLOC);
        ring.write(&vec![b'x'; DEFAULT_CAP * 3]);
        assert_eq!(ring.allocated(), DEFAULT_CAP);
    }

    #[test]
    fn write_parts_is_one_write() {
        let ring = RingBuffer::new(64);
        ring.write_parts(&[b"ab", b"", b"cd\n"]);
        assert_eq!(ring.snapshot().data, b"abcd\n");
        assert_eq!(ring.tail(2).data, b"d\n");
    }

    proptest::proptest! {
        #[test]
        fn matches_model(cap in 1usize..64, writes in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..100), 0..20)) {
            model_check(cap, &writes);
        }
    }
}
