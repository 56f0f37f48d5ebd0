//! [`ListenerLimits`]: the limits every listener of one server runs with,
//! their defaults, and their validation (see the table in [`super`]).

use std::time::Duration;

/// Default connection limit per listener of the gateway, which serves
/// thousands of instances.
pub const GATEWAY_MAX_CONNECTIONS: usize = 20_000;
/// Default connection limit per listener of the sidecar, which serves the
/// services of one instance.
pub const SIDECAR_MAX_CONNECTIONS: usize = 1_024;
/// Largest accepted connection limit.
pub const MAX_MAX_CONNECTIONS: usize = 1_000_000;
/// Default HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`: streams one connection
/// may have open at once (also the number of calls it can have in
/// progress: the streams past it are refused by HTTP/2, not queued by us).
pub const DEFAULT_HTTP2_MAX_STREAMS: u32 = 100;
/// Largest accepted stream limit.
pub const MAX_HTTP2_MAX_STREAMS: u32 = 100_000;
/// Default interval of the server's HTTP/2 keepalive pings (sent when
/// nothing was received for that long).
pub const DEFAULT_HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// Default time a keepalive ping may go unanswered before the connection
/// is closed.
pub const DEFAULT_HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Default age at which a connection is asked to go away (HTTP/2 `GOAWAY`
/// with `NO_ERROR`; HTTP/1: closed after its current request). Clients
/// reconnect, which spreads them over the gateways behind one address.
pub const DEFAULT_MAX_CONNECTION_AGE: Duration = Duration::from_secs(30 * 60);
/// Default time an aged connection gets to finish its calls before it is
/// closed.
pub const DEFAULT_MAX_CONNECTION_AGE_GRACE: Duration = Duration::from_secs(5 * 60);
/// Default time a client has to send its first bytes, and on HTTP/1 a
/// request's complete head (request line and headers); on a keep-alive
/// connection the wait for the next request's head counts too.
pub const DEFAULT_HTTP_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time an HTTP connection may pass with no byte moving either way
/// (a stalled body upload, a client that stopped reading its answer, an
/// idle HTTP/2 connection).
pub const DEFAULT_HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time an HTTP request or a unary gRPC call has from its arrival
/// to its answer's head (the body of an ordinary HTTP answer included).
/// Streaming calls and streaming routes are exempt.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 reset-flood guard: streams the client reset before the server
/// accepted them, pending at once, before the connection is closed with
/// `GOAWAY` (h2's default, which tonic switches off unless it is set).
pub const HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// HTTP/2 reset-flood guard: streams the server reset because of a client
/// protocol error before the connection is closed with `GOAWAY` (hyper's
/// default, also switched off by tonic unless set).
pub const HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
/// Shortest accepted duration setting.
pub const MIN_DURATION: Duration = Duration::from_millis(1);

/// The limits of one server's listeners. Every field is a setting (flag,
/// environment variable and TOML key named after the field), the same on
/// `telespool serve` and `telespool gateway`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerLimits {
    /// `max_connections`: connections each listener holds at once; past it
    /// the listener stops accepting and new connections wait in the
    /// kernel's backlog. Default [`GATEWAY_MAX_CONNECTIONS`] (gateway) or
    /// [`SIDECAR_MAX_CONNECTIONS`] (sidecar).
    pub max_connections: usize,
    /// `http2_max_streams`: HTTP/2 streams open at once per connection.
    /// Default [`DEFAULT_HTTP2_MAX_STREAMS`] (100).
    pub http2_max_streams: u32,
    /// `http2_keepalive_interval`. Default
    /// [`DEFAULT_HTTP2_KEEPALIVE_INTERVAL`] (60 s).
    pub http2_keepalive_interval: Duration,
    /// `http2_keepalive_timeout`. Default
    /// [`DEFAULT_HTTP2_KEEPALIVE_TIMEOUT`] (20 s).
    pub http2_keepalive_timeout: Duration,
    /// `max_connection_age`. Default [`DEFAULT_MAX_CONNECTION_AGE`] (30 min).
    pub max_connection_age: Duration,
    /// `max_connection_age_grace`. Default
    /// [`DEFAULT_MAX_CONNECTION_AGE_GRACE`] (5 min).
    pub max_connection_age_grace: Duration,
    /// `http_header_timeout`. Default [`DEFAULT_HTTP_HEADER_TIMEOUT`] (10 s).
    pub http_header_timeout: Duration,
    /// `http_idle_timeout`. Default [`DEFAULT_HTTP_IDLE_TIMEOUT`] (60 s).
    pub http_idle_timeout: Duration,
    /// `request_timeout`. Default [`DEFAULT_REQUEST_TIMEOUT`] (30 s).
    pub request_timeout: Duration,
}

/// A limit outside its range. `setting` is the TOML key; the flag is the
/// same with dashes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{setting} = {value} is outside {allowed}")]
pub struct LimitError {
    /// The setting (TOML key).
    pub setting: &'static str,
    /// The value given.
    pub value: String,
    /// What is allowed.
    pub allowed: String,
}

