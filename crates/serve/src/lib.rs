//! `promoml serve`: a model artifact behind an HTTP scoring service (axum on tokio).
//!
//! Routes:
//!
//! - `POST /v1/predict`: `{"rows": [{column: value, ...}], "explain": K}` (JSON) or a CSV body
//!   (`Content-Type: text/csv`, `?explain=K`); for an event-log artifact `{"events": [...],
//!   "cutoff": "..."}`. Answers `{"predictions": [...]}`: per row the columns `promoml predict`
//!   writes (the id, `score` / `score_<class>` / `prediction`, `uplift_<arm>`, `arm` and
//!   `expected_gain`, `anomaly_score` / `is_anomaly`), and with `explain` the row's
//!   `base_value`, its K largest `contributions` and `rest` (see
//!   [`promoml_pipeline::explain`]). Bad input gets 400 with the message `predict` would give
//!   (row index, column, value); a body over the size limit 413; more requests in flight than
//!   the limit 429.
//! - `GET /healthz`, `GET /readyz`, `GET /v1/model` (what is served, its inputs and types,
//!   the report's metrics), `GET /metrics` (Prometheus text).
//! - `POST /admin/reload` or SIGHUP: read the artifact again and swap it in atomically when
//!   it loads; requests in flight finish on the old model; a bad artifact is refused and the
//!   old model stays (see [`model`]).
//!
//! SIGTERM or SIGINT stops accepting connections and lets requests in flight finish.
//!
//! ```no_run
//! let registry = promoml_core::Registry::new(); // the binary's registry, with its plugins
//! let opts = promoml_serve::ServeOptions::new("out/model.promoml".into(), "127.0.0.1:8080".parse().unwrap());
//! promoml_serve::serve(opts, registry).unwrap();
//! ```

pub mod metrics;
pub mod model;
mod routes;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use metrics::Metrics;
use model::ModelSlot;
use promoml_core::Registry;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Semaphore, oneshot};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The artifact could not be loaded at start.
    #[error("cannot load the model: {0}")]
    Load(#[from] promoml_core::Error),
    /// The address could not be bound, or the runtime failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The model artifact (`OUT/model.promoml`).
    pub model: PathBuf,
    /// Address to listen on (port 0 picks a free one).
    pub addr: SocketAddr,
    /// Largest request body in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Most rows in one request (413 beyond).
    pub max_rows: usize,
    /// Most rows in one request that asks for explanations (413 beyond): a model without an
    /// exact method is evaluated `1 + 32 × inputs` times per explained row.
    pub max_explain_rows: usize,
    /// Most scoring requests answered at once (429 beyond).
    pub max_in_flight: usize,
    /// Runtime worker threads (0 = one per core).
    pub workers: usize,
}

impl ServeOptions {
    /// Defaults: 16 MiB bodies, 100,000 rows (1,000 with explanations), 64 scoring requests in
    /// flight, a worker per core.
    pub fn new(model: PathBuf, addr: SocketAddr) -> ServeOptions {
        ServeOptions {
            model,
            addr,
            max_body_bytes: 16 << 20,
            max_rows: 100_000,
            max_explain_rows: 1000,
            max_in_flight: 64,
            workers: 0,
        }
    }
}

/// What every route shares.
pub(crate) struct State {
    slot: ModelSlot,
    metrics: Metrics,
    options: ServeOptions,
    in_flight: Arc<Semaphore>,
    stopping: AtomicBool,
}

/// Reload the model, logging and counting the outcome.
pub(crate) fn reload_now(state: &State) -> promoml_core::Result<u64> {
    let r = state.slot.reload();
    match &r {
        Ok(g) => tracing::info!("model reloaded: generation {g}"),
        Err(e) => tracing::warn!("model reload refused, the old model stays: {e}"),
    }
    state.metrics.reload(r.is_ok());
    r
}

fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/predict", post(routes::predict))
        .route("/v1/model", get(routes::model))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/admin/reload", post(routes::reload))
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(state.options.max_body_bytes))
        .with_state(state)
}

