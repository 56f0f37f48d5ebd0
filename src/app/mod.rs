//! Wiring of `telespool serve`: open the stores, start the servers and the
//! background tasks, and shut down gracefully.
//!
//! The data directory is created `0700`, and anything in it with group or
//! other access is tightened (and logged) before the stores open; every
//! file the stores create is `0600` ([`crate::storage::owner_only`]).
//!
//! Shutdown (SIGTERM or ctrl-c): the servers stop accepting and finish the
//! requests they hold (each acknowledged only once durable), the background
//! tasks stop, the mirror writes what it was given, the queue syncs and
//! flushes its index, and the process exits 0.
//!
//! Both listeners run with the connection limits, deadlines and HTTP/2
//! settings of [`crate::net`] (`--max-connections`, `--request-timeout`,
//! ...); the soft `RLIMIT_NOFILE` is raised to the hard limit at start.

pub mod series;

use crate::clock::{Clock, SystemClock};
use crate::config::ServeConfig;
use crate::dead_letter::DeadLetterStore;
use crate::event_logs::store::EventLogStore;
use crate::grpc_limits::DecodeBudget;
use crate::grpc_limits::MAX_MESSAGE_BYTES as GRPC_MAX_MESSAGE_BYTES;
use crate::grpc_limits::budget::SIDECAR_BUDGET;
use crate::ingest::admin::Admin;
use crate::ingest::grpc::IngestService;
use crate::ingest::http::{HttpState, router};
use crate::queue::Queue;
use crate::tee::store::Tee;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why the sidecar could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The queue could not be opened (in use, damaged beyond recovery,
    /// I/O). Nothing started; the operator reads the cause.
    #[error("opening the export queue: {0}")]
    Queue(#[from] crate::queue::QueueError),
    /// The event_logs store could not be opened. Nothing started; the
    /// operator reads the cause.
    #[error("opening event_logs: {0}")]
    EventLogs(#[from] crate::event_logs::store::EventLogError),
    /// The dead-letter store could not be opened. Nothing started; the
    /// operator reads the cause.
    #[error("opening the dead-letter store: {0}")]
    DeadLetters(#[from] crate::dead_letter::DeadLetterError),
    /// A listener could not be bound. The operator frees the address or
    /// picks another (`--grpc-listen`, `--http-listen`).
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Other I/O at start (the data directory, the instance id). The
    /// operator fixes the path or its permissions.
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The gRPC server failed while serving. The sidecar stops; the
    /// operator reads the cause and restarts it.
    #[error("gRPC server failed: {0}")]
    Grpc(#[source] tonic::transport::Error),
    /// A task of the sidecar (opening the queue, a server, closing the
    /// stores) panicked or was cancelled. A panic is a bug: the operator
    /// reports it with the log; the data on disk is recovered on the next
    /// start.
    #[error("the {what} task failed: {source}")]
    Task {
        /// Which task (`startup`, `server`, `shutdown`).
        what: &'static str,
        /// The failure.
        source: tokio::task::JoinError,
    },
    /// The export settings cannot be used (the gateway address, TLS
    /// files). Nothing started; the operator fixes the setting the cause
    /// names.
    #[error("export: {0}")]
    Export(#[from] crate::export::channel::ChannelError),
}

/// The process-wide Prometheus recorder ([`crate::prometheus`], installed
/// once; shared by every sidecar or gateway started in this process).
pub fn metrics_handle() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    let handle = crate::prometheus::install().ok()?;
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        crate::prometheus::register(series::SIDECAR_SERIES);
        crate::net::listener::describe_metrics();
    });
    Some(handle)
}

/// A running sidecar.
#[derive(Debug)]
pub struct Running {
    /// The bound gRPC address.
    pub grpc_addr: SocketAddr,
    /// The bound HTTP address.
    pub http_addr: SocketAddr,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<Result<(), AppError>>>,
    tasks: Vec<JoinHandle<()>>,
    tee: Arc<Tee>,
    queue: Arc<Queue>,
    event_logs: Arc<EventLogStore>,
    dead_letters: Arc<DeadLetterStore>,
}

/// The exporter, when a gateway address is configured and the export mode
/// is not `disabled` (which stops the exporter as well as queueing, as in
/// Sourcegraph; the backlog stays).
/// Also returns the channel's TLS config, reloaded on SIGHUP.
type ExporterAndTls = (
    crate::export::exporter::Exporter,
    Option<Arc<crate::tls::client::ClientTls>>,
);

fn exporter(
    config: &ServeConfig,
    queue: &Arc<Queue>,
    dead_letters: &Arc<DeadLetterStore>,
    clock: &Arc<dyn Clock>,
    wake: &Arc<tokio::sync::Notify>,
) -> Result<Option<ExporterAndTls>, AppError> {
    if config.export.addr.is_none() {
        return Ok(None);
    }
    if config.tee.export_mode == crate::event::export_mode::ExportMode::Disabled {
        tracing::warn!(
            "export mode is disabled: the exporter does not run (the backlog stays in the queue)"
        );
        return Ok(None);
    }
    let crate::export::channel::ExportChannel { channel, tls } =
        crate::export::channel::export_channel(&config.export)?;
    let instance_id = crate::export::identity::instance_id(&config.export, &config.data_dir)
        .map_err(|source| AppError::Io {
            what: "reading or creating the instance id",
            source,
        })?;
    let identifier = crate::export::identity::identifier(&config.export, &instance_id);
    let exporter = crate::export::exporter::Exporter::new(
        queue.clone(),
        dead_letters.clone(),
        clock.clone(),
        config.export.clone(),
        identifier,
        channel,
        wake.clone(),
        Arc::new(crate::export::exporter::ExportStats::default()),
    );
    Ok(Some((exporter, tls)))
}

/// Binds the configured listeners.
pub async fn bind(config: &ServeConfig) -> Result<(TcpListener, TcpListener), AppError> {
    let grpc = TcpListener::bind(config.listen.grpc)
        .await
        .map_err(|source| AppError::Bind {
            addr: config.listen.grpc,
            source,
        })?;
    let http = TcpListener::bind(config.listen.http)
        .await
        .map_err(|source| AppError::Bind {
            addr: config.listen.http,
            source,
        })?;
    Ok((grpc, http))
}

/// Opens the stores and starts serving on the given listeners.
pub async fn start(
    config: ServeConfig,
    grpc: TcpListener,
    http: TcpListener,
) -> Result<Running, AppError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let data_dir = config.data_dir.clone();
    crate::storage::owner_only::create_dir_all(&data_dir).map_err(|source| AppError::Io {
        what: "creating the data directory",
        source,
    })?;
    // Data left with looser modes (an older telespool, a copy made under
    // umask 022) is tightened, and each change logged at warn.
    crate::storage::owner_only::tighten(&data_dir).log("data directory", true);
    let qc = config.queue.clone();
    let dd = data_dir.clone();
    let (queue, report) = tokio::task::spawn_blocking(move || Queue::open_dir(&dd, qc))
        .await
        .map_err(|source| AppError::Task {
            what: "startup",
            source,
        })??;
    if report.lost_records() > 0 || !report.truncated.is_empty() {
        tracing::warn!(
            lost = report.lost_records(),
            truncated = report.truncated.len(),
            "queue recovery found damage; see earlier log lines"
        );
    }
    let queue = Arc::new(queue);
    let event_logs = Arc::new(EventLogStore::open(
        &data_dir.join("event_logs"),
        config.event_logs.clone(),
    )?);
    let dead_letters = Arc::new(DeadLetterStore::open(
        &data_dir.join("dead_letters"),
        config.dead_letters.clone(),
    )?);
    let tee = Arc::new(
        Tee::new(
            queue.clone(),
            event_logs.clone(),
            dead_letters.clone(),
            config.tee.clone(),
            clock.clone(),
        )
        .map_err(|source| AppError::Io {
            what: "starting the mirror",
            source,
        })?,
    );
    let grpc_addr = grpc.local_addr().map_err(|source| AppError::Io {
        what: "reading the gRPC address",
        source,
    })?;
    let http_addr = http.local_addr().map_err(|source| AppError::Io {
        what: "reading the HTTP address",
        source,
    })?;
    let (stop, stopped) = watch::channel(false);
    let wake = Arc::new(tokio::sync::Notify::new());

    let mut servers = Vec::new();
    // The recorder first, so the budget's metrics are registered with it.
    let metrics = metrics_handle();
    let budget = DecodeBudget::new(config.listen.decode_budget_bytes, SIDECAR_BUDGET);
    let svc =
        IngestService::new(tee.clone(), wake.clone()).into_server(budget, GRPC_MAX_MESSAGE_BYTES);
    let limits = config.limits;
    crate::net::rlimit::prepare("sidecar", &limits, 2);
    let mut rx = stopped.clone();
    // TCP_NODELAY is set on every accepted connection (crate::net): an
    // answer is small and written in more than one piece (HTTP/2 headers,
    // data), and with Nagle the last piece waited for the client's delayed
    // ACK, up to 40 ms (p90 of paced ingest at 40,000-45,000 events/s was
    // ~46 ms, p50 5-7 ms).
    let incoming = crate::net::grpc::listener(grpc, "sidecar_grpc", &limits).into_stream();
    servers.push(tokio::spawn(async move {
        crate::net::grpc::server(&limits)
            .initial_stream_window_size(crate::grpc_limits::STREAM_WINDOW_BYTES)
            .initial_connection_window_size(crate::grpc_limits::CONNECTION_WINDOW_BYTES)
            .add_service(svc)
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
            .map_err(AppError::Grpc)
    }));

    let admin = crate::ingest::admin::router(Arc::new(Admin {
        queue: queue.clone(),
        event_logs: event_logs.clone(),
        dead_letters: dead_letters.clone(),
        token: config.listen.admin_token.clone(),
        clock: clock.clone(),
        require_token: config.listen.admin_require_token,
        listen: config.listen.http.ip(),
        wake: wake.clone(),
    }));
    let state = HttpState {
        tee: tee.clone(),
        wake: wake.clone(),
        max_body_bytes: config.listen.max_body_bytes,
        metrics,
        ingest_budget: Arc::new(tokio::sync::Semaphore::new(
            config.listen.max_ingest_in_flight,
        )),
        ingest_budget_bytes: config.listen.max_ingest_in_flight,
        decode_slots: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
        )),
    };
    let app = router(state, admin, limits.request_timeout);
    let mut rx = stopped.clone();
    let http = crate::net::http::listener(http, "sidecar_http", &limits);
    servers.push(tokio::spawn(async move {
        crate::net::http::serve(http, app, &limits, async move {
            let _ = rx.wait_for(|s| *s).await;
        })
        .await;
        Ok(())
    }));

    let mut tasks = vec![
        tokio::spawn(crate::tasks::maintenance(
            queue.clone(),
            config.clone(),
            stopped.clone(),
        )),
        tokio::spawn(crate::tasks::cleanup(
            queue.clone(),
            event_logs.clone(),
            clock.clone(),
            config.cleanup.clone(),
            stopped.clone(),
        )),
    ];
    let mut export_tls = None;
    if let Some((exporter, tls)) = exporter(&config, &queue, &dead_letters, &clock, &wake)? {
        tasks.push(tokio::spawn(exporter.run(stopped.clone())));
        export_tls = tls;
    }
    if config.tee.dotcom {
        tracing::warn!(
            "--dotcom is on: exported events are NOT redacted (private metadata and marketing tracking are exported as recorded); use it only for Sourcegraph.com"
        );
    }
    tasks.push(tokio::spawn(crate::export::channel::reload_on_sighup(
        export_tls,
        stopped.clone(),
    )));
    if config.export.addr.is_none() {
        tracing::warn!(
            quota_bytes = config.queue.quota_bytes,
            "export is off (no --export-addr / TELEMETRY_GATEWAY_EXPORTER_EXPORT_ADDR): events are kept in the queue up to its quota, for a gateway configured later"
        );
    }
    tracing::info!(grpc = %grpc_addr, http = %http_addr, data_dir = %data_dir.display(), "telespool sidecar serving");
    Ok(Running {
        grpc_addr,
        http_addr,
        stop,
        servers,
        tasks,
        tee,
        queue,
        event_logs,
        dead_letters,
    })
}

