//! Who may do what. Every request behind a credential (an API token, a
//! deploy token, a dashboard session) becomes a [`Principal`]; every route
//! has one entry in [`policy::ROUTES`] saying what it needs; [`check`] puts
//! the two together, once per request, before any handler runs, and leaves
//! the app it found ([`AppAccess`]) for the handler's [`AppPath`]. An app a
//! user has no role on answers exactly as an app that does not exist.
//!
//! Also here: passwords (argon2id), the rate limit on failed sign-ins
//! ([`limits`]) and the audit log ([`audit`]). Who is acting, for the audit
//! log and each release's "by", is [`crate::actor`].
//!
//! [`AppPath`]: crate::http::AppPath


pub mod audit;
pub mod limits;
pub mod policy;

use crate::http::{ApiError, AppState};
use crate::store::{AppRow, TokenRow, UserRow};
use axum::http::Method;
use paas_wire::{AppName, ErrorId};
pub use policy::Need;

/// A role on one app; each may do what the one before may, and more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read the app: info, releases, dynos, logs, config names (not values).
    Viewer,
    /// Also deploy, change config, scale, restart, run, domains, drains, add-ons.
    Developer,
    /// Also who has access, and destroying the app or its add-ons.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Developer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Result<Role, ApiError> {
        Role::ALL.into_iter().find(|r| r.as_str() == text.trim()).ok_or_else(|| {
            ApiError::unprocessable(ErrorId::InvalidRole, format!("{text:?} is not a role: give viewer, developer or admin"))
        })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a request is: a user, through one of their tokens or a dashboard
/// session (signed in with a password, or with a token).
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserRow,
    /// The token it came with; none for a password session.
    pub token: Option<TokenRow>,
}

impl Principal {
    /// The one app of a deploy token.
    pub fn deploy_app(&self) -> Option<&str> {
        let t = self.token.as_ref()?;
        (t.role.as_deref() == Some("deploy")).then_some(t.app_id.as_deref()).flatten()
    }

    /// A platform admin acting as one (a deploy token never is).
    pub fn is_admin(&self) -> bool {
        self.user.is_admin() && self.deploy_app().is_none()
    }

    /// How the audit log and a release name them: the user's email, or a
    /// deploy token's description.
    pub fn actor(&self) -> String {
        match (&self.token, self.deploy_app()) {
            (Some(t), Some(_)) => format!("{} (deploy token of {})", t.what(), self.user.email),
            _ => self.user.email.clone(),
        }
    }
}

/// What a principal is to one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// A platform admin: everything, on every app.
    PlatformAdmin,
    Role(Role),
    /// The app's own deploy token.
    Deploy,
    /// Nothing: the app does not exist for them.
    Outsider,
}

impl Standing {
    /// The role it amounts to (a deploy token's is none).
    pub fn role(self) -> Option<Role> {
        match self {
            Standing::PlatformAdmin => Some(Role::Admin),
            Standing::Role(r) => Some(r),
            Standing::Deploy | Standing::Outsider => None,
        }
    }
}

/// What [`decide`] rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// As if the app did not exist.
    NotFound,
    Forbidden(String),
}

/// The rule, as a pure function: may a principal of this kind (`admin`,
/// `deploy`: a deploy token) with this standing on the route's app do what
/// the route needs?
pub fn decide(need: Need, admin: bool, deploy: bool, standing: Standing) -> Verdict {
    let deploy_only = || Verdict::Forbidden("a deploy token may only push to its app and read its releases and builds: use a user's token for this".into());
    match need {
        Need::Public | Need::Hook | Need::Any => Verdict::Allow,
        Need::User if deploy => deploy_only(),
        Need::User => Verdict::Allow,
        Need::PlatformAdmin if admin => Verdict::Allow,
        Need::PlatformAdmin if deploy => deploy_only(),
        Need::PlatformAdmin => Verdict::Forbidden("only a platform admin may do this: ask one (`paas users` lists them to admins)".into()),
        Need::App(role) | Need::AppOrDeploy(role) => match standing {
            Standing::Outsider => Verdict::NotFound,
            Standing::Deploy if matches!(need, Need::AppOrDeploy(_)) => Verdict::Allow,
            Standing::Deploy => deploy_only(),
            Standing::PlatformAdmin => Verdict::Allow,
            Standing::Role(has) if has >= role => Verdict::Allow,
            Standing::Role(has) => Verdict::Forbidden(format!(
                "you are a {has} of this app and this needs {}: ask one of its admins (`paas access -a APP` lists them)",
                article(role)
            )),
        },
    }
}

