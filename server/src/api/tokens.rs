//! `/tokens`: API tokens with a lifecycle. A token is shown once, when it
//! is made; listed with its description, creation, last use and expiry,
//! never its value; revoked by id, which every route refuses from the next
//! request on (a dashboard session signed in with it ends too).

use crate::http::{ApiError, ApiResult, AppState, Json};
use crate::store::TokenRow;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use paas_wire::{Token, TokenCreate, TokenCreated};

/// The longest a token may be made for.
const MAX_DAYS: i64 = 3650;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/tokens", get(list).post(create)).route("/tokens/{id}", delete(revoke))
}

fn to_wire(t: &TokenRow) -> Token {
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
    }
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

async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<Token>>> {
    Ok(Json(state.store.tokens().await?.iter().map(to_wire).collect()))
}

async fn create(State(state): State<AppState>, Json(body): Json<TokenCreate>) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let description = body.description.as_deref().map(str::trim).filter(|d| !d.is_empty());
    if description.is_some_and(|d| d.len() > 200 || d.chars().any(char::is_control)) {
        return Err(ApiError::bad_request("the description is too long or has control characters: say what the token is for in a line"));
    }
    let expires_at = match body.expires_in.as_deref() {
        Some(e) => Some((chrono::Utc::now() + parse_expiry(e).map_err(ApiError::bad_request)?).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        None => None,
    };
    let (row, value) = state.store.create_token_with("api", description, expires_at.as_deref()).await?;
    tracing::info!(token = %row.what(), id = %row.id, "token created");
    Ok((StatusCode::CREATED, Json(TokenCreated { token: to_wire(&row), value })))
}

async fn revoke(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Token>> {
    match state.store.revoke_token(&id).await? {
        Some(row) => {
            tracing::info!(token = %row.what(), id = %row.id, "token revoked");
            Ok(Json(to_wire(&row)))
        }
        None => Err(ApiError::not_found(format!("there is no token {id:?}: `paas tokens` lists them with their ids"))),
    }
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
