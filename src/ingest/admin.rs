//! The admin API: what `telespool status`, `event-logs` and `dead-letter`
//! ask a running sidecar, since sled locks the data directory.
//!
//! # Who is answered
//!
//! Every route here exposes unredacted data, so the guard ([`admin_access`])
//! answers:
//!
//! - a request with `Authorization: Bearer <--admin-token>` (scheme in any
//!   case; compared as SHA-256 digests in constant time), from anywhere;
//! - without it, a loopback peer (IPv4-mapped `::ffff:127.0.0.1` included)
//!   whose `Host` is a loopback name (`localhost`, `127.x.x.x`, `[::1]`) or
//!   the IP of `--http-listen`, with or without a port, or absent. Another
//!   `Host` from loopback is what a DNS-rebinding page sends: 421
//!   Misdirected Request, saying why (see [`super::guard`]). With
//!   `--admin-require-token`, loopback peers need the token too.
//!
//! Otherwise: 401 without a token, 403 with a wrong one, 403 for a
//! non-loopback peer when no token is configured. The state-changing route
//! (`requeue`) also refuses cross-site browser requests
//! ([`super::guard::refuse_cross_site`], 403).
//!
//! | Route | Query parameters |
//! |---|---|
//! | `GET /v1/status` | — |
//! | `GET /v1/event-logs/recent` | `from`, `to` (RFC 3339; default the last 7 days), `name`, `name_prefix`, `user_id`, `anonymous_user_id`, `source`, `limit` (≤ 10,000), `before` (cursor from `next`); a page also ends once its rows pass 8 MiB of JSON ([`crate::event_logs::query::DEFAULT_RECENT_MAX_BYTES`]), with `next` set |
//! | `GET /v1/event-logs/counts` | `from`, `to` (default the last 30 days) |
//! | `GET /v1/event-logs/users` | `from`, `to` (default the last 30 days) |
//! | `POST /v1/event-logs/erase` | `user_id` or `anonymous_user_id` (exactly one): that user's rows are hidden from every query at once and removed from disk by a compaction in the background |
//! | `GET /v1/dead-letter` | `after` (seq), `limit` (default 100, ≤ 10,000) |
//! | `POST /v1/dead-letter/requeue` | `limit` (default all): export dead letters back into the queue |

use super::guard::{self, bearer_token, is_local_host, is_loopback_peer, token_matches};
use super::reply::error;
use crate::admin::{
    self, DeadLetterParams, EraseParams, QueryError, RangeParams, RecentParams, RequeueParams,
};
use crate::clock::Clock;
use crate::dead_letter::DeadLetterStore;
use crate::event_logs::store::EventLogStore;
use crate::queue::Queue;
use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The stores the admin API reads, and who it answers.
#[derive(Debug)]
pub struct Admin {
    /// The export queue.
    pub queue: Arc<Queue>,
    /// The event_logs mirror.
    pub event_logs: Arc<EventLogStore>,
    /// The dead-letter store.
    pub dead_letters: Arc<DeadLetterStore>,
    /// Token for non-loopback clients.
    pub token: Option<String>,
    /// Time source for default ranges.
    pub clock: Arc<dyn Clock>,
    /// Require the token from loopback clients too.
    pub require_token: bool,
    /// The IP of `--http-listen`: a `Host` naming it is local.
    pub listen: IpAddr,
    /// Woken after a requeue (the exporter waits on it).
    pub wake: Arc<tokio::sync::Notify>,
}

/// The admin routes, behind the guard, ready to merge into the sidecar's
/// HTTP router.
pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/event-logs/recent", get(recent))
        .route("/v1/event-logs/counts", get(counts))
        .route("/v1/event-logs/users", get(users))
        .route("/v1/event-logs/erase", post(erase))
        .route("/v1/dead-letter", get(dead_letters))
        .route(
            "/v1/dead-letter/requeue",
            post(requeue).route_layer(middleware::from_fn(guard::refuse_cross_site)),
        )
        .route_layer(middleware::from_fn_with_state(admin.clone(), admin_guard))
        .with_state(admin)
}

