//! The one long-lived gRPC channel to the gateway: TLS (rustls, webpki
//! roots) for `https://`, plain text only for a loopback address or with
//! `--export-insecure`; connect timeout and HTTP/2 keepalive (20 s interval,
//! 10 s timeout, also while idle: Sourcegraph's client settings). The
//! channel reconnects by itself; streams opened on it after an outage just
//! work.

use crate::config::ExportConfig;
use std::time::Duration;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// Connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the gateway address cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// Not a URL tonic accepts.
    #[error("export address {addr:?} is invalid: {reason}")]
    Invalid {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Plain text to a non-loopback host without `--export-insecure`.
    #[error(
        "export address {addr:?} is plain http to a non-loopback host; use https:// or pass --export-insecure"
    )]
    Insecure {
        /// The address.
        addr: String,
    },
}

fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Builds the (lazily connecting) channel.
pub fn channel(config: &ExportConfig) -> Result<Channel, ChannelError> {
    let addr = config.addr.clone().unwrap_or_default();
    let invalid = |reason: String| ChannelError::Invalid {
        addr: addr.clone(),
        reason,
    };
    let uri: tonic::transport::Uri = addr
        .parse()
        .map_err(|e: tonic::codegen::http::uri::InvalidUri| invalid(e.to_string()))?;
    let host = uri.host().unwrap_or_default().to_string();
    let mut endpoint = Endpoint::from_shared(addr.clone())
        .map_err(|e| invalid(e.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .initial_stream_window_size(crate::config::GRPC_STREAM_WINDOW_BYTES)
        .initial_connection_window_size(crate::config::GRPC_CONNECTION_WINDOW_BYTES)
        .tcp_nodelay(true);
    match uri.scheme_str() {
        Some("https") => {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_webpki_roots().domain_name(host))
                .map_err(|e| invalid(e.to_string()))?;
        }
        Some("http") => {
            if !is_loopback_host(&host) && !config.insecure {
                return Err(ChannelError::Insecure { addr });
            }
        }
        _ => return Err(invalid("the scheme must be https:// or http://".into())),
    }
    Ok(endpoint.connect_lazy())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_EXPORT_INTERVAL;

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
