//! A small HTTP client for the admin API of a running sidecar: it sends
//! the query types of [`crate::admin`] and reads its answer types.

use super::CmdError;
use crate::admin::ErrorAnswer;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Environment variable holding the admin token for `--addr` requests.
pub const ADMIN_TOKEN_ENV: &str = "TELESPOOL_ADMIN_TOKEN";

/// `path` with `params` as its query string (none when they are all
/// unset).
pub fn with_query<P: Serialize>(path: &str, params: &P) -> Result<String, CmdError> {
    let q = serde_urlencoded::to_string(params).map_err(|e| CmdError::new(e.to_string()))?;
    Ok(if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{q}")
    })
}

/// GETs `path_and_query` from the sidecar at `addr` (host:port) and reads
/// the answer as a `T`.
pub fn get<T: DeserializeOwned>(addr: &str, path_and_query: &str) -> Result<T, CmdError> {
    request(hyper::Method::GET, addr, path_and_query)
}

/// POSTs (no body) to `path_and_query` on the sidecar at `addr` and reads
/// the answer as a `T`.
pub fn post<T: DeserializeOwned>(addr: &str, path_and_query: &str) -> Result<T, CmdError> {
    request(hyper::Method::POST, addr, path_and_query)
}

fn request<T: DeserializeOwned>(
    method: hyper::Method,
    addr: &str,
    path_and_query: &str,
) -> Result<T, CmdError> {
    let url = format!("http://{addr}{path_and_query}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CmdError::new(format!("starting the HTTP client: {e}")))?;
    rt.block_on(async {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let mut req = hyper::Request::builder().method(method).uri(&url);
        if let Ok(t) = std::env::var(ADMIN_TOKEN_ENV)
            && !t.is_empty() {
                req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
            }
        let req = req
            .body(Empty::new())
            .map_err(|e| CmdError::new(format!("{url}: {e}")))?;
        let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
            .await
            .map_err(|_| CmdError::new(format!("{url}: no answer within 30s")))?
            .map_err(|e| CmdError::new(format!("cannot reach a sidecar at {addr} ({e}); is `telespool serve` running with --http-listen {addr}?")))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| CmdError::new(format!("{url}: {e}")))?
            .to_bytes();
        if !status.is_success() {
            // JSON that is not an error answer was refused before reaching
            // the admin API's handlers.
            let msg = match serde_json::from_slice::<ErrorAnswer>(&body) {
                Ok(a) => a.error,
                Err(e) if e.is_data() => "request failed".to_owned(),
                Err(e) => return Err(not_json(&url, &e)),
            };
            return Err(CmdError::new(format!("{url}: {status}: {msg}")));
        }
        serde_json::from_slice(&body).map_err(|e| {
            if e.is_data() {
                CmdError::new(format!(
                    "{url}: the answer is not what this telespool expects ({e}); is the sidecar the same version?"
                ))
            } else {
                not_json(&url, &e)
            }
        })
    })
}

fn not_json(url: &str, e: &serde_json::Error) -> CmdError {
    CmdError::new(format!("{url}: answer is not JSON ({e})"))
}
