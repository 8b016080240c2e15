//! Wires the platform together and runs it: store, runtime, scheduler,
//! release service, builder, the API and git listener and the router
//! listener, with graceful shutdown. [`start`] runs it in-process on the
//! listen addresses of the settings (port 0 picks free ports, reported in
//! [`Running`]), with the Docker runtime or one the caller hands in (tests
//! use the fake one); [`serve`] is the binary's way: start, then wait for
//! SIGTERM or Ctrl-C.

use crate::builder::Builder;
use crate::buildpack::BuildpackBuilder;
use crate::crypto::{self, ConfigCipher};
use crate::http::{self, ApiError, AppState};
use crate::logs::{drain::DrainSpec, LogRouter};
use crate::release::ReleaseService;
use crate::router::{self, RouteTable, RouterState};
use crate::runtime::{BuildLimits, DockerRuntime, Runtime, SwarmRuntime};
use crate::settings::RuntimeKind;
use crate::scheduler::Scheduler;
use crate::settings::Settings;
use crate::store::Store;
use anyhow::{Context, Result};
use paas_wire::AppName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// How often the scheduler reconciles every app even when nothing asked.
const RECONCILE_EVERY: Duration = Duration::from_secs(5);
/// How often add-ons' backup schedules are looked at.
const BACKUP_SCHEDULE_EVERY: Duration = Duration::from_secs(30);

/// A running platform.
pub struct Running {
    pub api_addr: SocketAddr,
    pub router_addr: SocketAddr,
    pub store: Store,
    pub releases: ReleaseService,
    pub routes: RouteTable,
    pub logs: LogRouter,
    pub one_offs: crate::oneoff::OneOffs,
    runtime: Arc<dyn Runtime>,
    /// The router's HTTPS listener, when `PAAS_ROUTER_TLS_LISTEN` is set.
    pub tls_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    served: tokio::task::JoinHandle<Result<()>>,
    reconciler: tokio::task::JoinHandle<()>,
    /// Dynos' disks sampled for the twelve-factor report (PAAS_OBSERVE).
    disks: Option<tokio::task::JoinHandle<()>>,
    sweeper: tokio::task::JoinHandle<()>,
    cron: tokio::task::JoinHandle<()>,
    renewals: tokio::task::JoinHandle<()>,
    /// Add-ons' backup schedules.
    backups: tokio::task::JoinHandle<()>,
    pub metrics: crate::metrics::Metrics,
    /// Prometheus's listener of its own (PAAS_METRICS_LISTEN), when set.
    pub metrics_addr: Option<SocketAddr>,
    /// The dyno sampler and the minute flusher (PAAS_METRICS).
    metric_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops taking requests, lets in-flight ones finish, and stops the
    /// reconcile loop. Dynos keep running, to be adopted at the next start.
    pub async fn stop(self) -> Result<()> {
        self.reconciler.abort();
        if let Some(disks) = &self.disks {
            disks.abort();
        }
        self.sweeper.abort();
        self.cron.abort();
        self.renewals.abort();
        self.backups.abort();
        for t in &self.metric_tasks {
            t.abort();
        }
        if let Err(e) = self.metrics.flush(&self.store).await {
            warn!(error = %format!("{e:#}"), "cannot write the last minute of metrics to the store");
        }
        // Attached one-off dynos end with their clients' connections.
        self.one_offs.end_session().await;
        // Spare build containers would wait for builds that never come.
        self.runtime.remove_spares().await;
        // Live tails end, so the listeners can drain; journals are written.
        self.logs.close();
        let _ = self.stop.send(true);
        let served = self.served.await.context("the server task panicked")?;
        self.logs.close();
        served
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }
}

/// Runs until SIGTERM or Ctrl-C; then stops taking connections and gives
/// open requests `PAAS_SHUTDOWN_GRACE_SECONDS` to finish.
pub async fn serve(settings: Settings) -> Result<()> {
    let grace = settings.server.shutdown_grace;
    let running = start(settings, None).await?;
    shutdown_signal().await;
    info!(grace_seconds = grace.as_secs(), "stopping: open requests may finish");
    match tokio::time::timeout(grace, running.stop()).await {
        Ok(result) => result?,
        Err(_) => warn!("open requests did not finish in time; stopping anyway"),
    }
    info!("paas-server stopped; dynos keep running and are adopted at the next start");
    Ok(())
}

