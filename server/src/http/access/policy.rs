//! The one table of what every route needs, and the name its changes get
//! in the audit log. A route that is not here is refused (fail closed), and
//! a test (`fast::access`) walks every entry with each role and fails when
//! a route in the source has no entry.

use super::Role;
use axum::http::Method;

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing: signing in, static files.
    Public,
    /// The pre-receive hook's per-start secret.
    Hook,
    /// Any valid credential, a deploy token's included.
    Any,
    /// A user's own credential (a deploy token may not).
    User,
    /// A platform admin.
    PlatformAdmin,
    /// At least this role on the route's `{app}`.
    App(Role),
    /// At least this role on the route's app, or the app's deploy token.
    AppOrDeploy(Role),
}

impl Need {
    /// Whether the route acts on one app (its `{app}` or `{repo}`).
    pub fn app_scoped(self) -> bool {
        matches!(self, Need::App(_) | Need::AppOrDeploy(_))
    }
}

/// One route: its method and pattern (as axum matched it), what it needs,
/// and what the audit log calls a change made through it.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub need: Need,
    pub action: &'static str,
}

const fn r(method: &'static str, path: &'static str, need: Need, action: &'static str) -> Route {
    Route { method, path, need, action }
}

use Need::*;
const VIEWER: Need = App(Role::Viewer);
const DEVELOPER: Need = App(Role::Developer);
const ADMIN: Need = App(Role::Admin);