/// A limit's error as the config layer reports it, naming the setting.
impl From<LimitError> for crate::settings::SettingError {
    fn from(e: LimitError) -> crate::settings::SettingError {
        crate::settings::SettingError::Component {
            key: e.setting,
            also: &[],
            source: Box::new(e),
        }
    }
}

impl ListenerLimits {
    /// The gateway's defaults.
    pub const fn gateway() -> ListenerLimits {
        ListenerLimits::with_max_connections(GATEWAY_MAX_CONNECTIONS)
    }

    /// The sidecar's defaults.
    pub const fn sidecar() -> ListenerLimits {
        ListenerLimits::with_max_connections(SIDECAR_MAX_CONNECTIONS)
    }

    const fn with_max_connections(max_connections: usize) -> ListenerLimits {
        ListenerLimits {
            max_connections,
            http2_max_streams: DEFAULT_HTTP2_MAX_STREAMS,
            http2_keepalive_interval: DEFAULT_HTTP2_KEEPALIVE_INTERVAL,
            http2_keepalive_timeout: DEFAULT_HTTP2_KEEPALIVE_TIMEOUT,
            max_connection_age: DEFAULT_MAX_CONNECTION_AGE,
            max_connection_age_grace: DEFAULT_MAX_CONNECTION_AGE_GRACE,
            http_header_timeout: DEFAULT_HTTP_HEADER_TIMEOUT,
            http_idle_timeout: DEFAULT_HTTP_IDLE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Checks every limit's range; the error names the setting.
    pub fn validate(&self) -> Result<(), LimitError> {
        if !(1..=MAX_MAX_CONNECTIONS).contains(&self.max_connections) {
            return Err(LimitError {
                setting: "max_connections",
                value: self.max_connections.to_string(),
                allowed: format!("1..={MAX_MAX_CONNECTIONS}"),
            });
        }
        if !(1..=MAX_HTTP2_MAX_STREAMS).contains(&self.http2_max_streams) {
            return Err(LimitError {
                setting: "http2_max_streams",
                value: self.http2_max_streams.to_string(),
                allowed: format!("1..={MAX_HTTP2_MAX_STREAMS}"),
            });
        }
        for (setting, value) in [
            ("http2_keepalive_interval", self.http2_keepalive_interval),
            ("http2_keepalive_timeout", self.http2_keepalive_timeout),
            ("max_connection_age", self.max_connection_age),
            ("max_connection_age_grace", self.max_connection_age_grace),
            ("http_header_timeout", self.http_header_timeout),
            ("http_idle_timeout", self.http_idle_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if value < MIN_DURATION {
                return Err(LimitError {
                    setting,
                    value: humantime::format_duration(value).to_string(),
                    allowed: "1ms and longer".to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The longest a connection lives: its age, then its grace.
    pub fn lifetime(&self) -> Duration {
        self.max_connection_age
            .saturating_add(self.max_connection_age_grace)
    }

    /// The longest a healthy HTTP/2 connection stays silent: the server
    /// pings after `http2_keepalive_interval` without receiving anything,
    /// and the answer must come within `http2_keepalive_timeout`. A gRPC
    /// connection silent for longer (one that never sent its preface, say)
    /// is closed.
    pub fn grpc_idle_timeout(&self) -> Duration {
        self.http2_keepalive_interval
            .saturating_add(self.http2_keepalive_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_ones_and_valid() {
        let g = ListenerLimits::gateway();
        assert_eq!(g.max_connections, 20_000);
        assert_eq!(ListenerLimits::sidecar().max_connections, 1_024);
        assert_eq!(g.http2_max_streams, 100);
        assert_eq!(g.http2_keepalive_interval, Duration::from_secs(60));
        assert_eq!(g.http2_keepalive_timeout, Duration::from_secs(20));
        assert_eq!(g.max_connection_age, Duration::from_secs(1800));
        assert_eq!(g.max_connection_age_grace, Duration::from_secs(300));
        assert_eq!(g.http_header_timeout, Duration::from_secs(10));
        assert_eq!(g.http_idle_timeout, Duration::from_secs(60));
        assert_eq!(g.request_timeout, Duration::from_secs(30));
        assert_eq!(g.validate(), Ok(()));
        assert_eq!(ListenerLimits::sidecar().validate(), Ok(()));
    }

    #[test]
    fn out_of_range_limits_are_refused_naming_the_setting() {
        let zero_connections = ListenerLimits {
            max_connections: 0,
            ..ListenerLimits::gateway()
        };
        assert_eq!(
            zero_connections.validate().unwrap_err().to_string(),
            "max_connections = 0 is outside 1..=1000000"
        );
        let zero_streams = ListenerLimits {
            http2_max_streams: 0,
            ..ListenerLimits::gateway()
        };
        assert_eq!(
            zero_streams.validate().unwrap_err().setting,
            "http2_max_streams"
        );
        let zero_header = ListenerLimits {
            http_header_timeout: Duration::ZERO,
            ..ListenerLimits::gateway()
        };
        assert_eq!(
            zero_header.validate().unwrap_err().to_string(),
            "http_header_timeout = 0s is outside 1ms and longer"
        );
    }
}
