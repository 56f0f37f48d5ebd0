//! `telespool gateway`: resolves the settings (flags > environment > config
//! file > defaults), starts a tokio runtime, and runs the gateway until
//! SIGTERM or ctrl-c; exits 0 after a graceful shutdown.

use std::process::ExitCode;

use super::CmdError;
use crate::cli::GatewayArgs;
use crate::gateway::Gateway;
use crate::gateway::config::{GatewayConfig, GatewaySettings};

/// The flags and environment as one settings layer.
pub fn settings_from_args(args: GatewayArgs) -> GatewaySettings {
    GatewaySettings {
        grpc_listen: args.grpc_listen,
        http_listen: args.http_listen,
        sink: args.sink,
        nats_stream: args.nats_stream,
        nats_subject: args.nats_subject,
        nats_ack_timeout: args.nats_ack_timeout,
        nats_duplicate_window: args.nats_duplicate_window,
        file_rotate_bytes: args.file_rotate_bytes,
        license_keys: args.license_keys,
        service_tokens: args.service_tokens,
        accept_any_license: args.accept_any_license,
        publish_concurrency: args.publish_concurrency,
        shutdown_timeout: args.shutdown_timeout,
    }
}

/// Resolves the configuration from the command line and its config file.
pub fn config(args: GatewayArgs) -> Result<GatewayConfig, CmdError> {
    let file = match &args.config {
        Some(path) => GatewaySettings::from_file(path).map_err(|e| CmdError::new(e.to_string()))?,
        None => GatewaySettings::default(),
    };
    GatewayConfig::resolve(settings_from_args(args).over(file))
        .map_err(|e| CmdError::new(e.to_string()))
}

/// Runs the gateway until a shutdown signal.
pub fn run(args: GatewayArgs) -> Result<ExitCode, CmdError> {
    let config = config(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gateway")
        .build()
        .map_err(|e| CmdError::new(format!("starting the async runtime: {e}")))?;
    runtime.block_on(async move {
        let gateway = Gateway::open(config.clone())
            .await
            .map_err(|e| CmdError::new(e.to_string()))?;
        let (grpc, http) = gateway
            .bind()
            .await
            .map_err(|e| CmdError::new(e.to_string()))?;
        tracing::info!(
            grpc = %grpc.local_addr().map_or(config.grpc_listen, |a| a),
            http = %http.local_addr().map_or(config.http_listen, |a| a),
            sink = %config.sink,
            publish_concurrency = config.publish_concurrency,
            "telespool gateway serving"
        );
        gateway
            .run(grpc, http, shutdown_signal())
            .await
            .map_err(|e| CmdError::new(e.to_string()))
    })?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or ctrl-c (SIGINT).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; ctrl-c only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
