//! `/apps/{app}/certs`: TLS certificates for the app's custom domains,
//! served by the router's HTTPS listener by SNI. A certificate is checked
//! (it parses, the key is its own) and kept for each of the app's domains
//! it is valid for; its private key is sealed like config vars.

use paas_wire::ErrorId;
use crate::http::{AppPath, ApiError, ApiResult, AppState, Json};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use paas_wire::{Cert, CertCreate, Hostname};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/apps/{app}/certs", get(list).post(add))
        .route("/apps/{app}/certs/auto", axum::routing::post(auto_enable).delete(auto_disable))
        .route("/apps/{app}/certs/{hostname}", delete(remove))
}

async fn list(State(state): State<AppState>, app: AppPath) -> ApiResult<Json<Vec<Cert>>> {
    let certs = state.store.certs(&app.id).await?;
    Ok(Json(certs.into_iter().map(|c| Cert { hostname: c.hostname, created_at: c.created_at }).collect()))
}

async fn add(
    State(state): State<AppState>,
    app: AppPath,
    Json(body): Json<CertCreate>,
) -> ApiResult<(StatusCode, Json<Vec<Cert>>)> {
    let key = crate::tls::certified_key(&body.certificate_chain, &body.private_key)
        .map_err(|e| ApiError::unprocessable(ErrorId::InvalidCertificate, e))?;
    let domains: Vec<String> = state.store.domains(&app.id).await?.into_iter().map(|(h, _)| h).collect();
    let covered: Vec<&String> = domains.iter().filter(|d| crate::tls::covers(&key, d)).collect();
    if covered.is_empty() {
        return Err(ApiError::unprocessable(
            ErrorId::CertificateCoversNoDomain,
            if domains.is_empty() {
                format!("{} has no custom domains: add one first with `paas domains:add www.example.com -a {}`", app.name, app.name)
            } else {
                format!("the certificate is valid for none of {}'s domains ({})", app.name, domains.join(", "))
            },
        ));
    }
    let mut out = Vec::new();
    for hostname in covered {
        let sealed = crate::tls::seal_key(&state.cipher, &app.id, hostname, &body.private_key);
        state.store.put_cert(&app.id, hostname, &body.certificate_chain, &sealed, "manual").await?;
        state.certs.set(hostname, key.clone());
        tracing::info!(app = %app.name, domain = %hostname, "certificate added");
        out.push(Cert { hostname: hostname.clone(), created_at: crate::store::now() });
    }
    Ok((StatusCode::CREATED, Json(out)))
}

async fn remove(State(state): State<AppState>, app: AppPath, Path((_, hostname)): Path<(String, String)>) -> ApiResult<Json<Cert>> {
    let hostname = Hostname::parse(&hostname)?;
    if !state.store.remove_cert(&app.id, hostname.as_str()).await? {
        return Err(ApiError::not_found(format!("{} has no certificate for {hostname}: see `paas certs -a {}`", app.name, app.name)));
    }
    state.certs.remove(hostname.as_str());
    Ok(Json(Cert { hostname: hostname.to_string(), created_at: String::new() }))
}

/// Turns automatic certificates on and gets one now for each of the app's
/// custom domains that lacks one (the renewal loop keeps them and covers
/// domains added later).
async fn auto_enable(State(state): State<AppState>, app: AppPath) -> ApiResult<(StatusCode, Json<Vec<Cert>>)> {
    state.store.set_acme(&app.id, true).await?;
    let mine = state.acme.renew_app(&app.id).await.map_err(ApiError::internal)?;
    if !mine.is_empty() {
        let said: Vec<String> = mine.iter().map(|(h, e)| format!("{h}: {e}")).collect();
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorId::AcmeFailed,
            format!("automatic certificates are on for {}, but these could not be issued yet (retried hourly):\n{}", app.name, said.join("\n")),
        ));
    }
    let certs = state.store.certs(&app.id).await?;
    Ok((StatusCode::CREATED, Json(certs.into_iter().map(|c| Cert { hostname: c.hostname, created_at: c.created_at }).collect())))
}

async fn auto_disable(State(state): State<AppState>, app: AppPath) -> ApiResult<StatusCode> {
    state.store.set_acme(&app.id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