/// Every route of the API listener: the JSON API, git, the dashboard.
pub const ROUTES: &[Route] = &[
    // Signing in and who one is.
    r("POST", "/auth/tokens", Public, "auth.login"),
    r("DELETE", "/auth/token", Any, "auth.logout"),
    r("GET", "/account", Any, "account.info"),
    r("GET", "/version", Any, "version.show"),
    // People (platform admins).
    r("GET", "/users", PlatformAdmin, "users.list"),
    r("POST", "/users", PlatformAdmin, "users.create"),
    r("DELETE", "/users/{email}", PlatformAdmin, "users.remove"),
    r("GET", "/audit", PlatformAdmin, "audit.list"),
    r("GET", "/nodes", PlatformAdmin, "nodes.list"),
    // Prometheus's scrape (also on PAAS_METRICS_LISTEN, without a credential).
    r("GET", "/metrics", PlatformAdmin, "metrics.scrape"),
    // Tokens: each user's own (an admin sees everyone's).
    r("GET", "/tokens", User, "tokens.list"),
    r("POST", "/tokens", User, "tokens.create"),
    r("DELETE", "/tokens/{id}", User, "tokens.revoke"),
    // Apps.
    r("GET", "/apps", User, "apps.list"),
    r("POST", "/apps", User, "apps.create"),
    r("GET", "/apps/{app}", VIEWER, "apps.info"),
    r("PATCH", "/apps/{app}", ADMIN, "apps.rename"),
    r("DELETE", "/apps/{app}", ADMIN, "apps.destroy"),
    r("GET", "/apps/{app}/constraints", VIEWER, "constraints.list"),
    r("PUT", "/apps/{app}/constraints", ADMIN, "constraints.set"),
    r("GET", "/apps/{app}/access", VIEWER, "access.list"),
    r("POST", "/apps/{app}/access", ADMIN, "access.add"),
    r("PATCH", "/apps/{app}/access/{email}", ADMIN, "access.update"),
    r("DELETE", "/apps/{app}/access/{email}", ADMIN, "access.remove"),
    r("GET", "/apps/{app}/config-vars", VIEWER, "config.show"),
    r("PATCH", "/apps/{app}/config-vars", DEVELOPER, "config.set"),
    r("GET", "/apps/{app}/releases", AppOrDeploy(Role::Viewer), "releases.list"),
    r("POST", "/apps/{app}/releases", DEVELOPER, "releases.rollback"),
    r("GET", "/apps/{app}/releases/{release}", AppOrDeploy(Role::Viewer), "releases.info"),
    r("GET", "/apps/{app}/releases/{release}/output", AppOrDeploy(Role::Viewer), "releases.output"),
    r("GET", "/apps/{app}/twelve-factor", VIEWER, "twelve_factor.show"),
    r("GET", "/apps/{app}/metrics", VIEWER, "metrics.show"),
    r("GET", "/apps/{app}/builds", AppOrDeploy(Role::Viewer), "builds.list"),
    // A build from an uploaded tree (`paas deploy`): a push by other means.
    r("POST", "/apps/{app}/builds", AppOrDeploy(Role::Developer), "builds.create"),
    r("GET", "/apps/{app}/builds/{build}", AppOrDeploy(Role::Viewer), "builds.info"),
    r("DELETE", "/apps/{app}/build-cache", DEVELOPER, "builds.cache.clear"),
    r("GET", "/apps/{app}/formation", VIEWER, "ps.formation"),
    r("PATCH", "/apps/{app}/formation", DEVELOPER, "ps.scale"),
    r("GET", "/apps/{app}/dynos", VIEWER, "ps.list"),
    r("DELETE", "/apps/{app}/dynos", DEVELOPER, "ps.restart"),
    r("POST", "/apps/{app}/dynos", DEVELOPER, "run.detached"),
    r("DELETE", "/apps/{app}/dynos/{target}", DEVELOPER, "ps.restart"),
    r("POST", "/apps/{app}/dynos/{dyno}/actions/stop", DEVELOPER, "ps.stop"),
    r("GET", "/apps/{app}/run", DEVELOPER, "run"),
    r("GET", "/apps/{app}/cron", VIEWER, "cron.list"),
    r("POST", "/apps/{app}/cron/{id}/runs", DEVELOPER, "cron.run"),
    r("GET", "/apps/{app}/domains", VIEWER, "domains.list"),
    r("POST", "/apps/{app}/domains", DEVELOPER, "domains.add"),
    r("DELETE", "/apps/{app}/domains/{hostname}", DEVELOPER, "domains.remove"),
    r("GET", "/apps/{app}/certs", VIEWER, "certs.list"),
    r("POST", "/apps/{app}/certs", DEVELOPER, "certs.add"),
    r("POST", "/apps/{app}/certs/auto", DEVELOPER, "certs.auto.enable"),
    r("DELETE", "/apps/{app}/certs/auto", DEVELOPER, "certs.auto.disable"),
    r("DELETE", "/apps/{app}/certs/{hostname}", DEVELOPER, "certs.remove"),
    r("GET", "/apps/{app}/logs", VIEWER, "logs"),
    r("GET", "/apps/{app}/log-stream", VIEWER, "logs.stream"),
    // A drain's URL may carry a secret: developers only.
    r("GET", "/apps/{app}/log-drains", DEVELOPER, "drains.list"),
    r("POST", "/apps/{app}/log-drains", DEVELOPER, "drains.add"),
    r("DELETE", "/apps/{app}/log-drains/{drain}", DEVELOPER, "drains.remove"),
    r("GET", "/apps/{app}/addons", VIEWER, "addons.list"),
    r("POST", "/apps/{app}/addons", DEVELOPER, "addons.create"),
    r("GET", "/apps/{app}/addons/{addon}", VIEWER, "addons.info"),
    r("DELETE", "/apps/{app}/addons/{addon}", ADMIN, "addons.destroy"),
    r("POST", "/apps/{app}/addons/{addon}/upgrade", DEVELOPER, "addons.upgrade"),
    r("POST", "/apps/{app}/addon-attachments", DEVELOPER, "addons.attach"),
    r("DELETE", "/apps/{app}/addon-attachments/{addon}", DEVELOPER, "addons.detach"),
    r("GET", "/apps/{app}/addons/{addon}/backups", VIEWER, "backups.list"),
    r("POST", "/apps/{app}/addons/{addon}/backups", DEVELOPER, "backups.capture"),
    // A backup is the data itself.
    r("GET", "/apps/{app}/addons/{addon}/backups/{backup}", DEVELOPER, "backups.download"),
    r("POST", "/apps/{app}/addons/{addon}/backups/{backup}/restore", DEVELOPER, "backups.restore"),
    r("POST", "/apps/{app}/addons/{addon}/restores", DEVELOPER, "backups.restore"),
    r("PUT", "/apps/{app}/addons/{addon}/backup-schedule", DEVELOPER, "backups.schedule"),
    r("DELETE", "/apps/{app}/addons/{addon}/backup-schedule", DEVELOPER, "backups.unschedule"),
    r("GET", "/apps/{app}/addons/{addon}/console", DEVELOPER, "addons.console"),
    // Pipelines: who may see, couple and promote is decided per app inside.
    r("GET", "/pipelines", User, "pipelines.list"),
    r("POST", "/pipelines", User, "pipelines.create"),
    r("GET", "/pipelines/{pipeline}", User, "pipelines.info"),
    r("DELETE", "/pipelines/{pipeline}", User, "pipelines.destroy"),
    r("POST", "/pipeline-couplings", User, "pipelines.add"),
    r("GET", "/apps/{app}/pipeline-couplings", VIEWER, "pipelines.coupling"),
    r("DELETE", "/apps/{app}/pipeline-couplings", DEVELOPER, "pipelines.remove"),
    r("POST", "/pipeline-promotions", User, "pipelines.promote"),
    r("GET", "/apps/{app}/pipeline-diff", VIEWER, "pipelines.diff"),
    r("GET", "/apps/{app}/maintenance", VIEWER, "maintenance.show"),
    r("PATCH", "/apps/{app}/maintenance", DEVELOPER, "maintenance.set"),
    // git push.
    r("GET", "/{repo}/info/refs", AppOrDeploy(Role::Developer), "git.refs"),
    r("POST", "/{repo}/git-receive-pack", AppOrDeploy(Role::Developer), "git.push"),
    r("POST", "/internal/apps/{app}/builds", Hook, "build"),
    // The dashboard.
    r("GET", "/login", Public, "dashboard.login.page"),
    r("POST", "/login", Public, "auth.login"),
    r("GET", "/static/dashboard.css", Public, "static"),
    r("GET", "/static/dashboard.js", Public, "static"),
    r("POST", "/logout", Any, "auth.logout"),
    r("GET", "/", User, "apps.list"),
    r("POST", "/app", User, "apps.create"),
    r("GET", "/admin/users", PlatformAdmin, "users.list"),
    r("POST", "/admin/users", PlatformAdmin, "users.create"),
    r("POST", "/admin/users/remove", PlatformAdmin, "users.remove"),
    r("GET", "/app/{app}", VIEWER, "apps.info"),
    r("GET", "/app/{app}/access", VIEWER, "access.list"),
    r("POST", "/app/{app}/access", ADMIN, "access.add"),
    r("POST", "/app/{app}/access/remove", ADMIN, "access.remove"),
    r("POST", "/app/{app}/config", DEVELOPER, "config.set"),
    r("POST", "/app/{app}/config/unset", DEVELOPER, "config.set"),
    r("POST", "/app/{app}/formation", DEVELOPER, "ps.scale"),
    r("POST", "/app/{app}/restart", DEVELOPER, "ps.restart"),
    r("POST", "/app/{app}/rollback", DEVELOPER, "releases.rollback"),
    r("POST", "/app/{app}/domains", DEVELOPER, "domains.add"),
    r("POST", "/app/{app}/domains/remove", DEVELOPER, "domains.remove"),
    r("POST", "/app/{app}/destroy", ADMIN, "apps.destroy"),
    r("POST", "/app/{app}/addons", DEVELOPER, "addons.create"),
    r("POST", "/app/{app}/addons/{addon}/backups", DEVELOPER, "backups.capture"),
    r("GET", "/app/{app}/addons/{addon}/backups/{backup}", DEVELOPER, "backups.download"),
    r("GET", "/app/{app}/builds/{build}", VIEWER, "builds.info"),
    r("GET", "/app/{app}/log-stream", VIEWER, "logs.stream"),
];

/// The entry of `method path` (a route pattern).
pub fn find(method: &Method, path: &str) -> Option<&'static Route> {
    // HEAD is served by GET's handler.
    let method = if method == Method::HEAD { "GET" } else { method.as_str() };
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_has_one_entry() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.method, r.path)), "{} {} is listed twice", r.method, r.path);
            let scoped = r.path.contains("{app}") || r.path.contains("{repo}");
            assert!(!r.need.app_scoped() || scoped, "{} {} needs an app but names none", r.method, r.path);
        }
        assert_eq!(find(&Method::HEAD, "/apps").unwrap().action, "apps.list");
    }
}
