//! Wiring: identity, sink, metrics, the gRPC and HTTP servers, and the
//! graceful shutdown that ties them together.
//!
//! Shutdown order: the signal stops the gRPC server from accepting and
//! tells every open stream to stop reading; streams answer the payloads
//! they hold and end with `Unavailable`; unary calls finish; then (or after
//! `shutdown_timeout`) the HTTP server stops and the sink is flushed and
//! closed. `/readyz` answers 503 from the signal on.
//!
//! Both listeners run with the connection limits, deadlines and HTTP/2
//! settings of [`crate::net`] (`GatewayConfig::limits`); the soft
//! `RLIMIT_NOFILE` is raised to the hard limit when the gateway starts
//! serving.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use super::config::GatewayConfig;
use super::http::{self, HttpState};
use super::identity::{Identity, IdentityFileError};
use super::metrics::{self, MetricsError};
use super::publish::Publisher;
use super::reload::Reloader;
use super::server::{self, GatewayService, ServeError};
use super::shutdown;
use super::sink::{self, Sink, SinkError};
use crate::grpc_limits::DecodeBudget;
use crate::grpc_limits::budget::GATEWAY_BUDGET;
use crate::tls::server::ServerTls;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A license-keys or service-tokens file cannot be read or parsed at
    /// start or reload. The operator fixes the file the cause names.
    #[error(transparent)]
    Identity(#[from] IdentityFileError),
    /// The sink could not be opened or closed. At start nothing runs; the
    /// operator fixes the sink setting or its target (file, NATS).
    #[error("sink: {0}")]
    Sink(#[from] SinkError),
    /// The metrics recorder could not be installed (another one is, in
    /// this process). A bug in the embedding program: install one only.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// A listen address could not be bound. The operator frees the
    /// address or picks another (the setting named).
    #[error("{setting} {address}: {source}")]
    Bind {
        /// `grpc_listen` or `http_listen`.
        setting: &'static str,
        /// The address.
        address: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// A server failed while serving. The gateway stops; the operator
    /// reads the cause and restarts it.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The TLS certificate, key or client CA cannot be used. Nothing
    /// starts (or a reload keeps the old files); the operator fixes the file.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// A gateway ready to serve.
pub struct Gateway {
    config: GatewayConfig,
    identity: Arc<Identity>,
    sink: Arc<dyn Sink>,
    metrics: PrometheusHandle,
    tls: Option<Arc<ServerTls>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.config)
            .field("sink", &self.sink.name())
            .finish()
    }
}

impl Gateway {
    /// Loads the identity and TLS files and opens the configured sink.
    pub async fn open(config: GatewayConfig) -> Result<Gateway, GatewayError> {
        let identity = load_identity(&config)?;
        let tls = load_tls(&config)?;
        let sink = sink::open(&config).await?;
        Self::assemble(config, identity, tls, sink)
    }

    /// A gateway publishing to the given sink (tests, benchmarks, embedding).
    pub fn with_sink(config: GatewayConfig, sink: Arc<dyn Sink>) -> Result<Gateway, GatewayError> {
        let identity = load_identity(&config)?;
        let tls = load_tls(&config)?;
        Self::assemble(config, identity, tls, sink)
    }

    fn assemble(
        config: GatewayConfig,
        identity: Identity,
        tls: Option<ServerTls>,
        sink: Arc<dyn Sink>,
    ) -> Result<Gateway, GatewayError> {
        Ok(Gateway {
            config,
            identity: Arc::new(identity),
            sink,
            metrics: metrics::install()?,
            tls: tls.map(Arc::new),
        })
    }

    /// What a SIGHUP reloads (see [`super::reload`]).
    pub fn reloader(&self) -> Reloader {
        Reloader::new(self.identity.clone(), self.tls.clone())
    }

    /// Binds the configured gRPC and HTTP addresses.
    pub async fn bind(&self) -> Result<(TcpListener, TcpListener), GatewayError> {
        let bind = |setting, address| async move {
            TcpListener::bind(address)
                .await
                .map_err(|source| GatewayError::Bind {
                    setting,
                    address,
                    source,
                })
        };
        Ok((
            bind("grpc_listen", self.config.grpc_listen).await?,
            bind("http_listen", self.config.http_listen).await?,
        ))
    }

    /// The sink.
    pub fn sink(&self) -> &Arc<dyn Sink> {
        &self.sink
    }

    /// Serves gRPC on `grpc` and HTTP on `http` until `shutdown` resolves,
    /// then shuts down gracefully (see the module docs).
    pub async fn run(
        self,
        grpc: TcpListener,
        http: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), GatewayError> {
        let (trigger, stopping) = shutdown::channel();
        let (http_trigger, mut http_stop) = shutdown::channel();
        let publisher = Publisher::new(self.sink.clone(), self.config.publish_concurrency)
            .with_license_key(self.config.publish_license_key);
        let budget = DecodeBudget::new(self.config.decode_budget_bytes, GATEWAY_BUDGET);
        let service = GatewayService::new(
            self.identity.clone(),
            publisher,
            stopping.clone(),
            self.config.max_events,
            budget,
        );
        let mut grpc_stop = stopping.clone();
        let limits = self.config.limits;
        crate::net::rlimit::prepare("gateway", &limits, 2);
        let mut grpc_task = tokio::spawn(server::serve(
            grpc,
            service,
            self.tls.clone(),
            limits,
            async move {
                grpc_stop.recv().await;
            },
        ));
        let state = HttpState {
            sink: self.sink.clone(),
            metrics: self.metrics.clone(),
            stopping,
        };
        let mut http_task = tokio::spawn(http::serve(http, state, limits, async move {
            http_stop.recv().await;
        }));
        let mut early = None;
        tokio::select! {
            () = shutdown => tracing::info!("shutdown signal: finishing in-flight payloads"),
            result = &mut grpc_task => early = Some(result),
            result = &mut http_task => {
                tracing::error!(?result, "the HTTP server stopped");
            }
        }
        trigger.fire();
        let grpc_result = match early {
            Some(result) => result,
            None => {
                match tokio::time::timeout(self.config.shutdown_timeout, &mut grpc_task).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::warn!(
                            timeout = ?self.config.shutdown_timeout,
                            "shutdown timeout: abandoning calls still open"
                        );
                        grpc_task.abort();
                        Ok(Ok(()))
                    }
                }
            }
        };
        http_trigger.fire();
        if !http_task.is_finished() {
            let _ = http_task.await;
        }
        let closed = self.sink.close().await;
        tracing::info!("gateway stopped");
        match grpc_result {
            Ok(result) => result?,
            Err(join) => tracing::error!(error = %join, "the gRPC server task failed"),
        }
        closed?;
        Ok(())
    }
}

fn load_tls(config: &GatewayConfig) -> Result<Option<ServerTls>, crate::tls::TlsError> {
    match config.server_tls_files() {
        Some(files) => {
            let mutual = files.client_ca.is_some();
            let tls = ServerTls::load(files)?;
            tracing::info!(mutual, "gRPC listener: TLS");
            Ok(Some(tls))
        }
        None => {
            tracing::warn!(
                "gRPC listener: plain text (no --tls-cert/--tls-key): license keys and tokens cross the network in clear"
            );
            Ok(None)
        }
    }
}

fn load_identity(config: &GatewayConfig) -> Result<Identity, IdentityFileError> {
    let identity = Identity::load(
        config.license_keys.as_deref(),
        config.service_tokens.as_deref(),
        config.accept_any_license,
    )?;
    if config.accept_any_license {
        tracing::warn!("accepting any license key (--accept-any-license): for development only");
    } else if config.license_keys.is_none() {
        tracing::warn!("no --license-keys file: licensed instances will be refused");
    }
    Ok(identity)
}