/// A service running on its own runtime thread (see [`spawn`]).
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServeError>>>,
}

impl Running {
    /// Reload the model now, as SIGHUP or `POST /admin/reload` would.
    pub fn reload(&self) -> promoml_core::Result<u64> {
        reload_now(&self.state)
    }
    /// The serving model's generation.
    pub fn generation(&self) -> u64 {
        self.state.slot.current().generation
    }
    /// Stop accepting connections, let requests in flight finish, and wait.
    pub fn shutdown(mut self) -> Result<(), ServeError> {
        self.stop_and_join()
    }
    fn stop_and_join(&mut self) -> Result<(), ServeError> {
        self.state.stopping.store(true, Ordering::SeqCst);
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Load the model, bind the address and serve on a new thread until [`Running::shutdown`].
/// With `signals`, SIGHUP reloads the model and SIGTERM/SIGINT shut the service down.
pub fn spawn(options: ServeOptions, registry: Registry, signals: bool) -> Result<Running, ServeError> {
    let slot = ModelSlot::open(&options.model, registry)?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all().thread_name("promoml-serve");
    if options.workers > 0 {
        rt.worker_threads(options.workers);
    }
    let rt = rt.build().map_err(|source| ServeError::Io { what: "cannot start the runtime".into(), source })?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(options.addr))
        .map_err(|source| ServeError::Io { what: format!("cannot listen on {}", options.addr), source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServeError::Io { what: "cannot read the bound address".into(), source })?;
    let state = Arc::new(State {
        slot,
        metrics: Metrics::default(),
        in_flight: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
        options,
        stopping: AtomicBool::new(false),
    });
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let app = router(state.clone());
    let st = state.clone();
    let thread = std::thread::Builder::new()
        .name("promoml-serve".into())
        .spawn(move || {
            rt.block_on(async move {
                let shutdown = async move {
                    if signals {
                        wait_for_signals(st, stop_rx).await;
                    } else {
                        let _ = stop_rx.await;
                    }
                };
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                    .map_err(|source| ServeError::Io { what: "the server failed".into(), source })
            })
        })
        .map_err(|source| ServeError::Io { what: "cannot start the server thread".into(), source })?;
    Ok(Running { addr, state, stop: Some(stop_tx), thread: Some(thread) })
}

/// Until SIGTERM, SIGINT or a stop request: reload on SIGHUP.
async fn wait_for_signals(state: Arc<State>, mut stop: oneshot::Receiver<()>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut hup), Ok(mut term), Ok(mut int)) =
            (signal(SignalKind::hangup()), signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            tracing::warn!("cannot listen for signals: SIGHUP does not reload");
            let _ = stop.await;
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    let s = state.clone();
                    let _ = tokio::task::spawn_blocking(move || reload_now(&s)).await;
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = &mut stop => break,
            }
        }
        tracing::info!("shutting down: finishing the requests in flight");
        state.stopping.store(true, Ordering::SeqCst);
    }
    #[cfg(not(unix))]
    {
        let _ = state;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = &mut stop => {}
        }
    }
}

/// Serve until SIGTERM or SIGINT (SIGHUP reloads the model); prints the address it listens on.
pub fn serve(options: ServeOptions, registry: Registry) -> Result<(), ServeError> {
    let mut running = spawn(options, registry, true)?;
    let m = running.state.slot.current();
    println!(
        "serving {} ({} model of pipeline `{}`) on http://{}",
        m.path.display(),
        m.artifact.task(),
        m.artifact.describe()["pipeline"].as_str().unwrap_or(""),
        running.addr
    );
    drop(m);
    // The server thread ends on a signal; wait for it (holding the stop sender, whose drop
    // would stop it).
    let _keep = running.stop.take();
    match running.thread.take() {
        Some(t) => t.join().unwrap_or(Ok(())),
        None => Ok(()),
    }
}
