//! The API's error ids: the stable, machine-readable half of every error
//! body (`{"id", "message"}`). One enum, so the server can only send ids
//! that are declared here and clients match variants, not strings. An id a
//! newer server sends that this list lacks reads as [`ErrorId::Other`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! error_ids {
    ($($variant:ident = $id:literal: $doc:literal,)*) => {
        /// Every error id the API sends.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorId {
            $(#[doc = $doc] $variant,)*
            /// An id this client does not know (a newer server's).
            Other,
        }

        impl ErrorId {
            /// Every id, for documentation and tests.
            pub const ALL: &'static [ErrorId] = &[$(ErrorId::$variant,)*];

            /// The id as sent: `name_taken`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorId::$variant => $id,)*
                    ErrorId::Other => "other",
                }
            }

            /// The id for `text`; [`ErrorId::Other`] for one not listed.
            pub fn parse(text: &str) -> ErrorId {
                match text {
                    $($id => ErrorId::$variant,)*
                    _ => ErrorId::Other,
                }
            }
        }
    };
}

error_ids! {
    BadRequest = "bad_request": "The request is malformed (query, body, headers).",
    Unauthorized = "unauthorized": "No valid API token or session.",
    CrossOrigin = "cross_origin": "A browser request from another site's page.",
    NotFound = "not_found": "The app, release, build, dyno, domain or drain does not exist.",
    Conflict = "conflict": "The name is taken.",
    InternalError = "internal_error": "The server failed; the cause is in its log, not the answer.",
    InvalidName = "invalid_name": "An app name, config key, process type or hostname breaks its rule.",
    NameTaken = "name_taken": "An app of that name exists.",
    NoBuild = "no_build": "The app has no build to release yet.",
    ReleaseFailed = "release_failed": "The release phase failed; nothing changed.",
    InvalidValue = "invalid_value": "A config value cannot be stored (a NUL byte).",
    ConfigTooLarge = "config_too_large": "The config is over its size cap.",
    MissingConfig = "missing_config": "app.json requires a config var the app lacks.",
    NotEarlier = "not_earlier": "A rollback names a release that is not an earlier one.",
    UnknownProcessType = "unknown_process_type": "The release has no such process type.",
    NoProcessTypes = "no_process_types": "The release has no process types to scale.",
    InvalidQuantity = "invalid_quantity": "A dyno count out of range, or not a number.",
    TooManyDynos = "too_many_dynos": "Over the platform's dyno cap (PAAS_MAX_DYNOS).",
    InvalidDyno = "invalid_dyno": "Not a process type or a dyno name (`web`, `web.1`).",
    RestartFailed = "restart_failed": "Some replacement dynos did not come up.",
    InvalidCommand = "invalid_command": "A one-off command or its options are not runnable.",
    TooManySessions = "too_many_sessions": "Over the cap of attached one-off sessions.",
    CacheBusy = "cache_busy": "The build cache is in use by a build.",
    ReservedDomain = "reserved_domain": "The hostname is under the platform's own domain.",
    DomainTaken = "domain_taken": "The hostname belongs to an app already.",
    InvalidCertificate = "invalid_certificate": "The certificate or key does not parse, match or cover the domain.",
    CertificateCoversNoDomain = "certificate_covers_no_domain": "The certificate names none of the app's domains.",
    AcmeFailed = "acme_failed": "The ACME authority refused or failed the order.",
    InvalidDrain = "invalid_drain": "The drain URL is not syslog://, syslog+tls:// or https://.",
    DrainRefused = "drain_refused": "The drain points to an address the outbound policy refuses.",
    DrainExists = "drain_exists": "The app drains to that URL already.",
    NotGit = "not_git": "A git route got a request that is not git's.",
    PushOnly = "push_only": "Only pushes (receive-pack) are served.",
    CronRunning = "cron_running": "The cron entry's last run still goes, and it forbids overlapping runs.",
    UnknownAddonService = "unknown_addon_service": "No such add-on service or version on this platform.",
    AttachmentTaken = "attachment_taken": "The app has an attachment of that name, or that add-on, already.",
    AttachedVar = "attached_var": "The config var is an add-on attachment's: attach or detach the add-on instead.",
    AddonAttached = "addon_attached": "The add-on or app is attached to other apps still.",
    ConfirmMismatch = "confirm_mismatch": "A destructive change needs --confirm with the app's name.",
    InvalidBackup = "invalid_backup": "The archive is empty or not one the service can restore.",
    AddonNotRunning = "addon_not_running": "The add-on's service is not running or not answering.",
    AddonFailed = "addon_failed": "A backup, restore, upgrade or service start failed; the reason is recorded.",
    Forbidden = "forbidden": "The user's role on the app (or on the platform) does not allow this.",
    RateLimited = "rate_limited": "Too many failed sign-ins or token checks from this address or for this user: wait Retry-After seconds.",
    InvalidEmail = "invalid_email": "Not an email address.",
    WeakPassword = "weak_password": "The password is shorter than the minimum.",
    LastAdmin = "last_admin": "The change would leave an app or the platform without an admin.",
    InvalidRole = "invalid_role": "Not a role: viewer, developer or admin (or deploy, for a token).",
    BadCredentials = "bad_credentials": "The email or password is wrong.",
    AppBusy = "app_busy": "A build of the app runs or waits: try again when it is done.",
    MetricsOff = "metrics_off": "The server counts no metrics (PAAS_METRICS=off).",
}

impl std::fmt::Display for ErrorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ErrorId::parse(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for id in ErrorId::ALL {
            assert_eq!(ErrorId::parse(id.as_str()), *id);
            assert!(seen.insert(id.as_str()), "{id} twice");
            assert!(id.as_str().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
        assert_eq!(ErrorId::parse("from_a_newer_server"), ErrorId::Other);
        assert_eq!(serde_json::to_string(&ErrorId::NameTaken).unwrap(), "\"name_taken\"");
    }
}
