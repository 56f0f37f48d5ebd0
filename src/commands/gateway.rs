//! `telespool gateway`: resolves the settings (flags > environment > config
//! file > defaults, [`crate::gateway::settings`]), starts a tokio runtime, and runs the gateway until
//! SIGTERM or ctrl-c; exits 0 after a graceful shutdown. SIGHUP reloads
//! the certificates, license keys and service tokens
//! ([`crate::gateway::reload`]).

use std::process::ExitCode;

use super::CmdError;
use crate::cli::GatewayArgs;
use crate::gateway::Gateway;
use crate::gateway::config::GatewayConfig;

/// Resolves the configuration from the command line, the environment,
/// its config file and the defaults.
pub fn config(args: &GatewayArgs) -> Result<GatewayConfig, CmdError> {
    GatewayConfig::resolve(args).map_err(|e| CmdError::new(e.to_string()))
}

/// Runs the gateway until a shutdown signal.
pub fn run(args: GatewayArgs) -> Result<ExitCode, CmdError> {
    let config = config(&args)?;
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
