//! People: signing in for a token (`paas login`), who one is (`paas
//! whoami`), signing out, users (platform admins), who has which role on
//! an app (`paas access`), and the audit log (`paas audit`).

use crate::http::access::Principal;
use crate::http::{ApiError, ApiResult, AppPath, AppState, Json};
use crate::service::access as service;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post};
use axum::Extension;
use paas_wire::{AccessChange, Account, AuditEvent, Collaborator, Login, TokenCreated, User, UserCreate};

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/auth/token", delete(logout))
        .route("/account", get(account))
        .route("/users", get(users).post(create_user))
        .route("/users/{email}", delete(remove_user))
        .route("/audit", get(audit))
        .route("/apps/{app}/access", get(list).post(add))
        .route("/apps/{app}/access/{email}", patch(update).delete(remove))
}

/// The routes that need no credential: signing in.
pub fn public_router() -> axum::Router<AppState> {
    axum::Router::new().route("/auth/tokens", post(login))
}

type Peer = Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

/// Email and password for a new token of that user.
async fn login(State(state): State<AppState>, peer: Peer, headers: axum::http::HeaderMap, Json(body): Json<Login>) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let address = crate::http::access::client_address(&state, &headers, peer.map(|Extension(c)| c.0));
    let user = service::sign_in(&state, &body.email, &body.password, address).await?;
    let description = super::tokens::description(body.description.as_deref())?.unwrap_or("paas login");
    let new = crate::store::NewToken { name: "login", description: Some(description), user_id: Some(&user.id), ..Default::default() };
    let (row, value) = state.store.create_token_with(&new).await?;
    state.audit.record(crate::http::access::audit::Event::login(&user, address, format!("token {} made", row.id), 201)).await;
    Ok((StatusCode::CREATED, Json(TokenCreated { token: super::tokens::to_wire(&row, &user.email, None), value })))
}

/// Revokes the token the request came with.
async fn logout(State(state): State<AppState>, Extension(principal): Extension<Principal>) -> ApiResult<StatusCode> {
    if let Some(t) = &principal.token {
        state.store.revoke_token(&t.id).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn account(State(state): State<AppState>, Extension(principal): Extension<Principal>) -> ApiResult<Json<Account>> {
    let app = match principal.deploy_app() {
        Some(id) => state.store.app_by_id(id).await?.map(|a| a.name),
        None => None,
    };
    let token = principal.token.as_ref().map(|t| super::tokens::to_wire(t, &principal.user.email, app.as_deref()));
    Ok(Json(Account { user: service::user_to_wire(&principal.user), token }))
}

async fn users(State(state): State<AppState>) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(service::users(&state).await?))
}

async fn create_user(State(state): State<AppState>, Json(body): Json<UserCreate>) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(service::create_user(&state, &body.email, &body.password, body.admin).await?)))
}

async fn remove_user(State(state): State<AppState>, Path(email): Path<String>) -> ApiResult<StatusCode> {
    service::remove_user(&state, &email).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Deserialize)]
struct AuditQuery {
    app: Option<String>,
    /// How many, newest first (at most 1000).
    #[serde(default)]
    limit: Option<i64>,
}

async fn audit(State(state): State<AppState>, Query(q): Query<AuditQuery>) -> ApiResult<Json<Vec<AuditEvent>>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state.store.audit(q.app.as_deref().filter(|a| !a.is_empty()), limit).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| AuditEvent {
                at: r.at,
                actor: r.actor,
                address: r.address,
                action: r.action,
                app: r.app,
                detail: r.detail,
                status: u16::try_from(r.status).unwrap_or(0),
            })
            .collect(),
    ))
}

async fn list(State(state): State<AppState>, AppPath(app): AppPath) -> ApiResult<Json<Vec<Collaborator>>> {
    Ok(Json(service::list(&state, &app).await?))
}

async fn add(State(state): State<AppState>, AppPath(app): AppPath, Json(body): Json<AccessChange>) -> ApiResult<(StatusCode, Json<Collaborator>)> {
    if body.email.trim().is_empty() {
        return Err(ApiError::bad_request("say whose access: give an email, as in `paas access:add alice@example.com --role developer`"));
    }
    Ok((StatusCode::CREATED, Json(service::set(&state, &app, &body.email, &body.role, false).await?)))
}

async fn update(
    State(state): State<AppState>,
    AppPath(app): AppPath,
    Path((_, email)): Path<(String, String)>,
    Json(body): Json<AccessChange>,
) -> ApiResult<Json<Collaborator>> {
    Ok(Json(service::set(&state, &app, &email, &body.role, true).await?))
}

async fn remove(State(state): State<AppState>, AppPath(app): AppPath, Path((_, email)): Path<(String, String)>) -> ApiResult<StatusCode> {
    service::remove(&state, &app, &email).await?;
    Ok(StatusCode::NO_CONTENT)
}
