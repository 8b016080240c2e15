//! Who is acting, for the code a request runs: set once per request by the
//! access middleware (and by the build a push's hook starts, from the
//! pusher it names), read where a release is appended (its "by") and
//! where the audit log is written. A task spawned from a request does not
//! inherit it: such a task carries the actor it was given ([`Actor::scope`]).

use std::future::Future;

tokio::task_local! {
    static ACTOR: Actor;
}

/// Who is acting: how the log names them, and the user's id if a user.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub user_id: Option<String>,
}

impl Actor {
    /// The actor of the running request, if any.
    pub fn current() -> Option<Actor> {
        ACTOR.try_with(Clone::clone).ok()
    }

    /// Runs `fut` with `self` as the actor.
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        ACTOR.scope(self, fut).await
    }
}

/// Who made each push that is under way, by a random id the hook is given
/// and hands back: the build it starts runs as them (its release's "by").
#[derive(Default)]
pub struct Pushes(std::sync::Mutex<std::collections::HashMap<String, Actor>>);

impl Pushes {
    pub fn begin(self: &std::sync::Arc<Self>, actor: Actor) -> PushGuard {
        let id = hex::encode(crate::crypto::random_bytes::<16>());
        self.0.lock().expect("pushes poisoned").insert(id.clone(), actor);
        PushGuard { pushes: self.clone(), id }
    }

    pub fn actor(&self, id: &str) -> Option<Actor> {
        self.0.lock().expect("pushes poisoned").get(id).cloned()
    }
}

/// Forgets a push when its receive-pack ends.
pub struct PushGuard {
    pushes: std::sync::Arc<Pushes>,
    pub id: String,
}

impl Drop for PushGuard {
    fn drop(&mut self) {
        self.pushes.0.lock().expect("pushes poisoned").remove(&self.id);
    }
}
