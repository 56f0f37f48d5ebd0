//! Connecting: the client options (credentials and TLS from the
//! settings) and the stream-subject check made at start.

use std::time::Duration;

use super::nats_error;
use crate::gateway::config::{NatsConfig, NatsUrl, NatsUserinfo};
use crate::gateway::sink::SinkError;

/// The client options: name, timeout, and the credentials and TLS of the
/// settings (see the module docs). Files are read here, so a missing or
/// empty one fails the start with an error naming its setting.
pub(super) async fn connect_options(
    url: &NatsUrl,
    config: &NatsConfig,
) -> Result<async_nats::ConnectOptions, SinkError> {
    let secret = |setting, path: &std::path::Path| {
        crate::secret::read_secret_file(setting, path)
            .map_err(|e| nats_error("credentials", false, e))
    };
    let mut options = async_nats::ConnectOptions::new()
        .name("telespool-gateway")
        .connection_timeout(Duration::from_secs(5));
    options = match (&url.userinfo, &config.password_file, &config.token_file) {
        (Some(NatsUserinfo::UserPassword { user, password }), _, _) => {
            options.user_and_password(user.clone(), password.clone())
        }
        (Some(NatsUserinfo::Single(user)), Some(path), _) => {
            options.user_and_password(user.clone(), secret("nats_password_file", path)?)
        }
        (Some(NatsUserinfo::Single(token)), None, _) => options.token(token.clone()),
        (None, _, Some(path)) => options.token(secret("nats_token_file", path)?),
        (None, _, None) => options,
    };
    if let Some(creds) = &config.creds {
        options = options.credentials_file(creds).await.map_err(|e| {
            nats_error(
                "credentials",
                false,
                format!("nats_creds: {}: {e}", creds.display()),
            )
        })?;
    }
    if config.tls_required() {
        options = options.require_tls(true);
    }
    let tls_error = |e: crate::tls::TlsError| nats_error("tls", false, e);
    if let Some(ca) = &config.tls_ca {
        crate::tls::load_roots(&crate::tls::PemFile::new("nats_tls_ca", ca)).map_err(tls_error)?;
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = config.tls_cert.as_ref().zip(config.tls_key.as_ref()) {
        crate::tls::load_certs(&crate::tls::PemFile::new("nats_tls_cert", cert))
            .map_err(tls_error)?;
        crate::tls::load_key(&crate::tls::PemFile::new("nats_tls_key", key)).map_err(tls_error)?;
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(options)
}

/// Whether a stream subject (possibly with `*` and `>` wildcards) captures
/// a literal subject.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut pattern = pattern.split('.');
    let mut subject = subject.split('.');
    loop {
        match (pattern.next(), subject.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(s)) if p == s => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}
