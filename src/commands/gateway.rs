//! `telespool gateway`: resolves the settings (flags > environment > config
//! file > defaults), starts a tokio runtime, and runs the gateway until
//! SIGTERM or ctrl-c; exits 0 after a graceful shutdown. SIGHUP reloads
//! the certificates, license keys and service tokens
//! ([`crate::gateway::reload`]).

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
        file_keep: args.file_keep,
        file_max_age: args.file_max_age,
        publish_license_key: args.publish_license_key,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        tls_client_ca: args.tls_client_ca,
        nats_creds: args.nats_creds,
        nats_tls_ca: args.nats_tls_ca,
        nats_tls_cert: args.nats_tls_cert,
        nats_tls_key: args.nats_tls_key,
        nats_password_file: args.nats_password_file,
        nats_token_file: args.nats_token_file,
        max_events: args.max_events,
        decode_budget: args.decode_budget,
        max_connections: args.max_connections,
        http2_max_streams: args.http2_max_streams,
        http2_keepalive_interval: args.http2_keepalive_interval,
        http2_keepalive_timeout: args.http2_keepalive_timeout,
        max_connection_age: args.max_connection_age,
        max_connection_age_grace: args.max_connection_age_grace,
        http_header_timeout: args.http_header_timeout,
        http_idle_timeout: args.http_idle_timeout,
        request_timeout: args.request_timeout,
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
        // Listen for signals before anything else, so that a SIGTERM right
        // after start is a graceful shutdown too.
        let signal = shutdown_signal()?;
        let gateway = Gateway::open(config.clone())
            .await
            .map_err(|e| CmdError::new(e.to_string()))?;
        #[cfg(unix)]
        {
            let reloads = gateway
                .reloader()
                .on_sighup()
                .map_err(|e| CmdError::new(format!("listening for SIGHUP: {e}")))?;
            tokio::spawn(reloads);
        }
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
            .run(grpc, http, signal)
            .await
            .map_err(|e| CmdError::new(e.to_string()))
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Registers SIGTERM and SIGINT (ctrl-c) now; the future resolves on
/// either.
#[cfg(unix)]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, CmdError> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen =
        |kind| signal(kind).map_err(|e| CmdError::new(format!("listening for signals: {e}")));
    let mut term = listen(SignalKind::terminate())?;
    let mut int = listen(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
        }
    })
}

/// ctrl-c.
#[cfg(not(unix))]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, CmdError> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
