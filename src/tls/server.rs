//! Server side: the gateway's gRPC listener over TLS.
//!
//! [`ServerTls`] holds the certificate chain and key (and, for mutual TLS,
//! the CA that client certificates must chain to) as a rustls
//! `ServerConfig` behind an `ArcSwap`; [`ServerTls::reload`] swaps in a new
//! one built from the files (see the parent module for the reload rules).
//! With a client CA, a client that presents no certificate, or one that
//! does not chain to the CA, fails the handshake.
//!
//! [`incoming`] is the seam with the listener: it takes the stream of
//! accepted connections (whatever accepts and limits them) and yields TLS
//! connections, handshaking up to [`MAX_HANDSHAKES_IN_FLIGHT`] at once,
//! each within [`HANDSHAKE_TIMEOUT`]. A failed or timed-out handshake
//! closes that connection only: it is logged at debug level and counted
//! in `telespool_gateway_tls_handshake_failures_total{reason}` (`timeout`
//! or `error`), never passed on as an error (tonic would stop serving on an
//! accept error it does not know).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::{Stream, StreamExt};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::{ALPN_H2, PemFile, TlsError, cert_key_error, load_pair, load_roots, provider};

/// A connection that has not finished its handshake by then is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes run at once; accepting waits while this many are running.
pub const MAX_HANDSHAKES_IN_FLIGHT: usize = 1024;
/// Handshake failures, by reason.
pub const HANDSHAKE_FAILURES: &str = "telespool_gateway_tls_handshake_failures_total";

/// The files a server config is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PemFile,
    /// The leaf's private key.
    pub key: PemFile,
    /// CA bundle client certificates must chain to (mutual TLS); none: no
    /// client certificates asked for.
    pub client_ca: Option<PemFile>,
}

impl ServerTlsFiles {
    /// Builds a rustls server config from the files.
    pub fn build(&self) -> Result<ServerConfig, TlsError> {
        let provider = provider();
        let (certs, key) = load_pair(&self.cert, &self.key)?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let roots = load_roots(ca)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|source| TlsError::ClientVerifier {
                            setting: ca.setting,
                            path: ca.path.clone(),
                            source,
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(cert_key_error(&self.cert, &self.key))?;
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(config)
    }
}

/// A reloadable server config (see the module docs).
#[derive(Debug)]
pub struct ServerTls {
    files: ServerTlsFiles,
    current: ArcSwap<ServerConfig>,
}

impl ServerTls {
    /// Loads the files; fails if any is missing or unusable.
    pub fn load(files: ServerTlsFiles) -> Result<ServerTls, TlsError> {
        let config = files.build()?;
        Ok(ServerTls {
            files,
            current: ArcSwap::from_pointee(config),
        })
    }

    /// Reads the files again and swaps the new config in; on error the
    /// current one stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = self.files.build()?;
        self.current.store(Arc::new(config));
        Ok(())
    }

    /// The files.
    pub fn files(&self) -> &ServerTlsFiles {
        &self.files
    }

    /// The config new handshakes use.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// An acceptor with the current config.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config())
    }
}

/// Performs the TLS handshake on each accepted connection of `accepted`
/// (see the module docs). Accept errors pass through unchanged.
pub fn incoming<S, IO, E>(
    accepted: S,
    tls: Arc<ServerTls>,
) -> impl Stream<Item = Result<TlsStream<IO>, E>>
where
    S: Stream<Item = Result<IO, E>>,
    IO: AsyncRead + AsyncWrite + Unpin,
{
    accepted
        .map(move |conn| {
            let acceptor = tls.acceptor();
            async move {
                let io = match conn {
                    Ok(io) => io,
                    Err(e) => return Some(Err(e)),
                };
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                    Ok(Ok(stream)) => Some(Ok(stream)),
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "TLS handshake failed");
                        metrics::counter!(HANDSHAKE_FAILURES, "reason" => "error").increment(1);
                        None
                    }
                    Err(_) => {
                        tracing::debug!(timeout = ?HANDSHAKE_TIMEOUT, "TLS handshake timed out");
                        metrics::counter!(HANDSHAKE_FAILURES, "reason" => "timeout").increment(1);
                        None
                    }
                }
            }
        })
        .buffer_unordered(MAX_HANDSHAKES_IN_FLIGHT)
        .filter_map(futures::future::ready)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{TestCa, write};
    use super::*;

    fn files(dir: &std::path::Path, ca: &TestCa, serial: u64) -> ServerTlsFiles {
        let (cert, key) = ca.leaf(&["localhost", "127.0.0.1"], serial);
        ServerTlsFiles {
            cert: PemFile::new("tls_cert", write(dir, "cert.pem", &cert)),
            key: PemFile::new("tls_key", write(dir, "key.pem", &key)),
            client_ca: None,
        }
    }

    #[test]
    fn a_reload_swaps_the_config_and_a_failed_one_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("ca");
        let tls = ServerTls::load(files(dir.path(), &ca, 1)).unwrap();
        let first = tls.config();
        files(dir.path(), &ca, 2);
        tls.reload().unwrap();
        let second = tls.config();
        assert!(!Arc::ptr_eq(&first, &second), "reloaded");
        write(dir.path(), "cert.pem", "garbage");
        let e = tls.reload().unwrap_err();
        assert!(e.to_string().contains("tls_cert"), "{e}");
        assert!(Arc::ptr_eq(&second, &tls.config()), "kept");
        assert_eq!(tls.config().alpn_protocols, vec![b"h2".to_vec()]);
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("ca");
        let f = files(dir.path(), &ca, 1);
        let (_, other_key) = ca.leaf(&["localhost"], 2);
        write(dir.path(), "key.pem", &other_key);
        let e = ServerTls::load(f).unwrap_err();
        assert!(matches!(e, TlsError::CertKey(_)), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("tls_cert") && text.contains("tls_key"),
            "{text}"
        );
    }
}