fn article(role: Role) -> String {
    match role {
        Role::Admin => "an admin".into(),
        r => format!("a {r}"),
    }
}

/// The app a request acts on and the role the caller has on it (none for
/// a deploy token), left in the request's extensions by [`check`].
#[derive(Debug, Clone)]
pub struct AppAccess {
    pub app: AppRow,
    pub role: Option<Role>,
}

impl AppAccess {
    /// Whether the caller may see config values (a viewer sees names only).
    pub fn sees_values(&self) -> bool {
        self.role.is_some_and(|r| r >= Role::Developer)
    }
}

/// The message of an app that does not exist, which an outsider gets too.
pub fn no_such_app(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "app {name} does not exist: see `paas apps` for the apps there are, or create it with `paas apps:create {name}`"
    ))
}

/// What a principal is to `app`.
pub async fn standing(state: &AppState, principal: &Principal, app: &AppRow) -> Result<Standing, ApiError> {
    let role = match principal.deploy_app().is_none() && !principal.is_admin() {
        true => state.store.app_role(&app.id, &principal.user.id).await?,
        false => None,
    };
    standing_with(principal, app, role.as_deref())
}

/// What a principal is to `app`, given the user's stored role on it.
fn standing_with(principal: &Principal, app: &AppRow, role: Option<&str>) -> Result<Standing, ApiError> {
    if let Some(app_id) = principal.deploy_app() {
        return Ok(if app_id == app.id { Standing::Deploy } else { Standing::Outsider });
    }
    if principal.is_admin() {
        return Ok(Standing::PlatformAdmin);
    }
    Ok(match role {
        Some(r) => Standing::Role(Role::parse(r).map_err(|_| ApiError::internal(format!("stored role {r:?} is not a role")))?),
        None => Standing::Outsider,
    })
}

/// Whether `principal` may make the request `method path` (a route
/// pattern, as matched) naming `app` (its `{app}` or `{repo}`); the app
/// and role found, for an app's route. Fails closed: a route without an
/// entry in [`policy::ROUTES`] is refused.
pub async fn check(state: &AppState, principal: &Principal, method: &Method, path: &str, app: Option<&str>) -> Result<Option<AppAccess>, ApiError> {
    let Some(route) = policy::find(method, path) else {
        return Err(ApiError::internal(format!("{method} {path} has no entry in access::policy::ROUTES, so it is refused")));
    };
    let deploy = principal.deploy_app().is_some();
    let found = match (route.need.app_scoped(), app) {
        (true, Some(name)) => {
            let name = AppName::parse(name)?;
            // The app and the caller's role on it, in one query.
            let Some((row, role)) = state.store.app_with_role(name.as_str(), &principal.user.id).await? else {
                return Err(no_such_app(name.as_str()));
            };
            let standing = standing_with(principal, &row, role.as_deref())?;
            Some((row, standing))
        }
        (true, None) => return Err(ApiError::internal(format!("{method} {path} needs an app but names none"))),
        (false, _) => None,
    };
    let standing = found.as_ref().map_or(Standing::Outsider, |(_, s)| *s);
    match decide(route.need, principal.is_admin(), deploy, standing) {
        Verdict::Allow => Ok(found.map(|(app, s)| AppAccess { app, role: s.role() })),
        Verdict::NotFound => Err(no_such_app(app.unwrap_or_default())),
        Verdict::Forbidden(why) => Err(ApiError::forbidden(why)),
    }
}

// ---- passwords and emails

/// The shortest password taken.
pub const MIN_PASSWORD: usize = 10;

/// An email address as stored (lower-case), or an error that says what to give.
pub fn parse_email(text: &str) -> Result<String, ApiError> {
    let t = text.trim();
    if t.len() > 254 || !email_address::EmailAddress::is_valid(t) {
        return Err(ApiError::unprocessable(ErrorId::InvalidEmail, format!("{t:?} is not an email address: give one like alice@example.com")));
    }
    Ok(t.to_lowercase())
}

