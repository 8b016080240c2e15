//! Dashboard sessions: made by signing in with an email and password (or
//! an API token), kept in the store (so a restarted server keeps everyone
//! signed in), known there only by the SHA-256 of a random id that only the
//! browser's HttpOnly cookie carries. Each has its CSRF token; the messages
//! to show on its next page are kept in memory.

use crate::crypto;
use crate::store::{Store, StoreResult};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// A signed-in browser, as a handler sees it.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie's id.
    pub key: String,
    /// Every form carries it; every POST must.
    pub csrf: String,
    pub user_id: String,
    /// The API token it was signed in with, if it was: revoking that token ends it.
    pub token_id: Option<String>,
}

pub struct Sessions {
    ttl: Duration,
    /// (kind, text) by session key: `ok` or `error`, shown once.
    flashes: Mutex<HashMap<String, Vec<(String, String)>>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, flashes: Mutex::default() }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session of the user (through the token `token_id`, if signed
    /// in with one); returns the cookie's id.
    pub async fn create(&self, store: &Store, user_id: &str, token_id: Option<&str>) -> StoreResult<String> {
        let id = hex::encode(crypto::random_bytes::<32>());
        let csrf = hex::encode(crypto::random_bytes::<32>());
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::hours(12));
        let expires = (chrono::Utc::now() + ttl).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        store.create_session(&crypto::hash_token(&id), user_id, token_id, &csrf, &expires).await?;
        Ok(id)
    }

    /// The live session a cookie's id names.
    pub async fn get(&self, store: &Store, id: &str) -> StoreResult<Option<Session>> {
        let key = crypto::hash_token(id);
        Ok(store.session(&key).await?.map(|row| Session { key, csrf: row.csrf, user_id: row.user_id, token_id: row.token_id }))
    }

    pub async fn remove(&self, store: &Store, key: &str) -> StoreResult<()> {
        self.flashes.lock().expect("sessions poisoned").remove(key);
        store.delete_session(key).await
    }

    /// A message for the session's next page.
    pub fn flash(&self, key: &str, kind: &str, text: impl Into<String>) {
        self.flashes.lock().expect("sessions poisoned").entry(key.to_owned()).or_default().push((kind.to_owned(), text.into()));
    }

    /// The messages waiting, once.
    pub fn take_flashes(&self, key: &str) -> Vec<(String, String)> {
        self.flashes.lock().expect("sessions poisoned").remove(key).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_are_stored_by_hash_and_expire() {
        let (store, _db) = crate::store::tests::sqlite_store().await;
        let user = store.create_user("a@example.com", None, false).await.unwrap();
        let s = Sessions::new(Duration::from_millis(300));
        let id = s.create(&store, &user.id, None).await.unwrap();
        let session = s.get(&store, &id).await.unwrap().unwrap();
        assert_ne!(session.key, id, "the id itself is never kept");
        assert_eq!(session.user_id, user.id);
        assert!(s.get(&store, "not-an-id").await.unwrap().is_none());
        s.flash(&session.key, "ok", "hello");
        assert_eq!(s.take_flashes(&session.key), vec![("ok".to_owned(), "hello".to_owned())]);
        assert!(s.take_flashes(&session.key).is_empty());
        // A second Sessions over the same store (a restarted server) knows it.
        assert!(Sessions::new(Duration::from_secs(1)).get(&store, &id).await.unwrap().is_some());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while s.get(&store, &id).await.unwrap().is_some() {
            assert!(std::time::Instant::now() < deadline, "never expired");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let id = s.create(&store, &user.id, None).await.unwrap();
        let key = s.get(&store, &id).await.unwrap().unwrap().key;
        s.remove(&store, &key).await.unwrap();
        assert!(s.get(&store, &id).await.unwrap().is_none(), "signed out");
    }
}