/// Why the admin API refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminRefusal {
    /// A loopback peer, no token, and a `Host` that is not local: what a
    /// DNS-rebinding page sends.
    #[error(
        "Host {host:?} is not a loopback name (localhost, 127.x.x.x, [::1]) or this sidecar's --http-listen address: the admin API refuses other names from loopback clients, as a web page rebinding its own name to 127.0.0.1 would send one; use such a name or send Authorization: Bearer <admin token>"
    )]
    ForeignHost {
        /// The `Host` given.
        host: String,
    },
    /// No token given where one is needed.
    #[error(
        "the admin API needs Authorization: Bearer <admin token> from {}",
        if *.loopback { "loopback clients too (--admin-require-token)" } else { "non-loopback clients" }
    )]
    TokenNeeded {
        /// Whether the peer was on loopback.
        loopback: bool,
    },
    /// A token that is not the admin token.
    #[error("wrong admin token")]
    WrongToken,
    /// A non-loopback peer, and no token configured.
    #[error(
        "the admin API answers loopback clients only (configure --admin-token to allow others)"
    )]
    LoopbackOnly,
}

impl AdminRefusal {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            AdminRefusal::ForeignHost { .. } => StatusCode::MISDIRECTED_REQUEST,
            AdminRefusal::TokenNeeded { .. } => StatusCode::UNAUTHORIZED,
            AdminRefusal::WrongToken | AdminRefusal::LoopbackOnly => StatusCode::FORBIDDEN,
        }
    }
}

/// Who the admin API answers: the settings [`admin_access`] applies.
#[derive(Clone, Copy, Debug)]
pub struct AccessRule<'a> {
    /// `--admin-token`.
    pub token: Option<&'a str>,
    /// `--admin-require-token`.
    pub require_token: bool,
    /// The IP of `--http-listen`.
    pub listen: IpAddr,
}

/// Decides whether the admin API answers a request (see the module docs):
/// `peer` is the TCP peer, `host` the request's host, `authorization` its
/// header.
pub fn admin_access(
    rule: AccessRule<'_>,
    peer: IpAddr,
    host: Option<&str>,
    authorization: Option<&HeaderValue>,
) -> Result<(), AdminRefusal> {
    let loopback = is_loopback_peer(peer);
    let local_host = host.is_none_or(|h| is_local_host(h, rule.listen));
    if loopback && local_host && !rule.require_token {
        return Ok(());
    }
    let Some(token) = rule.token else {
        return Err(if loopback {
            AdminRefusal::ForeignHost {
                host: host.unwrap_or_default().to_owned(),
            }
        } else {
            AdminRefusal::LoopbackOnly
        });
    };
    match authorization.and_then(bearer_token) {
        Some(given) if token_matches(given, token) => Ok(()),
        Some(_) => Err(AdminRefusal::WrongToken),
        None if loopback && !local_host && !rule.require_token => Err(AdminRefusal::ForeignHost {
            host: host.unwrap_or_default().to_owned(),
        }),
        None => Err(AdminRefusal::TokenNeeded { loopback }),
    }
}

async fn admin_guard(
    State(s): State<Arc<Admin>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let rule = AccessRule {
        token: s.token.as_deref(),
        require_token: s.require_token,
        listen: s.listen,
    };
    let checked = admin_access(
        rule,
        peer.ip(),
        guard::request_host(&req),
        req.headers().get(header::AUTHORIZATION),
    );
    match checked {
        Ok(()) => next.run(req).await,
        Err(refusal) => error(refusal.status(), refusal.to_string()),
    }
}

/// Runs an admin operation off the runtime and answers with its JSON:
/// 400 for the caller's mistakes, 500 for a store's failure.
async fn answer<T: Serialize + Send + 'static>(
    f: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(e)) if e.is_bad_request() => error(StatusCode::BAD_REQUEST, e.to_string()),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn status(State(s): State<Arc<Admin>>) -> Response {
    let queue = s.queue.clone();
    let now = s.clock.now();
    answer(move || Ok(admin::queue_status(&queue, None, now))).await
}

async fn recent(State(s): State<Arc<Admin>>, Query(p): Query<RecentParams>) -> Response {
    let store = s.event_logs.clone();
    let now = s.clock.now();
    answer(move || admin::recent(&store, &p, now)).await
}

async fn counts(State(s): State<Arc<Admin>>, Query(p): Query<RangeParams>) -> Response {
    let store = s.event_logs.clone();
    let now = s.clock.now();
    answer(move || admin::counts(&store, &p, now)).await
}

