//! SIGHUP: reload the gateway's files without dropping a connection.
//!
//! | what | settings | applies to |
//! |---|---|---|
//! | TLS certificate chain and key, client CA | `tls_cert`, `tls_key`, `tls_client_ca` | new connections (handshakes); open connections and their streams keep their session |
//! | license keys, service tokens | `license_keys`, `service_tokens` | streams and calls whose metadata arrives afterwards |
//!
//! Each part reloads on its own: one that fails (a missing file, bad PEM, a
//! key that does not match its certificate, a bad line) keeps its previous
//! material and logs an error naming the setting and the file; the other
//! part still reloads. Each SIGHUP counts once in
//! `telespool_gateway_reloads_total{result}`: `ok` when every part
//! reloaded, `error` otherwise. Everything else (listen addresses, sink,
//! NATS credentials) needs a restart.

use std::sync::Arc;

use super::identity::Identity;
use super::metrics;
use crate::tls::server::ServerTls;

/// What a SIGHUP reloads; cheap to clone.
#[derive(Clone, Debug)]
pub struct Reloader {
    identity: Arc<Identity>,
    tls: Option<Arc<ServerTls>>,
}

impl Reloader {
    /// Reloads `identity` and, when the listener has TLS, `tls`.
    pub fn new(identity: Arc<Identity>, tls: Option<Arc<ServerTls>>) -> Reloader {
        Reloader { identity, tls }
    }

    /// Reloads every part (see the module docs); true when all reloaded.
    pub fn reload(&self) -> bool {
        let mut ok = true;
        if let Some(tls) = &self.tls {
            match tls.reload() {
                Ok(()) => tracing::info!(
                    cert = %tls.files().cert.path.display(),
                    "TLS certificate reloaded: new connections use it"
                ),
                Err(error) => {
                    ok = false;
                    tracing::error!(
                        %error,
                        file = ?error.path(),
                        "reloading the TLS files failed: keeping the previous certificate"
                    );
                }
            }
        }
        match self.identity.reload() {
            Ok(()) => tracing::info!("license keys and service tokens reloaded"),
            Err(error) => {
                ok = false;
                tracing::error!(
                    %error,
                    "reloading the identity files failed: keeping the previous license keys and service tokens"
                );
            }
        }
        metrics::record_reload(ok);
        ok
    }

    /// Reloads on each SIGHUP, for as long as the returned future runs.
    #[cfg(unix)]
    pub fn on_sighup(
        self,
    ) -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup())?;
        Ok(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading certificates, license keys and service tokens");
                self.reload();
            }
        })
    }
}