/// Starts the platform in this process. `runtime` None means the Docker
/// engine at `DOCKER_HOST`.
pub async fn start(mut settings: Settings, runtime: Option<Arc<dyn Runtime>>) -> Result<Running> {
    std::fs::create_dir_all(&settings.server.data_dir)
        .with_context(|| format!("cannot create PAAS_DATA_DIR {}", settings.server.data_dir.display()))?;
    std::fs::create_dir_all(settings.scratch_dir())?;
    let cipher = ConfigCipher::load(settings.server.secret_key.as_deref(), &settings.server.data_dir)?;
    let store = Store::open(&settings.server.database_url()).await?;
    migrate_secrets(&store, &cipher).await?;
    let interrupted = store.fail_interrupted_builds().await?;
    if interrupted > 0 {
        warn!(count = interrupted, "marked builds interrupted by the last stop as failed");
    }
    // The first platform admin (made now if there are no users), who owns
    // the tokens made before there were users.
    let admin_email = crate::http::access::parse_email(&settings.access.admin_email)
        .map_err(|e| anyhow::anyhow!("PAAS_ADMIN_EMAIL: {}", e.message))?;
    let admin = store.first_admin(&admin_email).await?;
    if store.token_count().await? == 0 {
        let token = store.create_token("admin").await?;
        // Printed once, on the first start: the store keeps only its hash.
        println!("No API token existed, so one was created for {}. Keep it: it is not shown again.\n\n    PAAS_TOKEN={token}\n", admin.email);
    }
    let runtime: Arc<dyn Runtime> = match runtime {
        Some(r) => r,
        None => {
            let instance = store.instance_id().await?;
            // The engine's bridges are on this host only when its socket is.
            if settings.server.docker_host.as_deref().is_none_or(|h| h.starts_with("unix://")) {
                if let Err(e) = crate::runtime::isolation::guard().await {
                    warn!(
                        error = %format!("{e:#}"),
                        "apps' networks are kept apart by Docker's own rules alone, which lapse for a moment each time the engine makes a network; \
                         run paas-server as root where iptables is installed (in a container: cap_add NET_ADMIN) so it can add its {} chain",
                        crate::runtime::isolation::CHAIN
                    );
                }
            }
            let engine = DockerRuntime::connect(&instance, settings.server.docker_host.as_deref(), settings.router.dyno_address)
                .await?
                .limit_cpus(settings.dynos.cpus())
                .hold_with(&settings.stack.run);
            match settings.hosts.runtime {
                RuntimeKind::Engine => Arc::new(engine),
                RuntimeKind::Swarm => Arc::new(SwarmRuntime::connect(engine, settings.swarm()?).await?),
            }
        }
    };

    // Bind first: with port 0 the real ports are known only now, and the
    // git hook needs the API's.
    let api_listener = tokio::net::TcpListener::bind(settings.server.listen())
        .await
        .with_context(|| format!("cannot listen on PAAS_LISTEN {}", settings.server.listen()))?;
    let router_listener = tokio::net::TcpListener::bind(settings.router.listen)
        .await
        .with_context(|| format!("cannot listen on PAAS_ROUTER_LISTEN {}", settings.router.listen))?;
    settings.server.set_listen(api_listener.local_addr()?);
    settings.router.listen = router_listener.local_addr()?;
    let tls_listener = match settings.router.tls_listen {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on PAAS_ROUTER_TLS_LISTEN {addr}"))?;
            settings.router.tls_listen = Some(l.local_addr()?);
            Some(l)
        }
        None => None,
    };
    let metrics_listener = match settings.metrics.metrics_listen {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on PAAS_METRICS_LISTEN {addr}"))?;
            settings.metrics.metrics_listen = Some(l.local_addr()?);
            Some(l)
        }
        None => None,
    };

    let routes = RouteTable::default();
    for app in store.apps_in_maintenance().await? {
        routes.set_maintenance(&app, true);
    }
    let certs = crate::tls::CertTable::default();
    let challenges = crate::tls::Challenges::default();
    let acme = crate::acme::Acme::new(&settings.certs, &settings.server.data_dir, store.clone(), cipher.clone(), certs.clone(), challenges.clone());
    certs.load(&store, &cipher).await?;
    let domains = router::DomainTable::default();
    for (hostname, app) in store.all_domains().await? {
        if let Ok(h) = paas_wire::Hostname::parse(&hostname) {
            domains.set(&h, &app);
        }
    }
    let logs = LogRouter::new(settings.log_config(), runtime.clone(), store.known_apps())?;
    for (app, drain) in store.all_drains().await? {
        match cipher.open_str(&crypto::drain_owner(&drain.app_id), &drain.url) {
            Ok(url) => logs.start_drain(DrainSpec { id: drain.id, app, url, token: drain.token }),
            Err(e) => warn!(app = %app, drain = %drain.id, error = %format!("{e:#}"), "drain not started"),
        }
    }
    let scheduler = Scheduler::new(store.clone(), runtime.clone(), cipher.clone(), routes.clone(), logs.clone(), &settings.dynos);
    let releases = ReleaseService::with_max_dynos(store.clone(), cipher.clone(), scheduler.clone(), settings.dynos.max_dynos);
    let one_offs = crate::oneoff::OneOffs::new(
        store.clone(),
        runtime.clone(),
        cipher.clone(),
        logs.clone(),
        settings.dynos.size,
        settings.dynos.run_max,
    );
    let builder = Builder::new(
        store.clone(),
        runtime.clone(),
        BuildpackBuilder::new(
            runtime.clone(),
            settings.stack.clone(),
            settings.builds.buildpacks_dir().clone(),
            settings.builds.buildpack_dirs.clone(),
        )
        .with_outbound(settings.server.outbound.clone()),
        settings.builds.max_builds(),
        settings.scratch_dir(),
        BuildLimits {
            timeout: settings.builds.timeout,
            memory: Some(settings.builds.memory.bytes()),
            output: settings.builds.max_slug_bytes,
        },
    )
    .observing(settings.dynos.observe)
    .needing_free_disk(settings.builds.min_free_disk);
    for app in store.list_apps().await? {
        if let Ok(name) = AppName::parse(&app.name) {
            crate::git::ensure_repo(&settings, &name)?;
        }
    }
    // After `paas-server restore`: images the engine lacks are built again
    // from the apps' repos, before any dyno starts.
    crate::backup::rebuild_restored(&settings, &store, runtime.as_ref(), &builder, &releases).await?;
    let cron = crate::cron::CronService::new(store.clone(), one_offs.clone(), logs.clone());
    let addons = crate::addons::Addons::new(
        store.clone(),
        cipher.clone(),
        runtime.clone(),
        releases.clone(),
        logs.clone(),
        settings.stack.clone(),
        &settings.server.data_dir,
    );
    let metrics = crate::metrics::Metrics::new(settings.metrics.metrics_on);
    if let Err(e) = metrics.load(&store).await {
        warn!(error = %format!("{e:#}"), "cannot read stored metrics; counting from now");
    }
    let settings = Arc::new(settings);
    let state = AppState {
        metrics: metrics.clone(),
        addons: addons.clone(),
        store: store.clone(),
        releases: releases.clone(),
        scheduler: scheduler.clone(),
        one_offs: one_offs.clone(),
        cron: cron.clone(),
        builder,
        logs: logs.clone(),
        domains: domains.clone(),
        certs: certs.clone(),
        cipher: cipher.clone(),
        acme: acme.clone(),
        settings: settings.clone(),
        sessions: Arc::new(http::session::Sessions::new(settings.server.session)),
        hook_token: Arc::new(hex::encode(crypto::random_bytes::<32>())),
        token_uses: Default::default(),
        failures: Arc::new(crate::http::access::limits::Failures::new(settings.access.failures, settings.access.window)),
        audit: Arc::new(crate::http::access::audit::AuditLog::new(store.clone(), settings.access.audit_kept)),
        pushes: Default::default(),
        run_sessions: crate::listen::Upgrades::new(settings.listeners.api_max_upgraded, settings.dynos.run_idle),
    };
    let api_addr = settings.server.listen();
    let router_addr = settings.router.listen;
    let tls_addr = settings.router.tls_listen;
    info!(api = %api_addr, router = %router_addr, domain = %settings.server.domain, tls = ?tls_addr, "paas-server listening");

    // Add-ons' services run and sit on their apps' networks before the
    // apps' dynos are adopted or started.
    if let Err(e) = addons.resume().await {
        warn!(error = %format!("{e:#}"), "cannot resume add-ons");
    }
    let backups = addons.run_schedules(BACKUP_SCHEDULE_EVERY);
    // Adopt what runs before taking traffic, then keep reconciling.
    if let Err(e) = scheduler.reconcile_all().await {
        warn!(error = %format!("{e:#}"), "first reconcile failed");
    }
    let reconciler = scheduler.spawn_loop(RECONCILE_EVERY);
    let disks = settings.dynos.observe.then(|| {
        let observer = crate::twelve::Observer::new(store.clone(), logs.clone());
        crate::twelve::disk::spawn(runtime.clone(), observer, logs.clone(), settings.dynos.observe_every)
    });
    // app.json cron entries, on their schedules; first, so the ends of
    // runs the sweeper takes up again are heard.
    let cron = cron.spawn();
    // One-off dynos: orphans removed, detached ones supervised again.
    let sweeper = one_offs.spawn_sweeper(RECONCILE_EVERY);

    let (stop, stopped) = watch::channel(false);
    let until = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let metrics_app = crate::api::metrics_listener(state.clone());
    let api_app = app_router(state);
    let mut router_state = RouterState::new(
        routes.clone(),
        settings.server.domain.clone(),
        settings.server.trusted_proxies.clone(),
        router_addr.port(),
        logs.clone(),
        settings.router.timeout,
        domains,
    );
    router_state.tls_port = tls_addr.map(|a| a.port());
    router_state.challenges = challenges;
    router_state.metrics = metrics.clone();
    let metric_tasks = if settings.metrics.metrics_on {
        vec![
            crate::metrics::sampler::spawn(runtime.clone(), metrics.clone(), logs.clone(), settings.metrics.metrics_every),
            metrics.spawn_flusher(store.clone()),
        ]
    } else {
        Vec::new()
    };
    router_state.upgrades = crate::listen::Upgrades::new(settings.listeners.router_max_upgraded, settings.listeners.upgrade_idle);
    // Automatic certificates: renewed (and issued for new domains) hourly.
    let renewals = acme.spawn_renewals(Duration::from_secs(3600));
    let router_app = router::router(router_state);
    let limits = |max_connections| crate::listen::Limits {
        max_connections,
        header_timeout: settings.listeners.header_timeout,
        max_header_bytes: settings.listeners.max_header_bytes,
    };
    let tls_serve = match tls_listener {
        Some(l) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(certs.server_config()?);
            let limits = limits(settings.listeners.router_max_connections);
            Some(crate::listen::serve(l, router_app.clone(), limits, Some(acceptor), until(stopped.clone())))
        }
        None => None,
    };
    let api_tls = match &settings.server.api_tls() {
        Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::api_server_config(cert, key)?)),
        None => None,
    };
    let api = crate::listen::serve(api_listener, crate::listen::axum(api_app), limits(settings.listeners.api_max_connections), api_tls, until(stopped.clone()));
    let metrics_serve = metrics_listener.map(|l| crate::listen::serve(l, crate::listen::axum(metrics_app), limits(64), None, until(stopped.clone())));
    let router = crate::listen::serve(router_listener, router_app, limits(settings.listeners.router_max_connections), None, until(stopped));
    let served = tokio::spawn(async move {
        let tls = async {
            if let Some(t) = tls_serve {
                t.await;
            }
        };
        let metrics = async {
            if let Some(m) = metrics_serve {
                m.await;
            }
        };
        tokio::join!(api, router, tls, metrics);
        Ok(())
    });
    Ok(Running { api_addr, router_addr, store, releases, routes, logs, one_offs, runtime, tls_addr, stop, served, reconciler, disks, sweeper, cron, renewals, backups, metrics, metrics_addr: settings.metrics.metrics_listen, metric_tasks })
}

