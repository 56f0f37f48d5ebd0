//! Guards of the sidecar's HTTP server against what a web browser on the
//! same host can be made to do, and the admin API's credentials.
//!
//! A page from any site, open in a browser on the sidecar's host, can send
//! requests to `127.0.0.1:10086`. Two attacks follow, and one guard each:
//!
//! - **DNS rebinding** (reading): the page's own name is rebound to
//!   127.0.0.1, so the browser thinks the sidecar *is* that site and lets
//!   the page read the answers: unredacted `event_logs` rows. The request
//!   still carries the page's name in `Host`. The admin API therefore
//!   answers a loopback peer only when `Host` is a loopback name
//!   (`localhost`, `127.x.x.x`, `[::1]`, with or without a port) or the IP
//!   of `--http-listen` ([`is_local_host`]); no `Host` at all (HTTP/1.0
//!   tools) passes, since browsers always send one. A name cannot be rebound
//!   to an IP literal, and `localhost` never reaches DNS in current
//!   browsers.
//! - **Cross-site requests** (writing): a page can POST a form or a
//!   `fetch(..., {mode: "no-cors"})` to the sidecar without reading the
//!   answer: record forged events, requeue dead letters. Every route that
//!   changes state sits behind [`refuse_cross_site`]: a request whose
//!   `Sec-Fetch-Site` is present and not `same-origin` or `none`, or whose
//!   `Origin` is present and is not this server's own origin (scheme, host
//!   and port of `Host`; `null` included), is answered 403. Browsers send
//!   `Origin` on every cross-origin POST and `Sec-Fetch-Site` on every
//!   request (Chrome 76, Firefox 90, Safari 16.4); tools such as curl and
//!   the SDKs send neither and pass.
//!
//! The content type is deliberately *not* checked: a browser's "simple"
//! cross-site request can only be `text/plain`, a form, or multipart, so
//! requiring `application/json` would also stop them, but it would break
//! `curl -d` (which sends a form content type) and other plain clients; the
//! header checks above already refuse every browser that sends them.
//!
//! Peers are compared after [`IpAddr::to_canonical`]: on a dual-stack
//! `[::]` listener an IPv4 loopback client is `::ffff:127.0.0.1`.
//!
//! The admin token is compared as SHA-256 digests in constant time
//! ([`token_matches`]), so neither its bytes nor its length leak through
//! timing; the `Bearer` scheme is matched case-insensitively (RFC 9110).

use std::net::IpAddr;

use axum::extract::Request;
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::reply::error;

/// Metric: state-changing requests refused as cross-site.
pub const CROSS_SITE_REFUSED: &str = "telespool_http_cross_site_refused_total";

/// Whether a peer is on this host, IPv4-mapped IPv6 included.
pub fn is_loopback_peer(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The host a request is addressed to: the URI's authority (HTTP/2's
/// `:authority`, or an absolute-form request), else the `Host` header.
/// `None` when there is neither or it is not text.
pub fn request_host<B>(req: &axum::http::Request<B>) -> Option<&str> {
    match req.uri().authority() {
        Some(a) => Some(a.as_str()),
        None => req.headers().get(header::HOST)?.to_str().ok(),
    }
}

/// The host name of a `Host` value, without port or IPv6 brackets; `None`
/// when it is not `name`, `name:port`, `[v6]` or `[v6]:port`.
fn host_name(host: &str) -> Option<&str> {
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        return (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok)).then_some(name);
    }
    match host.rsplit_once(':') {
        Some((name, port)) => port_ok(port).then_some(name),
        None => Some(host),
    }
}

/// Whether `host` (a `Host` header value) names this host: `localhost`, a
/// loopback IP (any `127.x.x.x`, `::1`, IPv4-mapped included), or `listen`,
/// the IP of `--http-listen`; with or without a port.
pub fn is_local_host(host: &str, listen: IpAddr) -> bool {
    let Some(name) = host_name(host) else {
        return false;
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().is_loopback() || ip.to_canonical() == listen.to_canonical(),
        Err(_) => false,
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme in any
/// case), `None` for any other value.
pub fn bearer_token(value: &HeaderValue) -> Option<&str> {
    let value = value.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether `given` is `token`, compared as SHA-256 digests in constant
/// time (the comparison takes as long whatever the lengths and contents).
pub fn token_matches(given: &str, token: &str) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let token = Sha256::digest(token.as_bytes());
    given.ct_eq(&token).into()
}

/// Why a request was refused as cross-site.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrossSite {
    /// `Sec-Fetch-Site` says the request comes from another site or origin.
    #[error(
        "cross-site request refused: Sec-Fetch-Site is {value:?}; this route changes state and accepts browser requests from this server's own pages only (same-origin or none); other clients must not send Sec-Fetch-Site or Origin"
    )]
    FetchSite {
        /// The header's value.
        value: String,
    },
    /// `Origin` is not this server's origin.
    #[error(
        "cross-site request refused: Origin {origin:?} is not this server's origin (Host {host:?}); this route changes state and accepts browser requests from this server's own pages only"
    )]
    Origin {
        /// The `Origin` header.
        origin: String,
        /// The request's host.
        host: Option<String>,
    },
}

