//! A small HTTP client for the admin API of a running sidecar.

use super::CmdError;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Environment variable holding the admin token for `--addr` requests.
pub const ADMIN_TOKEN_ENV: &str = "TELESPOOL_ADMIN_TOKEN";

/// GETs `path` from the sidecar at `addr` (host:port) and parses the JSON.
pub fn get_json(addr: &str, path_and_query: &str) -> Result<serde_json::Value, CmdError> {
    request_json(hyper::Method::GET, addr, path_and_query)
}

/// POSTs (no body) to `path` on the sidecar at `addr` and parses the JSON.
pub fn post_json(addr: &str, path_and_query: &str) -> Result<serde_json::Value, CmdError> {
    request_json(hyper::Method::POST, addr, path_and_query)
}

fn request_json(
    method: hyper::Method,
    addr: &str,
    path_and_query: &str,
) -> Result<serde_json::Value, CmdError> {
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
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| CmdError::new(format!("{url}: answer is not JSON ({e})")))?;
        if !status.is_success() {
            let msg = v.get("error").and_then(|m| m.as_str()).unwrap_or("request failed");
            return Err(CmdError::new(format!("{url}: {status}: {msg}")));
        }
        Ok(v)
    })
}
