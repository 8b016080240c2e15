//! Wires the platform together and runs it: store, runtime, scheduler,
//! builder, the API listener and the router listener, with graceful shutdown
//! on SIGTERM or Ctrl-C.

use crate::api::{self, AppState};
use crate::builder::Builder;
use crate::buildpack::BuildpackBuilder;
use crate::stack::Stack;
use crate::crypto::{self, ConfigCipher};
use crate::router::{self, RouteTable, RouterState};
use crate::runtime::{DockerRuntime, Runtime};
use crate::scheduler::Scheduler;
use crate::settings::Settings;
use crate::store::Store;
use anyhow::{Context, Result};
use paas_wire::AppName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// How often the scheduler reconciles every app even when nothing asked.
const RECONCILE_EVERY: Duration = Duration::from_secs(5);

pub async fn serve(settings: Settings) -> Result<()> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create PAAS_DATA_DIR {}", settings.data_dir.display()))?;
    let cipher = ConfigCipher::load(settings.secret_key.as_deref(), &settings.data_dir)?;
    let store = Store::open(&settings.database_url).await?;
    let interrupted = store.fail_interrupted_builds().await?;
    if interrupted > 0 {
        warn!(count = interrupted, "marked builds interrupted by the last stop as failed");
    }
    if store.token_count().await? == 0 {
        let token = store.create_token("admin").await?;
        // Printed once, on the first start: the store keeps only its hash.
        println!("No API token existed, so one was created. Keep it: it is not shown again.\n\n    PAAS_TOKEN={token}\n");
    }
    let instance = store.instance_id().await?;
    let runtime: Arc<dyn Runtime> = Arc::new(DockerRuntime::connect(&instance).await?);
    let routes = RouteTable::default();
    let scheduler = Scheduler::new(
        store.clone(),
        runtime.clone(),
        cipher.clone(),
        routes.clone(),
        Duration::from_secs(settings.stop_grace_secs),
        Duration::from_secs(settings.boot_timeout_secs),
    );
    let settings = Arc::new(settings);
    let url_settings = settings.clone();
    let builder = Builder::new(
        store.clone(),
        runtime.clone(),
        cipher.clone(),
        scheduler.clone(),
        BuildpackBuilder::new(runtime.clone(), Stack::from_env(), settings.buildpacks_dir.clone()),
        Arc::new(move |app: &str| api::web_url(&url_settings, app)),
    );
    for app in store.list_apps().await? {
        if let Ok(name) = AppName::parse(&app.name) {
            crate::git::ensure_repo(&settings, &name)?;
        }
    }
    let state = AppState {
        store,
        cipher,
        scheduler: scheduler.clone(),
        builder,
        settings: settings.clone(),
        hook_token: Arc::new(hex::encode(crypto::random_bytes::<32>())),
    };

    let api_listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on PAAS_LISTEN {}", settings.listen))?;
    let router_listener = tokio::net::TcpListener::bind(settings.router_listen)
        .await
        .with_context(|| format!("cannot listen on PAAS_ROUTER_LISTEN {}", settings.router_listen))?;
    info!(api = %api_listener.local_addr()?, router = %router_listener.local_addr()?, domain = %settings.domain, "paas-server listening");

    // Adopt what runs before taking traffic, then keep reconciling.
    if let Err(e) = scheduler.reconcile_all().await {
        warn!(error = %format!("{e:#}"), "first reconcile failed");
    }
    scheduler.spawn_loop(RECONCILE_EVERY);

    let api_app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let router_app = router::router(RouterState::new(routes, settings.domain.clone()))
        .into_make_service_with_connect_info::<SocketAddr>();
    let api = axum::serve(api_listener, api_app).with_graceful_shutdown(shutdown_signal());
    let router = axum::serve(router_listener, router_app).with_graceful_shutdown(shutdown_signal());
    tokio::try_join!(async { api.await.context("API server failed") }, async {
        router.await.context("router failed")
    })?;
    info!("paas-server stopped; dynos keep running and are adopted at the next start");
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
