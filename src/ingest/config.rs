//! [`ListenConfig`]: where the sidecar's ingest servers listen and what
//! they accept. Its settings (keys) are `grpc_listen`, `http_listen`,
//! `admin_token` (or `admin_token_file`), `admin_require_token`,
//! `max_body_size`, `max_ingest_in_flight` and `decode_budget`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use crate::grpc_limits::MAX_MESSAGE_BYTES;
use crate::settings::SettingError;

/// Default gRPC ingest address.
pub const DEFAULT_GRPC_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 10085));
/// Default HTTP address (ingest, admin API, metrics, health).
pub const DEFAULT_HTTP_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 10086));
/// Default largest HTTP request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Default budget of HTTP ingest bodies being read and decoded at once
/// (`max_ingest_in_flight`): four bodies of the default largest size.
pub const DEFAULT_MAX_INGEST_IN_FLIGHT: usize = 64 * 1024 * 1024;
/// Largest `max_ingest_in_flight` (the semaphore counts in `u32`).
pub const MAX_MAX_INGEST_IN_FLIGHT: usize = u32::MAX as usize;
/// Default decode budget of the gRPC ingest server.
pub const DEFAULT_DECODE_BUDGET_BYTES: u64 = crate::grpc_limits::DEFAULT_DECODE_BUDGET_BYTES;

/// Where and how the sidecar listens.
#[derive(Clone, Debug)]
pub struct ListenConfig {
    /// gRPC ingest address. Default [`DEFAULT_GRPC_LISTEN`].
    pub grpc: SocketAddr,
    /// HTTP address. Default [`DEFAULT_HTTP_LISTEN`].
    pub http: SocketAddr,
    /// Bearer token that opens the admin API to non-loopback clients. None by
    /// default: the admin API answers loopback clients only.
    pub admin_token: Option<String>,
    /// Largest HTTP body. Default [`DEFAULT_MAX_BODY_BYTES`] (16 MiB).
    pub max_body_bytes: usize,
    /// Require the admin token from loopback clients too. Default off.
    pub admin_require_token: bool,
    /// Bytes of `POST /v1/events` bodies read and decoded at once: a request
    /// holds its `Content-Length` (the largest body when unknown, at most the
    /// whole budget) from before its body is read until it is answered.
    /// Default [`DEFAULT_MAX_INGEST_IN_FLIGHT`] (64 MiB);
    /// 1..=[`MAX_MAX_INGEST_IN_FLIGHT`].
    pub max_ingest_in_flight: usize,
    /// Bytes of gRPC messages being received, decoded or held at once
    /// (see [`crate::grpc_limits`]); past it, `RESOURCE_EXHAUSTED`. At least
    /// [`MAX_MESSAGE_BYTES`]. Default [`DEFAULT_DECODE_BUDGET_BYTES`]
    /// (256 MiB).
    pub decode_budget_bytes: u64,
}

impl Default for ListenConfig {
    fn default() -> ListenConfig {
        ListenConfig {
            grpc: DEFAULT_GRPC_LISTEN,
            http: DEFAULT_HTTP_LISTEN,
            admin_token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            admin_require_token: false,
            max_ingest_in_flight: DEFAULT_MAX_INGEST_IN_FLIGHT,
            decode_budget_bytes: DEFAULT_DECODE_BUDGET_BYTES,
        }
    }
}

impl ListenConfig {
    /// Checks the settings; the error names the one that is wrong.
    pub fn validate(&self) -> Result<(), SettingError> {
        if self.admin_require_token && self.admin_token.is_none() {
            return Err(SettingError::Needs {
                key: "admin_require_token",
                needs: "admin_token",
                detail: " (or admin_token_file): loopback clients would be refused too",
            });
        }
        SettingError::check_range(
            "max_ingest_in_flight",
            self.max_ingest_in_flight as u64,
            1,
            MAX_MAX_INGEST_IN_FLIGHT as u64,
        )?;
        SettingError::check_range(
            "decode_budget",
            self.decode_budget_bytes,
            MAX_MESSAGE_BYTES as u64,
            u64::MAX,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_limits_name_their_setting() {
        assert!(ListenConfig::default().validate().is_ok());
        let e = ListenConfig {
            decode_budget_bytes: 1 << 20,
            ..ListenConfig::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.key(), "decode_budget");
        assert!(e.to_string().contains("at least 16777216"), "{e}");
        let e = ListenConfig {
            admin_require_token: true,
            ..ListenConfig::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.related(), ["admin_token"]);
    }
}
