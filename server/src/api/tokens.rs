//! `/tokens`: API tokens with a lifecycle. A token is shown once, when it
//! is made; listed with its description, creation, last use and expiry,
//! never its value; revoked by id, which every route refuses from the next
//! request on (a dashboard session signed in with it ends too). Each user
//! sees and revokes their own (a platform admin, everyone's). A deploy
//! token (`--app APP --role deploy`, for CI) may only push to its app and
//! read its releases and builds; making one needs a developer's role there.

use crate::http::access::{Principal, Role};
use crate::http::{ApiError, ApiResult, AppState, Json};
use crate::store::TokenRow;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::Extension;
use paas_wire::{ErrorId, Token, TokenCreate, TokenCreated};

/// The longest a token may be made for.
const MAX_DAYS: i64 = 3650;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/tokens", get(list).post(create)).route("/tokens/{id}", delete(revoke))
}

pub fn to_wire(t: &TokenRow, owner: &str, app: Option<&str>) -> Token {
    let now = crate::store::now();
    let state = if t.revoked_at.is_some() {
        "revoked"
    } else if t.active_at(&now) {
        "active"
    } else {
        "expired"
    };
    Token {
        id: t.id.clone(),
        description: t.what().to_owned(),
        created_at: t.created_at.clone(),
        expires_at: t.expires_at.clone(),
        last_used_at: t.last_used_at.clone(),
        revoked_at: t.revoked_at.clone(),
        state: state.to_owned(),
        owner: owner.to_owned(),
        app: app.map(str::to_owned),
        role: t.role.clone(),
    }
}

/// A token's description, checked: one line, not too long.
pub fn description(given: Option<&str>) -> ApiResult<Option<&str>> {
    let description = given.map(str::trim).filter(|d| !d.is_empty());
    if description.is_some_and(|d| d.len() > 200 || d.chars().any(char::is_control)) {
        return Err(ApiError::bad_request("the description is too long or has control characters: say what the token is for in a line"));
    }
    Ok(description)
}

/// Tokens as listed: with their owners' emails and deploy tokens' apps.
async fn listed(state: &AppState, rows: &[TokenRow]) -> ApiResult<Vec<Token>> {
    let emails: std::collections::HashMap<String, String> = state.store.users().await?.into_iter().map(|u| (u.id, u.email)).collect();
    let apps: std::collections::HashMap<String, String> = state.store.list_apps().await?.into_iter().map(|a| (a.id, a.name)).collect();
    Ok(rows
        .iter()
        .map(|t| {
            let owner = t.user_id.as_ref().and_then(|u| emails.get(u)).map_or("", String::as_str);
            to_wire(t, owner, t.app_id.as_ref().and_then(|a| apps.get(a)).map(String::as_str))
        })
        .collect())
}

/// `30d`, `12h`, `15m`, `90s` as a duration.
pub fn parse_expiry(text: &str) -> Result<chrono::Duration, String> {
    let t = text.trim();
    let bad = || format!("--expires {text:?} is not a duration: give a number and a unit, like 90s, 15m, 12h or 30d (at most {MAX_DAYS}d)");
    let unit = t.chars().last().ok_or_else(bad)?;
    let n: i64 = t[..t.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let d = match unit {
        's' => chrono::Duration::seconds(n),
        'm' => chrono::Duration::minutes(n),
        'h' => chrono::Duration::hours(n),
        'd' => chrono::Duration::days(n),
        _ => return Err(bad()),
    };
    if n <= 0 || d > chrono::Duration::days(MAX_DAYS) {
        return Err(bad());
    }
    Ok(d)
}

async fn list(State(state): State<AppState>, Extension(principal): Extension<Principal>) -> ApiResult<Json<Vec<Token>>> {
    let whose = (!principal.is_admin()).then_some(principal.user.id.as_str());
    let rows = state.store.tokens(whose).await?;
    Ok(Json(listed(&state, &rows).await?))
}

async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Json(body): Json<TokenCreate>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let description = description(body.description.as_deref())?;
    let deploy_app = match (body.app.as_deref().filter(|a| !a.is_empty()), body.role.as_deref().filter(|r| !r.is_empty())) {
        (None, None) => None,
        (Some(app), Some("deploy")) => {
            let row = crate::http::extract::find_app(&state, app).await?;
            let standing = crate::http::access::standing(&state, &principal, &row).await?;
            match standing.role() {
                Some(r) if r >= Role::Developer => Some(row),
                Some(r) => return Err(ApiError::forbidden(format!("a deploy token of {app} needs a developer's role there, and you are a {r}"))),
                None => return Err(crate::http::access::no_such_app(app)),
            }
        }
        (Some(_), _) | (None, Some(_)) => {
            return Err(ApiError::unprocessable(
                ErrorId::InvalidRole,
                "a token for one app is a deploy token: give both --app APP and --role deploy (a user's own token takes neither)",
            ))
        }
    };
    let expires_at = match body.expires_in.as_deref() {
        Some(e) => Some((chrono::Utc::now() + parse_expiry(e).map_err(ApiError::bad_request)?).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        None => None,
    };
    let new = crate::store::NewToken {
        name: if deploy_app.is_some() { "deploy" } else { "api" },
        description,
        expires_at: expires_at.as_deref(),
        user_id: Some(&principal.user.id),
        app_id: deploy_app.as_ref().map(|a| a.id.as_str()),
        role: deploy_app.as_ref().map(|_| "deploy"),
    };
    let (row, value) = state.store.create_token_with(&new).await?;
    tracing::info!(token = %row.what(), id = %row.id, user = %principal.user.email, "token created");
    let token = to_wire(&row, &principal.user.email, deploy_app.as_ref().map(|a| a.name.as_str()));
    Ok((StatusCode::CREATED, Json(TokenCreated { token, value })))
}

async fn revoke(State(state): State<AppState>, Extension(principal): Extension<Principal>, Path(id): Path<String>) -> ApiResult<Json<Token>> {
    let missing = || ApiError::not_found(format!("there is no token {id:?} of yours: `paas tokens` lists them with their ids"));
    // Someone else's token is, to a user who is not an admin, no token at all.
    match state.store.token(&id).await? {
        Some(t) if principal.is_admin() || t.user_id.as_deref() == Some(principal.user.id.as_str()) => {}
        _ => return Err(missing()),
    }
    let row = state.store.revoke_token(&id).await?.ok_or_else(missing)?;
    tracing::info!(token = %row.what(), id = %row.id, "token revoked");
    Ok(Json(listed(&state, std::slice::from_ref(&row)).await?.remove(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_a_number_and_a_unit() {
        assert_eq!(parse_expiry("30d").unwrap(), chrono::Duration::days(30));
        assert_eq!(parse_expiry("90s").unwrap(), chrono::Duration::seconds(90));
        assert_eq!(parse_expiry("12h").unwrap(), chrono::Duration::hours(12));
        for bad in ["", "d", "30", "0d", "-1d", "3651d", "1w", "1.5h"] {
            assert!(parse_expiry(bad).is_err(), "{bad}");
        }
    }
}
