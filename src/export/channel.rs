//! The one long-lived gRPC channel to the gateway: TLS for `https://`,
//! plain text only for a loopback address or with `--export-insecure`;
//! connect timeout and HTTP/2 keepalive (20 s interval, 10 s timeout, also
//! while idle: Sourcegraph's client settings). The channel reconnects by
//! itself; streams opened on it after an outage just work.
//!
//! TLS is rustls through [`crate::tls::client`]: the public (webpki) roots,
//! or only the CAs of `--export-ca-file`; a client certificate for mutual
//! TLS with `--export-client-cert` and `--export-client-key`; ALPN `h2`.
//! The config is reloadable: [`reload_on_sighup`] reads the files again on
//! SIGHUP, and the next connection the channel makes (after a broken
//! stream, a GOAWAY, an outage) uses them; the connection already open is
//! left alone. A reload that fails keeps the previous files' config and
//! logs an error naming the file. Reloads are counted in
//! `telespool_export_tls_reloads_total{result}` (`ok`, `error`).

use super::config::ExportConfig;
use crate::secret::redact_url;
use crate::tls::client::{ClientTls, ClientTlsFiles, TlsConnector};
use crate::tls::{PemFile, TlsError};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Uri};

/// Connect timeout (TCP and TLS handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS reloads of the exporter, by result.
pub const TLS_RELOADS: &str = "telespool_export_tls_reloads_total";

/// Why the gateway address cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// Not a URL tonic accepts. Nothing starts; the operator fixes
    /// `--export-addr`.
    #[error("export address {addr:?} is invalid: {reason}")]
    Invalid {
        /// The address (userinfo removed).
        addr: String,
        /// Why.
        reason: String,
    },
    /// Plain text to a non-loopback host without `--export-insecure`.
    /// The operator uses `https://`, or passes the flag knowingly.
    #[error(
        "export address {addr:?} is plain http to a non-loopback host; use https:// or pass --export-insecure"
    )]
    Insecure {
        /// The address (userinfo removed).
        addr: String,
    },
    /// A TLS file could not be used. Nothing starts (a SIGHUP reload
    /// keeps the old files); the operator fixes the file.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// The channel and, for `https://`, its reloadable TLS config.
#[derive(Debug)]
pub struct ExportChannel {
    /// The lazily connecting channel.
    pub channel: Channel,
    /// The TLS config its connections use (`https://` only).
    pub tls: Option<Arc<ClientTls>>,
}

/// The TLS files of the export settings.
pub fn tls_files(config: &ExportConfig) -> ClientTlsFiles {
    ClientTlsFiles {
        ca: config
            .ca_file
            .as_ref()
            .map(|p| PemFile::new("--export-ca-file (TELESPOOL_EXPORT_CA_FILE)", p)),
        identity: config
            .client_cert
            .as_ref()
            .zip(config.client_key.as_ref())
            .map(|(cert, key)| {
                (
                    PemFile::new("--export-client-cert (TELESPOOL_EXPORT_CLIENT_CERT)", cert),
                    PemFile::new("--export-client-key (TELESPOOL_EXPORT_CLIENT_KEY)", key),
                )
            }),
    }
}

/// Builds the (lazily connecting) channel.
pub fn channel(config: &ExportConfig) -> Result<Channel, ChannelError> {
    Ok(export_channel(config)?.channel)
}

