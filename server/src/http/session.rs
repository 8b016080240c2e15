//! Dashboard sessions: made by signing in with an API token, held in
//! memory (a restarted server signs everyone out), known by the SHA-256 of
//! a random id that only the browser's HttpOnly cookie carries. Each has
//! its CSRF token and the messages to show on the next page.

use crate::crypto;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A signed-in browser, as a handler sees it.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie's id.
    pub key: String,
    /// Every form carries it; every POST must.
    pub csrf: String,
    /// The API token it was signed in with: revoking that token ends it.
    pub token_id: String,
}

struct Entry {
    csrf: String,
    token_id: String,
    expires: Instant,
    /// (kind, text): `ok` or `error`, shown once.
    flashes: Vec<(String, String)>,
}

pub struct Sessions {
    ttl: Duration,
    map: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, map: Mutex::default() }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session of the token `token_id`; returns the cookie's id.
    pub fn create(&self, token_id: &str) -> String {
        let id = hex::encode(crypto::random_bytes::<32>());
        let csrf = hex::encode(crypto::random_bytes::<32>());
        let mut map = self.map.lock().expect("sessions poisoned");
        let now = Instant::now();
        map.retain(|_, e| e.expires > now);
        map.insert(crypto::hash_token(&id), Entry { csrf, token_id: token_id.to_owned(), expires: now + self.ttl, flashes: Vec::new() });
        id
    }

    /// The live session a cookie's id names.
    pub fn get(&self, id: &str) -> Option<Session> {
        let key = crypto::hash_token(id);
        let map = self.map.lock().expect("sessions poisoned");
        let e = map.get(&key).filter(|e| e.expires > Instant::now())?;
        Some(Session { key, csrf: e.csrf.clone(), token_id: e.token_id.clone() })
    }

    pub fn remove(&self, key: &str) {
        self.map.lock().expect("sessions poisoned").remove(key);
    }

    /// A message for the session's next page.
    pub fn flash(&self, key: &str, kind: &str, text: impl Into<String>) {
        if let Some(e) = self.map.lock().expect("sessions poisoned").get_mut(key) {
            e.flashes.push((kind.to_owned(), text.into()));
        }
    }

    /// The messages waiting, once.
    pub fn take_flashes(&self, key: &str) -> Vec<(String, String)> {
        self.map.lock().expect("sessions poisoned").get_mut(key).map(|e| std::mem::take(&mut e.flashes)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_are_known_only_by_their_id() {
        let s = Sessions::new(Duration::from_millis(50));
        let id = s.create("t1");
        let session = s.get(&id).unwrap();
        assert_ne!(session.key, id, "the id itself is never kept");
        assert_eq!(session.token_id, "t1");
        assert!(s.get("not-an-id").is_none());
        s.flash(&session.key, "ok", "hello");
        assert_eq!(s.take_flashes(&session.key), vec![("ok".to_owned(), "hello".to_owned())]);
        assert!(s.take_flashes(&session.key).is_empty());
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.get(&id).is_none(), "expired");
    }
}