/// The argon2id hash (a PHC string) of a password that meets the rules.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    if password.chars().count() < MIN_PASSWORD {
        return Err(ApiError::unprocessable(ErrorId::WeakPassword, format!("the password is too short: give at least {MIN_PASSWORD} characters")));
    }
    if password.len() > 1024 {
        return Err(ApiError::unprocessable(ErrorId::WeakPassword, "the password is too long: give at most 1024 bytes"));
    }
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(ApiError::internal)
}

/// Whether `password` is the one `hash` was made of. A user without a
/// password matches none.
pub fn verify_password(hash: Option<&str>, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let Some(parsed) = hash.and_then(|h| PasswordHash::new(h).ok()) else {
        // The same work as a real check, so timing does not tell who exists.
        let _ = hash_password(&"x".repeat(MIN_PASSWORD));
        return false;
    };
    password.len() <= 1024 && argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

/// The user a token belongs to, if the token is valid now.
pub async fn principal_of_token(state: &AppState, token: &str) -> Result<Option<Principal>, ApiError> {
    Ok(state.store.verify_token_user(token).await?.and_then(|(token, user)| Some(Principal { user: user?, token: Some(token) })))
}

/// The address a request came from: the peer, or the client a trusted
/// proxy (`PAAS_TRUSTED_PROXIES`) names last in `X-Forwarded-For`.
pub fn client_address(state: &AppState, headers: &axum::http::HeaderMap, peer: Option<std::net::SocketAddr>) -> Option<std::net::IpAddr> {
    let peer = peer?.ip();
    if !state.settings.server.trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).and_then(|v| v.rsplit(',').next()).and_then(|a| a.trim().parse().ok());
    Some(forwarded.unwrap_or(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Viewer < Role::Developer && Role::Developer < Role::Admin);
        assert_eq!(Role::parse(" developer").unwrap(), Role::Developer);
        assert_eq!(Role::parse("owner").unwrap_err().id, ErrorId::InvalidRole);
    }

    #[test]
    fn decisions() {
        use Standing::*;
        let dev = Need::App(super::Role::Developer);
        assert_eq!(decide(dev, false, false, Outsider), Verdict::NotFound, "no role: as if the app did not exist");
        assert!(matches!(decide(dev, false, false, Role(super::Role::Viewer)), Verdict::Forbidden(m) if m.contains("a viewer") && m.contains("a developer")));
        assert_eq!(decide(dev, false, false, Role(super::Role::Developer)), Verdict::Allow);
        assert_eq!(decide(dev, false, false, Role(super::Role::Admin)), Verdict::Allow);
        assert_eq!(decide(Need::App(super::Role::Admin), true, false, PlatformAdmin), Verdict::Allow);
        // Deploy tokens: their app's push and reads only.
        assert_eq!(decide(Need::AppOrDeploy(super::Role::Developer), false, true, Deploy), Verdict::Allow);
        assert!(matches!(decide(Need::App(super::Role::Viewer), false, true, Deploy), Verdict::Forbidden(_)));
        assert_eq!(decide(Need::AppOrDeploy(super::Role::Viewer), false, true, Outsider), Verdict::NotFound);
        assert!(matches!(decide(Need::User, false, true, Outsider), Verdict::Forbidden(_)));
        assert_eq!(decide(Need::Any, false, true, Outsider), Verdict::Allow);
        assert!(matches!(decide(Need::PlatformAdmin, false, false, Outsider), Verdict::Forbidden(_)));
        assert_eq!(decide(Need::PlatformAdmin, true, false, Outsider), Verdict::Allow);
    }

    #[test]
    fn passwords_hash_and_verify() {
        assert_eq!(hash_password("short").unwrap_err().id, ErrorId::WeakPassword);
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(Some(&h), "correct horse battery"));
        assert!(!verify_password(Some(&h), "correct horse batterY"));
        assert!(!verify_password(None, "correct horse battery"));
        assert!(!verify_password(Some("not a hash"), "correct horse battery"));
    }

    #[test]
    fn emails() {
        assert_eq!(parse_email(" Alice@Example.COM ").unwrap(), "alice@example.com");
        assert_eq!(parse_email("admin@localhost").unwrap(), "admin@localhost");
        for bad in ["", "alice", "@example.com", "a b@example.com", "alice@"] {
            assert_eq!(parse_email(bad).unwrap_err().id, ErrorId::InvalidEmail, "{bad}");
        }
    }
}