/// The API listener's routes: the API and the git receiver behind the token
/// and access check, the dashboard behind its sessions (and the same access
/// check), sign-in, and the hook's internal route, which checks its own secret.
pub fn app_router(state: AppState) -> axum::Router {
    let token = || axum::middleware::from_fn_with_state(state.clone(), http::authorize);
    let api = crate::api::router().merge(crate::git::archive_router()).route_layer(token());
    // Outermost last: the challenge is added to the token check's 401.
    let git = crate::git::router().route_layer(token()).route_layer(axum::middleware::from_fn(http::basic_challenge));
    axum::Router::new()
        .merge(api)
        .merge(git)
        .merge(crate::dashboard::router(state.clone()))
        .merge(crate::git::internal_router())
        .merge(crate::api::public_router())
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), http::same_origin))
        .with_state(state)
}

/// Seals again, bound to what each belongs to, the secrets an earlier
/// version stored: release configs and certificate keys sealed without an
/// owner, drain URLs in plain text. Idempotent; a start after it finds none.
async fn migrate_secrets(store: &Store, cipher: &ConfigCipher) -> Result<()> {
    let releases = store.legacy_release_configs().await?;
    for (id, app_id, old) in &releases {
        let new = cipher.reseal_legacy(&crypto::config_owner(app_id), old).with_context(|| format!("cannot migrate the config of release {id}"))?;
        store.reseal_release_config(id, old, &new).await?;
    }
    let certs = store.legacy_cert_keys().await?;
    for (hostname, app_id, old) in &certs {
        let owner = crypto::cert_owner(app_id, hostname);
        let new = cipher.reseal_legacy(&owner, old).with_context(|| format!("cannot migrate the key of {hostname}'s certificate"))?;
        store.reseal_cert_key(hostname, old, &new).await?;
    }
    let drains = store.plain_drains().await?;
    for d in &drains {
        let owner = crypto::drain_owner(&d.app_id);
        store.seal_drain(&d.id, &cipher.seal_str(&owner, &d.url), &cipher.digest(&owner, &d.url)).await?;
    }
    if releases.len() + certs.len() + drains.len() > 0 {
        info!(releases = releases.len(), certificates = certs.len(), drains = drains.len(), "sealed stored secrets for their owners");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[tokio::test]
    async fn secrets_of_earlier_versions_are_sealed_for_their_owners_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _db) = crate::store::tests::sqlite_store().await;
        let cipher = ConfigCipher::load(Some("0123456789abcdef0123456789abcdef"), dir.path()).unwrap();
        let shop = store.create_app(&AppName::parse("shop").unwrap()).await.unwrap();
        let other = store.create_app(&AppName::parse("other").unwrap()).await.unwrap();
        let vars = BTreeMap::from([("SECRET".to_owned(), "s3cret".to_owned())]);
        let legacy = cipher.seal_legacy(&serde_json::to_vec(&vars).unwrap());
        let release = store
            .append_release(
                &shop.id,
                &crate::store::NewRelease {
                    actor: None,
                    build_id: None,
                    image: None,
                    process_types: BTreeMap::new(),
                    sealed_config: legacy,
                    description: "old".into(),
                    health_path: None,
                    healthchecks: None,
                    tasks: None,
                    output: None,
                },
            )
            .await
            .unwrap();
        let key = cipher.seal_legacy(&serde_json::to_vec(&BTreeMap::from([("key", "PEM")])).unwrap());
        store.put_cert(&shop.id, "www.shop.test", "CHAIN", &key, "manual").await.unwrap();
        store.add_drain(&shop.id, "https://logs.example.com/?token=t", "").await.unwrap();

        migrate_secrets(&store, &cipher).await.unwrap();
        let config = store.current_release(&shop.id).await.unwrap().unwrap();
        assert_eq!(config.id, release.id);
        assert_eq!(cipher.open(&crypto::config_owner(&shop.id), &config.config).unwrap(), vars);
        assert!(cipher.open(&crypto::config_owner(&other.id), &config.config).is_err(), "a row moved to another app does not open");
        let cert = store.all_certs().await.unwrap().remove(0);
        assert!(!ConfigCipher::is_legacy(&cert.key_sealed));
        let drain = store.drains(&shop.id).await.unwrap().remove(0);
        assert!(!drain.url.contains("logs.example.com"), "the drain URL is sealed");
        assert_eq!(cipher.open_str(&crypto::drain_owner(&shop.id), &drain.url).unwrap(), "https://logs.example.com/?token=t");
        let digest = cipher.digest(&crypto::drain_owner(&shop.id), "https://logs.example.com/?token=t");
        assert!(store.remove_drain(&shop.id, "", &digest).await.unwrap().is_some(), "found by its URL's digest");
        // A second start finds nothing to do.
        assert!(store.legacy_release_configs().await.unwrap().is_empty());
        migrate_secrets(&store, &cipher).await.unwrap();
    }
}
