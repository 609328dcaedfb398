//! A bounded cache of freed host buffers, by length. A training loop allocates the same sizes
//! every step; a buffer from the cache costs one fill, where fresh memory from the OS costs a
//! page fault and a cleared page per 4 KiB (the larger part of a convolution's backward pass
//! before this cache).

use std::collections::HashMap;
use std::sync::Mutex;

/// Buffers shorter than this (64 KiB) come from the allocator, which serves them cheaply.
const MIN_LEN: usize = 1 << 14;
/// The most the cache holds, in bytes, and the most buffers of one length.
const MAX_BYTES: usize = 1 << 29;
const MAX_PER_LEN: usize = 8;

struct Cache {
    by_len: HashMap<usize, Vec<Vec<f32>>>,
    bytes: usize,
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

/// A cached buffer of exactly `len` elements (contents unspecified), if one is free.
pub(super) fn take(len: usize) -> Option<Vec<f32>> {
    if len < MIN_LEN {
        return None;
    }
    let mut guard = CACHE.lock().ok()?;
    let cache = guard.as_mut()?;
    let v = cache.by_len.get_mut(&len)?.pop()?;
    cache.bytes -= len * 4;
    Some(v)
}

/// Keeps a buffer that is no longer used, unless the cache is full.
pub(crate) fn give(v: Vec<f32>) {
    let len = v.len();
    if len < MIN_LEN || v.capacity() != len {
        return;
    }
    let Ok(mut guard) = CACHE.lock() else {
        return;
    };
    let cache = guard.get_or_insert_with(|| Cache { by_len: HashMap::new(), bytes: 0 });
    let slot = cache.by_len.entry(len).or_default();
    if cache.bytes + len * 4 <= MAX_BYTES && slot.len() < MAX_PER_LEN {
        slot.push(v);
        cache.bytes += len * 4;
    }
}

/// Frees every cached buffer; returns the bytes released.
pub fn release_cached_host_memory() -> usize {
    let Ok(mut guard) = CACHE.lock() else {
        return 0;
    };
    guard.take().map_or(0, |c| c.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_is_taken_back_once_and_refilled_by_host_vec() {
        // a length no other test allocates
        let len = MIN_LEN + 12_347;
        give(vec![7.0; len]);
        let v = take(len).expect("the cached buffer");
        assert_eq!(v.len(), len);
        assert!(take(len).is_none());
        give(v);
        let z = super::super::host_vec(len, 0.5, "test").unwrap();
        assert!(z.iter().all(|&x| x == 0.5));
        assert!(take(len).is_none(), "host_vec took the cached buffer");
        // small buffers are not kept
        give(vec![1.0; 16]);
        assert!(take(16).is_none());
    }
}