async fn users(State(s): State<Arc<Admin>>, Query(p): Query<RangeParams>) -> Response {
    let store = s.event_logs.clone();
    let now = s.clock.now();
    answer(move || admin::users(&store, &p, now)).await
}

async fn erase(State(s): State<Arc<Admin>>, Query(p): Query<EraseParams>) -> Response {
    let store = s.event_logs.clone();
    answer(move || admin::erase(&store, &p, false)).await
}

async fn dead_letters(State(s): State<Arc<Admin>>, Query(p): Query<DeadLetterParams>) -> Response {
    let store = s.dead_letters.clone();
    answer(move || admin::dead_letters(&store, &p)).await
}

async fn requeue(State(s): State<Arc<Admin>>, Query(p): Query<RequeueParams>) -> Response {
    let store = s.dead_letters.clone();
    let queue = s.queue.clone();
    let limit = p.limit.unwrap_or(usize::MAX);
    let r = answer(move || admin::requeue(&store, &queue, limit)).await;
    s.wake.notify_one();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn rule(token: Option<&str>, require_token: bool) -> AccessRule<'_> {
        AccessRule {
            token,
            require_token,
            listen: LOOPBACK,
        }
    }

    fn bearer(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn loopback_peers_with_a_local_host_are_answered_without_a_token() {
        for host in [
            None,
            Some("localhost:10086"),
            Some("127.0.0.1:10086"),
            Some("[::1]"),
        ] {
            assert_eq!(
                admin_access(rule(None, false), LOOPBACK, host, None),
                Ok(()),
                "{host:?}"
            );
        }
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(
            admin_access(rule(None, false), mapped, Some("localhost"), None),
            Ok(()),
            "an IPv4 client of a dual-stack listener is on loopback"
        );
    }

    #[test]
    fn a_loopback_peer_naming_another_host_is_misdirected_unless_it_has_the_token() {
        let e = admin_access(
            rule(None, false),
            LOOPBACK,
            Some("evil.example:10086"),
            None,
        )
        .unwrap_err();
        assert_eq!(e.status(), StatusCode::MISDIRECTED_REQUEST);
        assert!(e.to_string().contains("\"evil.example:10086\""), "{e}");
        let e =
            admin_access(rule(Some("t"), false), LOOPBACK, Some("evil.example"), None).unwrap_err();
        assert_eq!(e.status(), StatusCode::MISDIRECTED_REQUEST);
        assert_eq!(
            admin_access(
                rule(Some("t"), false),
                LOOPBACK,
                Some("evil.example"),
                Some(&bearer("Bearer t"))
            ),
            Ok(())
        );
    }

    #[test]
    fn require_token_asks_loopback_peers_for_it() {
        let e = admin_access(rule(Some("t"), true), LOOPBACK, Some("localhost"), None).unwrap_err();
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        assert!(e.to_string().contains("--admin-require-token"), "{e}");
        let wrong = admin_access(
            rule(Some("t"), true),
            LOOPBACK,
            Some("localhost"),
            Some(&bearer("Bearer x")),
        );
        assert_eq!(wrong, Err(AdminRefusal::WrongToken));
        assert_eq!(
            admin_access(
                rule(Some("t"), true),
                LOOPBACK,
                Some("localhost"),
                Some(&bearer("bearer t"))
            ),
            Ok(())
        );
    }

    #[test]
    fn remote_peers_need_the_token_in_any_case_of_bearer() {
        let remote: IpAddr = "10.0.0.7".parse().unwrap();
        assert_eq!(
            admin_access(rule(None, false), remote, Some("localhost"), None),
            Err(AdminRefusal::LoopbackOnly)
        );
        assert_eq!(
            admin_access(rule(Some("t"), false), remote, Some("x"), None),
            Err(AdminRefusal::TokenNeeded { loopback: false })
        );
        for ok in ["Bearer t", "bearer t", "BEARER t"] {
            assert_eq!(
                admin_access(rule(Some("t"), false), remote, Some("x"), Some(&bearer(ok))),
                Ok(()),
                "{ok}"
            );
        }
        assert_eq!(
            admin_access(
                rule(Some("t"), false),
                remote,
                Some("x"),
                Some(&bearer("Bearer tt"))
            ),
            Err(AdminRefusal::WrongToken)
        );
    }
}
