//! `packyard serve`: the HTTP server, index workers and the collector in one process, with
//! graceful shutdown on SIGTERM or Ctrl-C: workers take no new job, requests drain (see
//! `http::server`), the job in hand finishes, and the hash states the workers kept are saved
//! for the next start (`jobs::saved_states`).

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Config;
use crate::{http, jobs};

pub async fn run(config: Config) -> Result<()> {
    init_logging(&config.log_format);
    let started = std::time::Instant::now();
    let app = App::open(config).await?;
    let listener = http::listen(app.config.listen)
        .with_context(|| format!("listening on {}", app.config.listen))?;
    let shutdown = CancellationToken::new();
    let mut background = Vec::new();
    if app.config.role.runs_workers() {
        restore_hash_states(&app);
        for _ in 0..app.config.index_workers.max(1) {
            background.push(tokio::spawn(jobs::run_worker(
                app.clone(),
                shutdown.clone(),
            )));
        }
        background.push(tokio::spawn(jobs::gc::run_collector(
            app.clone(),
            shutdown.clone(),
        )));
        background.push(tokio::spawn(crate::retention::run_daily(
            app.clone(),
            shutdown.clone(),
        )));
        background.push(tokio::spawn(crate::webhooks::run_deliveries(
            app.clone(),
            shutdown.clone(),
        )));
    }
    if app.config.role.runs_workers() || app.config.role.serves_repositories() {
        background.push(tokio::spawn(jobs::listen_for_changes(
            app.clone(),
            shutdown.clone(),
        )));
    }
    background.push(tokio::spawn(warn_of_expiring_keys(
        app.clone(),
        shutdown.clone(),
    )));
    background.push(tokio::spawn(announce_process(
        app.clone(),
        shutdown.clone(),
    )));
    tracing::info!(
        role = app.config.role.name(),
        storage = %app.config.storage,
        listen = %listener.local_addr()?,
        data_dir = %app.config.data_dir.display(),
        startup_ms = started.elapsed().as_millis() as u64,
        "packyard serving"
    );
    // Workers take no new job once shutdown begins; the one in hand finishes while requests
    // drain.
    let stopping = shutdown.clone();
    let signal = async move {
        termination().await;
        stopping.cancel();
    };
    http::serve(listener, app.clone(), signal).await?;
    tracing::info!("requests drained; waiting for the job in hand");
    for task in background {
        task.await?;
    }
    if app.config.role.runs_workers() {
        save_hash_states(&app);
    }
    Ok(())
}

/// Takes back the hash states the last process saved when it stopped (`jobs::saved_states`).
fn restore_hash_states(app: &App) {
    let started = std::time::Instant::now();
    match jobs::saved_states::restore(&app.hash_states, &app.config.data_dir) {
        Ok(0) => {}
        Ok(states) => tracing::info!(
            states,
            duration_ms = started.elapsed().as_millis() as u64,
            "took back the hash states saved at the last stop"
        ),
        Err(e) => tracing::warn!(
            error = %format!("{e:#}"),
            "the hash states saved at the last stop are unreadable; the first publishes will hash again"
        ),
    }
}

/// Saves the hash states the workers kept, for the next start: its first publishes then
/// resume hashing rather than read every chunk of their indexes.
fn save_hash_states(app: &App) {
    let started = std::time::Instant::now();
    match jobs::saved_states::save(&app.hash_states, &app.config.data_dir) {
        Ok(targets) => tracing::info!(
            targets,
            duration_ms = started.elapsed().as_millis() as u64,
            "saved the index hash states for the next start"
        ),
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "saving the index hash states failed"),
    }
}

/// Tells other processes (`status`) this one runs, every half minute, and that it stopped.
async fn announce_process(app: App, shutdown: CancellationToken) {
    let started = crate::db::now();
    let role = app.config.role.name();
    loop {
        let beat = crate::db::processes::heartbeat(
            &app.db,
            &app.instance,
            role,
            crate::status::VERSION,
            started,
        );
        if let Err(e) = beat.await {
            tracing::warn!(error = %format!("{e:#}"), "announcing this process failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
        }
    }
    let _ = crate::db::processes::gone(&app.db, &app.instance).await;
}

/// Logs signing keys close to expiry at start-up and once a day.
async fn warn_of_expiring_keys(app: App, shutdown: CancellationToken) {
    loop {
        crate::keys::log_expiry_warnings(&app).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(86_400)) => {}
        }
    }
}

async fn termination() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested");
}

pub(super) fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