/// Builds the (lazily connecting) channel and returns its TLS config too,
/// for [`reload_on_sighup`].
pub fn export_channel(config: &ExportConfig) -> Result<ExportChannel, ChannelError> {
    let given = config.addr.clone().unwrap_or_default();
    let addr = redact_url(&given);
    let invalid = |reason: String| ChannelError::Invalid {
        addr: addr.clone(),
        reason,
    };
    let uri: Uri = given
        .parse()
        .map_err(|e: tonic::codegen::http::uri::InvalidUri| invalid(e.to_string()))?;
    let host = uri.host().unwrap_or_default().to_string();
    let endpoint = |target: String| -> Result<Endpoint, ChannelError> {
        Ok(Endpoint::from_shared(target)
            .map_err(|e| invalid(e.to_string()))?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true)
            .initial_stream_window_size(crate::grpc_limits::STREAM_WINDOW_BYTES)
            .initial_connection_window_size(crate::grpc_limits::CONNECTION_WINDOW_BYTES)
            .tcp_nodelay(true))
    };
    match uri.scheme_str() {
        Some("https") => {
            let tls = Arc::new(ClientTls::load(tls_files(config))?);
            let port = uri.port_u16().unwrap_or(443);
            // tonic refuses an https:// endpoint with a connector of its
            // own: the connector is given http://HOST:PORT and does TLS
            // itself, and the requests carry the https:// origin.
            // The origin as written (a port only if given): proxies route on
            // the :authority, and some match "host" but not "host:443".
            let origin = match uri.port_u16() {
                Some(port) => format!("https://{host}:{port}"),
                None => format!("https://{host}"),
            };
            let origin: Uri = origin
                .parse()
                .map_err(|e: tonic::codegen::http::uri::InvalidUri| invalid(e.to_string()))?;
            let channel = endpoint(format!("http://{host}:{port}"))?
                .origin(origin)
                .connect_with_connector_lazy(TlsConnector::new(tls.clone()));
            Ok(ExportChannel {
                channel,
                tls: Some(tls),
            })
        }
        Some("http") => {
            if !is_loopback_host(&host) && !config.insecure {
                return Err(ChannelError::Insecure { addr });
            }
            Ok(ExportChannel {
                channel: endpoint(given.clone())?.connect_lazy(),
                tls: None,
            })
        }
        _ => Err(invalid("the scheme must be https:// or http://".into())),
    }
}

/// Reloads `tls` once, logging and counting the outcome.
pub fn reload(tls: &ClientTls) {
    match tls.reload() {
        Ok(()) => {
            tracing::info!("export TLS files reloaded: new connections to the gateway use them");
            metrics::counter!(TLS_RELOADS, "result" => "ok").increment(1);
        }
        Err(error) => {
            tracing::error!(
                %error,
                file = ?error.path(),
                "reloading the export TLS files failed: keeping the previous ones"
            );
            metrics::counter!(TLS_RELOADS, "result" => "error").increment(1);
        }
    }
}

/// Reloads the export TLS files on each SIGHUP until `stop` turns true.
/// Without TLS (or without Unix signals) it only waits for `stop`; it
/// listens either way, so that SIGHUP never ends the sidecar.
pub async fn reload_on_sighup(
    tls: Option<Arc<ClientTls>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hangups) => loop {
                tokio::select! {
                    received = hangups.recv() => {
                        if received.is_none() {
                            break;
                        }
                        match &tls {
                            Some(tls) => reload(tls),
                            None => tracing::info!("SIGHUP: no export TLS files to reload"),
                        }
                    }
                    _ = stop.wait_for(|s| *s) => return,
                }
            },
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP: TLS files will not be reloaded");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tls;
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::config::DEFAULT_EXPORT_INTERVAL;

    fn cfg(addr: &str, insecure: bool) -> ExportConfig {
        ExportConfig {
            addr: Some(addr.into()),
            interval: DEFAULT_EXPORT_INTERVAL,
            batch_size: 10_000,
            max_attempts: 10,
            instance_id: None,
            license_key: None,
            external_url: String::new(),
            insecure,
            gzip: false,
            ca_file: None,
            client_cert: None,
            client_key: None,
        }
    }

    #[tokio::test]
    async fn plain_text_is_allowed_only_to_loopback_or_when_insecure() {
        assert!(channel(&cfg("http://127.0.0.1:10080", false)).is_ok());
        assert!(channel(&cfg("http://localhost:10080", false)).is_ok());
        assert!(channel(&cfg("http://[::1]:10080", false)).is_ok());
        let e = channel(&cfg("http://gateway.example.com:80", false)).unwrap_err();
        assert!(e.to_string().contains("--export-insecure"), "{e}");
        assert!(channel(&cfg("http://gateway.example.com:80", true)).is_ok());
        assert!(channel(&cfg("https://telemetry-gateway.sourcegraph.com:443", false)).is_ok());
        assert!(channel(&cfg("ftp://x", false)).is_err());
    }
}
