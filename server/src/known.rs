//! The names of the apps that exist, in memory: what an unauthenticated
//! request naming an app (the router's `Host`) is checked against, so an
//! unknown name costs a lookup and never allocates a log, a file or a
//! history. The store keeps it (filled when it opens, changed as apps are
//! created and deleted); the log router and the router only read it.

use std::sync::{Arc, RwLock};

/// See the module docs. Cheap to clone; every clone is the same set.
#[derive(Clone, Default, Debug)]
pub struct KnownApps(Arc<RwLock<crate::FastSet<String>>>);

impl KnownApps {
    pub fn contains(&self, app: &str) -> bool {
        self.0.read().expect("known apps poisoned").contains(app)
    }

    pub fn insert(&self, app: &str) {
        self.0.write().expect("known apps poisoned").insert(app.to_owned());
    }

    pub fn remove(&self, app: &str) {
        self.0.write().expect("known apps poisoned").remove(app);
    }

    pub fn replace_all(&self, apps: impl IntoIterator<Item = String>) {
        *self.0.write().expect("known apps poisoned") = apps.into_iter().collect();
    }
}
