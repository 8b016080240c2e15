//! One async mutex per key (per app): builds of one app queue behind each
//! other, as do reconcile passes, while different apps proceed in parallel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct KeyedLocks {
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl KeyedLocks {
    /// The lock for `key`; hold its guard for the critical section.
    pub fn get(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().expect("lock map poisoned");
        locks.entry(key.to_owned()).or_default().clone()
    }
}
