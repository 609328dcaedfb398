//! Locks that outlive a panic.

use std::sync::{Mutex, MutexGuard};

/// `m`'s guard, even where a thread panicked holding it: what it guards is plain data, still
/// usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