/// Checks a request's `Sec-Fetch-Site` and `Origin` against its `host` (see
/// the module docs). Requests with neither header pass.
pub fn check_cross_site(headers: &HeaderMap, host: Option<&str>) -> Result<(), CrossSite> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let value = site.to_str().unwrap_or_default();
        if !(value.eq_ignore_ascii_case("same-origin") || value.eq_ignore_ascii_case("none")) {
            return Err(CrossSite::FetchSite {
                value: String::from_utf8_lossy(site.as_bytes()).into_owned(),
            });
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let text = origin.to_str().unwrap_or_default();
        if !host.is_some_and(|h| same_origin(text, h)) {
            return Err(CrossSite::Origin {
                origin: String::from_utf8_lossy(origin.as_bytes()).into_owned(),
                host: host.map(str::to_owned),
            });
        }
    }
    Ok(())
}

/// Whether `origin` (`scheme://host[:port]`) is the origin of a server
/// reached as `host` (`Host` header). The port defaults by the origin's
/// scheme on both sides (a TLS proxy in front changes the scheme, not the
/// host).
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    let (Ok(origin), Ok(host)) = (rest.parse::<Authority>(), host.trim().parse::<Authority>())
    else {
        return false;
    };
    origin.host().eq_ignore_ascii_case(host.host())
        && origin.port_u16().unwrap_or(default_port) == host.port_u16().unwrap_or(default_port)
}

/// Middleware for state-changing routes: answers 403 to cross-site browser
/// requests (see [`check_cross_site`]). Put it on a route with
/// `.route_layer(axum::middleware::from_fn(refuse_cross_site))`.
pub async fn refuse_cross_site(req: Request, next: Next) -> Response {
    match check_cross_site(req.headers(), request_host(&req)) {
        Ok(()) => next.run(req).await,
        Err(refusal) => {
            metrics::counter!(CROSS_SITE_REFUSED).increment(1);
            error(StatusCode::FORBIDDEN, refusal.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTEN: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn ipv4_mapped_loopback_peers_are_loopback() {
        assert!(is_loopback_peer("::ffff:127.0.0.1".parse().unwrap()));
        assert!(is_loopback_peer("127.3.2.1".parse().unwrap()));
        assert!(is_loopback_peer("::1".parse().unwrap()));
        assert!(!is_loopback_peer("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!is_loopback_peer("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn loopback_names_and_the_listen_address_are_local_hosts() {
        for h in [
            "localhost",
            "LOCALHOST:10086",
            "localhost.:80",
            "127.0.0.1",
            "127.1.2.3:10086",
            "[::1]",
            "[::1]:10086",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(is_local_host(h, LISTEN), "{h}");
        }
        let listen: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(is_local_host("10.1.2.3:10086", listen));
        for h in [
            "evil.example",
            "evil.example:10086",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.1.2.3:10086",
            "",
            "[::1",
        ] {
            assert!(!is_local_host(h, LISTEN), "{h}");
        }
    }

    #[test]
    fn bearer_is_matched_case_insensitively() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(bearer_token(&v("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&v("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&v("BEARER  abc ")), Some("abc"));
        assert_eq!(bearer_token(&v("Basic abc")), None);
        assert_eq!(bearer_token(&v("Bearer")), None);
        assert_eq!(bearer_token(&v("Bearer ")), None);
    }

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cre"));
        assert!(!token_matches("s3cret", "s3cret!"));
        assert!(!token_matches("", "s3cret"));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cross_site_browser_requests_are_refused_and_others_pass() {
        let host = Some("127.0.0.1:10086");
        assert_eq!(check_cross_site(&headers(&[]), host), Ok(()));
        assert_eq!(check_cross_site(&headers(&[]), None), Ok(()));
        for ok in [
            &[("sec-fetch-site", "same-origin")][..],
            &[("sec-fetch-site", "none")],
            &[("origin", "http://127.0.0.1:10086")],
            &[
                ("origin", "http://127.0.0.1:10086"),
                ("sec-fetch-site", "same-origin"),
            ],
        ] {
            assert_eq!(check_cross_site(&headers(ok), host), Ok(()), "{ok:?}");
        }
        for bad in [
            &[("sec-fetch-site", "cross-site")][..],
            &[("sec-fetch-site", "same-site")],
            &[("origin", "http://evil.example")],
            &[("origin", "http://127.0.0.1:3000")],
            &[("origin", "http://127.0.0.1")],
            &[("origin", "null")],
            &[("origin", "file://")],
            &[
                ("origin", "http://127.0.0.1:10086"),
                ("sec-fetch-site", "cross-site"),
            ],
        ] {
            assert!(check_cross_site(&headers(bad), host).is_err(), "{bad:?}");
        }
        assert!(
            check_cross_site(&headers(&[("origin", "http://127.0.0.1:10086")]), None).is_err(),
            "an Origin with no Host to compare is refused"
        );
        assert_eq!(
            check_cross_site(
                &headers(&[("origin", "https://telespool.example")]),
                Some("telespool.example")
            ),
            Ok(()),
            "default ports follow the origin's scheme"
        );
    }
}
