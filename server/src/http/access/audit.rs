//! The audit log: every change (who, what, when, from which address, and
//! how it ended), failed sign-ins and token checks, and the rate limit
//! tripping. Written after the request is answered, never failing it;
//! events older than `PAAS_AUDIT_DAYS` are deleted, at most hourly, as new
//! ones are written.

use crate::store::{AuditRow, Store};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the old events are looked for.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// One event to record.
#[derive(Debug, Clone, Default)]
pub struct Event {
    /// Who: an email, a deploy token's description, or `anonymous`.
    pub actor: String,
    pub user_id: Option<String>,
    pub address: Option<std::net::IpAddr>,
    /// What, by [`super::policy`]'s name: `config.set`, `git.push`, `auth.failed`.
    pub action: String,
    pub app: Option<String>,
    /// The request (`PATCH /apps/shop/config-vars`) or what failed.
    pub detail: String,
    /// The answer's status.
    pub status: u16,
}

impl Event {
    /// A sign-in of `user` (a token made, or a dashboard session).
    pub fn login(user: &crate::store::UserRow, address: Option<std::net::IpAddr>, detail: impl Into<String>, status: u16) -> Self {
        Event {
            actor: user.email.clone(),
            user_id: Some(user.id.clone()),
            address,
            action: "auth.login".into(),
            app: None,
            detail: detail.into(),
            status,
        }
    }
}

pub struct AuditLog {
    store: Store,
    kept: Duration,
    pruned: Mutex<Option<Instant>>,
}

impl AuditLog {
    pub fn new(store: Store, kept: Duration) -> Self {
        Self { store, kept, pruned: Mutex::default() }
    }

    pub async fn record(&self, e: Event) {
        let row = AuditRow {
            id: crate::store::new_id(),
            at: crate::store::now(),
            actor: e.actor,
            user_id: e.user_id,
            address: e.address.map(|a| a.to_string()),
            action: e.action,
            app: e.app,
            detail: e.detail,
            status: e.status.into(),
        };
        if let Err(err) = self.store.append_audit(&row).await {
            tracing::error!(error = %err, action = %row.action, actor = %row.actor, "cannot write the audit log");
        }
        self.prune_if_due().await;
    }

    async fn prune_if_due(&self) {
        let due = {
            let mut pruned = self.pruned.lock().expect("audit poisoned");
            let now = Instant::now();
            let due = pruned.is_none_or(|at| now.duration_since(at) >= PRUNE_EVERY);
            if due {
                *pruned = Some(now);
            }
            due
        };
        if !due {
            return;
        }
        let before = chrono::Utc::now() - chrono::Duration::from_std(self.kept).unwrap_or(chrono::Duration::days(365));
        match self.store.prune_audit(&before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "audit events past PAAS_AUDIT_DAYS deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot prune the audit log"),
        }
    }
}
