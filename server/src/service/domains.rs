//! Domains: the app's own `APP.PAAS_DOMAIN` and its custom domains. A
//! hostname (or `*.example.com`) belongs to one app; the store says so
//! first, then the router's table.

use paas_wire::ErrorId;
use crate::http::{ApiError, ApiResult, AppState};
use crate::store::{AppRow, StoreError};
use axum::http::StatusCode;
use paas_wire::{Domain, Hostname};

pub async fn list(state: &AppState, app: &AppRow) -> ApiResult<Vec<Domain>> {
    let mut out = vec![Domain {
        hostname: format!("{}.{}", app.name, state.settings.server.domain),
        kind: "paas".into(),
        created_at: app.created_at.clone(),
    }];
    for (hostname, created_at) in state.store.domains(&app.id).await? {
        out.push(Domain { hostname, kind: "custom".into(), created_at });
    }
    Ok(out)
}

pub async fn add(state: &AppState, app: &AppRow, hostname: &str) -> ApiResult<Domain> {
    let hostname = Hostname::parse(hostname.trim().trim_end_matches('.'))?;
    let platform = &state.settings.server.domain;
    let under = hostname.wildcard_of().unwrap_or(hostname.as_str());
    if under == platform.as_str() || under.ends_with(&format!(".{platform}")) {
        return Err(ApiError::unprocessable(
            ErrorId::ReservedDomain,
            format!("{hostname} is under the platform's own domain {platform}, where apps answer by name already: add a domain of your own"),
        ));
    }
    let created_at = match state.store.add_domain(&app.id, hostname.as_str()).await {
        Ok(created) => created,
        Err(StoreError::Conflict) => {
            let owner = state.store.domain_owner(hostname.as_str()).await?.unwrap_or_default();
            let hint = if owner == app.name {
                format!("{} has it already", app.name)
            } else {
                format!("it belongs to another app ({owner}); remove it there first with `paas domains:remove {hostname} -a {owner}`")
            };
            return Err(ApiError::new(StatusCode::CONFLICT, ErrorId::DomainTaken, format!("{hostname} cannot be added to {}: {hint}", app.name)));
        }
        Err(e) => return Err(e.into()),
    };
    state.domains.set(&hostname, &app.name);
    tracing::info!(app = %app.name, domain = %hostname, "domain added");
    Ok(Domain { hostname: hostname.to_string(), kind: "custom".into(), created_at })
}

pub async fn remove(state: &AppState, app: &AppRow, hostname: &str) -> ApiResult<Domain> {
    let hostname = Hostname::parse(hostname)?;
    if !state.store.remove_domain(&app.id, hostname.as_str()).await? {
        return Err(ApiError::not_found(format!("{} has no domain {hostname}: see `paas domains -a {}`", app.name, app.name)));
    }
    state.domains.remove(&hostname);
    // Its certificate goes with it.
    state.store.remove_cert(&app.id, hostname.as_str()).await?;
    state.certs.remove(hostname.as_str());
    tracing::info!(app = %app.name, domain = %hostname, "domain removed");
    Ok(Domain { hostname: hostname.to_string(), kind: "custom".into(), created_at: String::new() })
}