impl Running {
    /// The tee (for in-process tests).
    pub fn tee(&self) -> &Arc<Tee> {
        &self.tee
    }

    /// The export queue (for in-process tests and benchmarks). A clone held
    /// past [`Running::shutdown`] keeps the queue open and its directory
    /// locked.
    pub fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    /// The event_logs mirror (for in-process tests). A clone held past
    /// [`Running::shutdown`] keeps its directory locked.
    pub fn event_logs(&self) -> &Arc<EventLogStore> {
        &self.event_logs
    }

    /// The dead-letter store (for in-process tests). A clone held past
    /// [`Running::shutdown`] keeps its sled directory locked.
    pub fn dead_letters(&self) -> &Arc<DeadLetterStore> {
        &self.dead_letters
    }

    /// Stops intake, finishes what was accepted, flushes, and returns.
    pub async fn shutdown(self) -> Result<(), AppError> {
        let _ = self.stop.send(true);
        let mut first_err = None;
        for s in self.servers {
            match s.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => {
                    first_err.get_or_insert(AppError::Task {
                        what: "server",
                        source: e,
                    });
                }
            }
        }
        for t in self.tasks {
            let _ = t.await;
        }
        let tee = self.tee;
        let queue = self.queue;
        let event_logs = self.event_logs;
        let dead_letters = self.dead_letters;
        let closed = tokio::task::spawn_blocking(move || {
            // The servers are done: this is the last reference to the tee,
            // unless a request task is still unwinding.
            match Arc::try_unwrap(tee) {
                Ok(mut t) => t.close(),
                Err(t) => drop(t),
            }
            let q = queue.clone();
            drop(queue);
            if let Err(e) = q.flush_index() {
                tracing::warn!(error = %e, "flushing the queue index at shutdown failed");
            }
            match Arc::try_unwrap(q) {
                Ok(q) => {
                    if let Err(e) = q.close() {
                        tracing::warn!(error = %e, "closing the queue failed");
                    }
                }
                Err(q) => {
                    if let Err(e) = q.sync() {
                        tracing::warn!(error = %e, "syncing the queue at shutdown failed");
                    }
                }
            }
            event_logs.close();
            let _ = dead_letters.flush();
        })
        .await;
        if let Err(e) = closed {
            first_err.get_or_insert(AppError::Task {
                what: "shutdown",
                source: e,
            });
        }
        tracing::info!("telespool sidecar stopped");
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Waits for SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
}

/// `telespool serve`: runs until SIGTERM or ctrl-c.
pub fn serve(config: ServeConfig) -> Result<(), AppError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("telespool")
        .build()
        .map_err(|source| AppError::Io {
            what: "starting the runtime",
            source,
        })?;
    rt.block_on(async move {
        let (grpc, http) = bind(&config).await?;
        let running = start(config, grpc, http).await?;
        shutdown_signal().await;
        running.shutdown().await
    })?;
    rt.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}
