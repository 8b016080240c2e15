//! People and roles, as the API and the dashboard both change them: the
//! apps a principal sees, who has access to an app, users, signing in with
//! a password. The rules that protect the last admin live here, once.

use crate::http::access::{self, Principal, Role};
use crate::http::{ApiError, ApiResult, AppState};
use crate::store::{AppRow, StoreError, UserRow};
use paas_wire::{Collaborator, ErrorId, User};

pub fn user_to_wire(u: &UserRow) -> User {
    User { email: u.email.clone(), admin: u.is_admin(), created_at: u.created_at.clone(), has_password: u.password_hash.is_some() }
}

/// The apps `principal` has a role on (every app, for a platform admin).
pub async fn visible_apps(state: &AppState, principal: &Principal) -> ApiResult<Vec<AppRow>> {
    let apps = state.store.list_apps().await?;
    if principal.is_admin() {
        return Ok(apps);
    }
    let mine: std::collections::HashSet<String> = state.store.apps_of_user(&principal.user.id).await?.into_iter().collect();
    Ok(apps.into_iter().filter(|a| mine.contains(&a.id)).collect())
}

async fn user_named(state: &AppState, email: &str) -> ApiResult<UserRow> {
    let email = access::parse_email(email)?;
    state.store.user_by_email(&email).await?.ok_or_else(|| {
        ApiError::not_found(format!("there is no user {email}: a platform admin adds people with `paas users:create {email}`"))
    })
}

pub async fn list(state: &AppState, app: &AppRow) -> ApiResult<Vec<Collaborator>> {
    Ok(state
        .store
        .app_roles(&app.id)
        .await?
        .into_iter()
        .map(|r| Collaborator { email: r.email, role: r.role, created_at: r.created_at })
        .collect())
}

/// Gives `email` a role on the app: `update` says whether they must have
/// one already (`access:update`) or must not (`access:add`).
pub async fn set(state: &AppState, app: &AppRow, email: &str, role: &str, update: bool) -> ApiResult<Collaborator> {
    let role = Role::parse(role)?;
    let user = user_named(state, email).await?;
    let had = state.store.app_role(&app.id, &user.id).await?;
    match (&had, update) {
        (Some(r), false) => {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                ErrorId::Conflict,
                format!("{} is a {r} of {} already: change it with `paas access:update {} --role {role}`", user.email, app.name, user.email),
            ))
        }
        (None, true) => {
            return Err(ApiError::not_found(format!(
                "{} has no role on {}: add one with `paas access:add {} --role {role}`",
                user.email, app.name, user.email
            )))
        }
        _ => {}
    }
    if had.as_deref() == Some("admin") && role != Role::Admin {
        ensure_not_last_admin(state, app, &user).await?;
    }
    state.store.set_app_role(&app.id, &user.id, role.as_str()).await?;
    Ok(Collaborator { email: user.email, role: role.to_string(), created_at: crate::store::now() })
}

pub async fn remove(state: &AppState, app: &AppRow, email: &str) -> ApiResult<String> {
    let user = user_named(state, email).await?;
    match state.store.app_role(&app.id, &user.id).await?.as_deref() {
        None => return Err(ApiError::not_found(format!("{} has no role on {}: `paas access -a {}` lists who has", user.email, app.name, app.name))),
        Some("admin") => ensure_not_last_admin(state, app, &user).await?,
        Some(_) => {}
    }
    state.store.remove_app_role(&app.id, &user.id).await?;
    Ok(user.email)
}

async fn ensure_not_last_admin(state: &AppState, app: &AppRow, user: &UserRow) -> ApiResult<()> {
    let admins = state.store.app_roles(&app.id).await?.into_iter().filter(|r| r.role == "admin").count();
    if admins <= 1 {
        return Err(ApiError::unprocessable(
            ErrorId::LastAdmin,
            format!("{} is the last admin of {}: make someone else its admin first (`paas access:add EMAIL --role admin`)", user.email, app.name),
        ));
    }
    Ok(())
}

// ---- users

pub async fn users(state: &AppState) -> ApiResult<Vec<User>> {
    Ok(state.store.users().await?.iter().map(user_to_wire).collect())
}

pub async fn create_user(state: &AppState, email: &str, password: &str, admin: bool) -> ApiResult<User> {
    let email = access::parse_email(email)?;
    let hash = access::hash_password(password)?;
    match state.store.create_user(&email, Some(&hash), admin).await {
        Ok(u) => Ok(user_to_wire(&u)),
        Err(StoreError::Conflict) => Err(ApiError::new(axum::http::StatusCode::CONFLICT, ErrorId::Conflict, format!("there is a user {email} already"))),
        Err(e) => Err(e.into()),
    }
}

/// Removes a user, unless they are the platform's last admin or the last
/// admin of an app.
pub async fn remove_user(state: &AppState, email: &str) -> ApiResult<String> {
    let user = user_named(state, email).await?;
    if user.is_admin() {
        let admins = state.store.users().await?.iter().filter(|u| u.is_admin()).count();
        if admins <= 1 {
            return Err(ApiError::unprocessable(
                ErrorId::LastAdmin,
                format!("{} is the platform's last admin: make another first (`paas-server user:create EMAIL --admin`)", user.email),
            ));
        }
    }
    let sole = state.store.apps_only_admin_of(&user.id).await?;
    if !sole.is_empty() {
        return Err(ApiError::unprocessable(
            ErrorId::LastAdmin,
            format!(
                "{} is the last admin of {}: give each another admin first (`paas access:add EMAIL --role admin -a APP`)",
                user.email,
                sole.join(", ")
            ),
        ));
    }
    state.store.delete_user(&user.id).await?;
    Ok(user.email)
}

/// Signs in with an email and password: the user, or a 401 (counted
/// against the address and the email; past the limit, a 429).
pub async fn sign_in(state: &AppState, email: &str, password: &str, address: Option<std::net::IpAddr>) -> ApiResult<UserRow> {
    let addr_key = access::limits::address_key(address);
    let user = match access::parse_email(email) {
        Ok(e) => state.store.user_by_email(&e).await?,
        Err(_) => None,
    };
    // Counted per user only for users that exist: an email nobody has is
    // not kept anywhere.
    let user_key = user.as_ref().map(|u| access::limits::user_key(&u.email));
    let keys: Vec<&str> = std::iter::once(addr_key.as_str()).chain(user_key.as_deref()).collect();
    if let Some(seconds) = state.failures.refused(&keys) {
        return Err(ApiError::rate_limited(seconds));
    }
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    // argon2 is deliberately slow: off the async workers.
    let given = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || access::verify_password(hash.as_deref(), &given)).await.map_err(ApiError::internal)?;
    match user {
        Some(u) if ok => Ok(u),
        _ => {
            // The audit log names the user only if there is one.
            let who = user.as_ref().map(|u| u.email.clone());
            crate::http::failed_attempt(state, address, &keys, who.as_deref(), "a wrong email or password".into()).await;
            Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                ErrorId::BadCredentials,
                "that email and password do not match a user: check them, or ask a platform admin",
            ))
        }
    }
}
