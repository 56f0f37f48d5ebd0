//! The accept loop every listener uses, and the connection it hands out.
//!
//! [`Listener::accept`] never returns an error and never spins:
//!
//! ```text
//! take a connection slot ──(all max_connections taken)──▶ stop accepting until one closes
//!        │                                                (new connections wait in the kernel
//!        ▼                                                 backlog; counted, logged)
//! accept(2) ──ok──▶ TCP_NODELAY on, wrap in Conn, count, return
//!        │
//!        ├─ ECONNABORTED, ECONNRESET, ECONNREFUSED, EINTR: that one connection
//!        │                                         failed; accept the next at once
//!        └─ EMFILE, ENFILE, ENOBUFS, ENOMEM, anything else: back off 10 ms,
//!           doubling to 1 s, then retry (counted; logged at most every 10 s)
//! ```
//!
//! A [`Conn`] holds its slot until it is dropped, and enforces three
//! deadlines of its own, as I/O errors (`TimedOut`) that make the server
//! drop the connection:
//! - **first bytes**: nothing read within `first_read` of the accept;
//! - **idle**: no byte read or written for `idle` (a write the client does
//!   not drain does not count as progress);
//! - **lifetime**: the connection is older than its age plus the grace
//!   (the server asked it to go away at its age; this is the hard stop).
//!
//! The deadlines cost nothing while bytes flow: the timer is only polled
//! when a read or write would wait, and is re-armed lazily.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Open connections, by listener (gauge).
pub const OPEN_CONNECTIONS: &str = "telespool_listener_open_connections";
/// Connections accepted, by listener.
pub const ACCEPTED: &str = "telespool_listener_accepted_connections_total";
/// Times a listener stopped accepting because it held `max_connections`.
pub const LIMIT_REACHED: &str = "telespool_listener_limit_reached_total";
/// Failed accepts, by listener and `kind` (`emfile`, `enfile`, `enobufs`,
/// `enomem`, `connection`, `other`).
pub const ACCEPT_ERRORS: &str = "telespool_listener_accept_errors_total";
/// Connections closed by a deadline, by listener and `kind` (`first_byte`,
/// `idle`, `lifetime`, `header`).
pub const TIMEOUTS: &str = "telespool_listener_timeouts_total";

/// Every series of the listeners, described by [`describe_metrics`] (the
/// sidecar and the gateway both call it).
pub const SERIES: &[&str] = &[
    OPEN_CONNECTIONS,
    ACCEPTED,
    LIMIT_REACHED,
    ACCEPT_ERRORS,
    TIMEOUTS,
];

/// First delay after a resource error from accept.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest delay after repeated resource errors from accept.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Shortest time between two warnings of one listener.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Describes the listener metrics (called once the recorder is installed).
pub fn describe_metrics() {
    metrics::describe_gauge!(OPEN_CONNECTIONS, "Connections open, by listener");
    metrics::describe_counter!(ACCEPTED, "Connections accepted, by listener");
    metrics::describe_counter!(
        LIMIT_REACHED,
        "Times a listener stopped accepting because it held max_connections (new connections waited in the kernel backlog)"
    );
    metrics::describe_counter!(
        ACCEPT_ERRORS,
        "Failed accepts, by listener and kind (emfile, enfile, enobufs, enomem: backed off; connection: skipped)"
    );
    metrics::describe_counter!(
        TIMEOUTS,
        "Connections closed by a deadline, by listener and kind (first_byte, idle, lifetime, header)"
    );
}

/// The deadlines of each accepted connection (`None`: none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnDeadlines {
    /// The first byte must arrive within this of the accept.
    pub first_read: Option<Duration>,
    /// No byte may move either way for this long.
    pub idle: Option<Duration>,
    /// The connection is closed this long after the accept.
    pub lifetime: Option<Duration>,
}

/// A bounded, non-spinning TCP listener (see the module docs).
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
    name: &'static str,
    slots: Arc<Semaphore>,
    max_connections: usize,
    deadlines: ConnDeadlines,
    backoff: Duration,
    warned: Option<Instant>,
    unwarned: u64,
}

impl Listener {
    /// Wraps a bound listener. `name` labels its metrics and log lines
    /// (`gateway_grpc`, `sidecar_http`, ...).
    pub fn new(
        inner: TcpListener,
        name: &'static str,
        max_connections: usize,
        deadlines: ConnDeadlines,
    ) -> Listener {
        let max_connections = max_connections.clamp(1, Semaphore::MAX_PERMITS);
        let _ = metrics::gauge!(OPEN_CONNECTIONS, "listener" => name);
        Listener {
            inner,
            name,
            slots: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            deadlines,
            backoff: ACCEPT_BACKOFF_MIN,
            warned: None,
            unwarned: 0,
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The listener's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.max_connections - self.slots.available_permits()
    }

    /// The next connection. Waits while `max_connections` are open; backs
    /// off on resource errors; never fails.
    pub async fn accept(&mut self) -> (Conn, SocketAddr) {
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                metrics::counter!(LIMIT_REACHED, "listener" => self.name).increment(1);
                let max = self.max_connections;
                self.warn(format_args!(
                    "{max} connections open (max_connections): not accepting until one closes"
                ));
                match self.slots.clone().acquire_owned().await {
                    Ok(slot) => slot,
                    // The semaphore is never closed; park rather than spin.
                    Err(_) => std::future::pending().await,
                }
            }
        };
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    self.backoff = ACCEPT_BACKOFF_MIN;
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(listener = self.name, error = %e, "TCP_NODELAY not set");
                    }
                    metrics::counter!(ACCEPTED, "listener" => self.name).increment(1);
                    metrics::gauge!(OPEN_CONNECTIONS, "listener" => self.name).increment(1.0);
                    return (Conn::new(stream, self.name, slot, self.deadlines), peer);
                }
                Err(e) => {
                    let kind = accept_error_kind(&e);
                    metrics::counter!(ACCEPT_ERRORS, "listener" => self.name, "kind" => kind)
                        .increment(1);
                    if kind == "connection" {
                        continue;
                    }
                    let delay = self.backoff;
                    self.backoff = (self.backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    self.warn(format_args!(
                        "accept failed ({e}); retrying in {} ms{}",
                        delay.as_millis(),
                        if matches!(kind, "emfile" | "enfile") {
                            ": out of file descriptors (raise RLIMIT_NOFILE or lower max_connections)"
                        } else {
                            ""
                        }
                    ));
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// The connections as a stream (for tonic's
    /// `serve_with_incoming_shutdown`); dropping it closes the listener.
    pub fn into_stream(self) -> impl futures::Stream<Item = io::Result<Conn>> + Send + 'static {
        futures::stream::unfold(self, |mut listener| async move {
            let (conn, _) = listener.accept().await;
            Some((Ok(conn), listener))
        })
    }

    /// A warning, at most one per [`WARN_EVERY`] (the others are counted
    /// and reported with the next one).
    fn warn(&mut self, message: std::fmt::Arguments<'_>) {
        let now = Instant::now();
        if self.warned.is_some_and(|at| now < at + WARN_EVERY) {
            self.unwarned += 1;
            return;
        }
        tracing::warn!(
            listener = self.name,
            suppressed = self.unwarned,
            "{message}"
        );
        self.warned = Some(now);
        self.unwarned = 0;
    }
}

/// The `kind` label of a failed accept: `connection` for an error of that
/// one connection (skipped at once), a resource name or `other` for errors
/// that back off.
pub fn accept_error_kind(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EMFILE) => "emfile",
        Some(libc::ENFILE) => "enfile",
        Some(libc::ENOBUFS) => "enobufs",
        Some(libc::ENOMEM) => "enomem",
        _ => match e.kind() {
            io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted => "connection",
            _ => "other",
        },
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    FirstByte,
    Idle,
    Lifetime,
}

impl Expiry {
    fn label(self) -> &'static str {
        match self {
            Expiry::FirstByte => "first_byte",
            Expiry::Idle => "idle",
            Expiry::Lifetime => "lifetime",
        }
    }

    fn error(self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            match self {
                Expiry::FirstByte => "no bytes within the header timeout (http_header_timeout)",
                Expiry::Idle => "connection idle past its timeout",
                Expiry::Lifetime => {
                    "connection older than max_connection_age + max_connection_age_grace"
                }
            },
        )
    }
}

/// An accepted connection: the TCP stream, its slot under
/// `max_connections`, and its deadlines (see the module docs).
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    name: &'static str,
    _slot: OwnedSemaphorePermit,
    deadlines: ConnDeadlines,
    accepted: Instant,
    last_activity: Instant,
    read_any: bool,
    end: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    expired: Option<Expiry>,
}

impl Conn {
    fn new(
        stream: TcpStream,
        name: &'static str,
        slot: OwnedSemaphorePermit,
        deadlines: ConnDeadlines,
    ) -> Conn {
        let now = Instant::now();
        Conn {
            stream,
            name,
            _slot: slot,
            deadlines,
            accepted: now,
            last_activity: now,
            read_any: false,
            end: deadlines.lifetime.and_then(|d| now.checked_add(d)),
            timer: None,
            expired: None,
        }
    }

    /// The TCP stream.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The earliest deadline in force, and what it is.
    fn deadline(&self) -> Option<(Instant, Expiry)> {
        let quiet = if self.read_any {
            self.deadlines
                .idle
                .and_then(|d| self.last_activity.checked_add(d))
                .map(|at| (at, Expiry::Idle))
        } else {
            let first = self
                .deadlines
                .first_read
                .and_then(|d| self.accepted.checked_add(d))
                .map(|at| (at, Expiry::FirstByte));
            let idle = self
                .deadlines
                .idle
                .and_then(|d| self.last_activity.checked_add(d))
                .map(|at| (at, Expiry::Idle));
            earliest(first, idle)
        };
        earliest(quiet, self.end.map(|at| (at, Expiry::Lifetime)))
    }

    fn expire(&mut self, why: Expiry) -> io::Error {
        if self.expired.is_none() {
            self.expired = Some(why);
            metrics::counter!(TIMEOUTS, "listener" => self.name, "kind" => why.label())
                .increment(1);
            tracing::debug!(
                listener = self.name,
                reason = why.label(),
                "closing a connection"
            );
        }
        why.error()
    }

    /// Bytes moved: the idle deadline starts again (and the lifetime is
    /// checked, so that a connection that never waits still ends).
    fn progressed(&mut self, read: bool) -> io::Result<()> {
        let now = Instant::now();
        self.last_activity = now;
        self.read_any |= read;
        match self.end {
            Some(end) if now >= end => Err(self.expire(Expiry::Lifetime)),
            _ => Ok(()),
        }
    }

    /// The I/O would wait: arm the timer for the earliest deadline, or
    /// fail if it has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        loop {
            let Some((at, why)) = self.deadline() else {
                return Ok(());
            };
            if Instant::now() >= at {
                return Err(self.expire(why));
            }
            let timer = match &mut self.timer {
                Some(timer) => {
                    if timer.deadline() != at {
                        timer.as_mut().reset(at);
                    }
                    timer
                }
                None => self.timer.insert(Box::pin(tokio::time::sleep_until(at))),
            };
            match timer.as_mut().poll(cx) {
                Poll::Pending => return Ok(()),
                // Fired: loop to re-check against the newest activity.
                Poll::Ready(()) => {}
            }
        }
    }
}

fn earliest(
    a: Option<(Instant, Expiry)>,
    b: Option<(Instant, Expiry)>,
) -> Option<(Instant, Expiry)> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, None) => a,
        (None, b) => b,
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        metrics::gauge!(OPEN_CONNECTIONS, "listener" => self.name).decrement(1.0);
    }
}

use std::future::Future as _;

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(why) = this.expired {
            return Poll::Ready(Err(why.error()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.progressed(true)?;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                this.poll_deadline(cx)?;
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(why) = this.expired {
            return Poll::Ready(Err(why.error()));
        }
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.progressed(false)?;
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                this.poll_deadline(cx)?;
                Poll::Pending
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(why) = this.expired {
            return Poll::Ready(Err(why.error()));
        }
        match Pin::new(&mut this.stream).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.progressed(false)?;
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                this.poll_deadline(cx)?;
                Poll::Pending
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair(deadlines: ConnDeadlines, max: usize) -> (Listener, SocketAddr) {
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = inner.local_addr().unwrap();
        (Listener::new(inner, "test", max, deadlines), addr)
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed_after_the_first_read_deadline() {
        let (mut listener, addr) = pair(
            ConnDeadlines {
                first_read: Some(Duration::from_millis(200)),
                ..ConnDeadlines::default()
            },
            4,
        )
        .await;
        let _client = TcpStream::connect(addr).await.unwrap();
        let (mut conn, _) = listener.accept().await;
        let mut buf = [0u8; 8];
        let started = std::time::Instant::now();
        let err = conn.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn the_idle_deadline_moves_with_each_byte_and_then_closes() {
        let (mut listener, addr) = pair(
            ConnDeadlines {
                idle: Some(Duration::from_millis(300)),
                ..ConnDeadlines::default()
            },
            4,
        )
        .await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (mut conn, _) = listener.accept().await;
        let reader = tokio::spawn(async move {
            let mut got = 0usize;
            let mut buf = [0u8; 8];
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) => return (got, None),
                    Ok(n) => got += n,
                    Err(e) => return (got, Some(e.kind())),
                }
            }
        });
        // Bytes every 100 ms for a second: longer than the idle deadline,
        // never idle for it.
        for _ in 0..10 {
            client.write_all(b"x").await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (got, err) = reader.await.unwrap();
        assert_eq!(got, 10);
        assert_eq!(err, Some(io::ErrorKind::TimedOut));
    }

    #[tokio::test]
    async fn the_lifetime_ends_even_a_busy_connection() {
        let (mut listener, addr) = pair(
            ConnDeadlines {
                lifetime: Some(Duration::from_millis(300)),
                ..ConnDeadlines::default()
            },
            4,
        )
        .await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (mut conn, _) = listener.accept().await;
        let writer = tokio::spawn(async move {
            while client.write_all(b"busy").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let mut buf = [0u8; 64];
        let started = std::time::Instant::now();
        let err = loop {
            match conn.read(&mut buf).await {
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10));
        drop(conn);
        writer.abort();
    }

    #[tokio::test]
    async fn past_max_connections_the_listener_waits_until_one_closes() {
        let (mut listener, addr) = pair(ConnDeadlines::default(), 2).await;
        let _a = TcpStream::connect(addr).await.unwrap();
        let _b = TcpStream::connect(addr).await.unwrap();
        let _c = TcpStream::connect(addr).await.unwrap();
        let (first, _) = listener.accept().await;
        let (_second, _) = listener.accept().await;
        assert_eq!(listener.open_connections(), 2);
        let third = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        assert!(third.is_err(), "a third connection is not accepted");
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await;
        assert!(third.is_ok(), "accepted once a slot is free");
    }

    #[test]
    fn resource_errors_back_off_and_connection_errors_do_not() {
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        assert_eq!(accept_error_kind(&emfile), "emfile");
        let enobufs = io::Error::from_raw_os_error(libc::ENOBUFS);
        assert_eq!(accept_error_kind(&enobufs), "enobufs");
        let aborted = io::Error::from_raw_os_error(libc::ECONNABORTED);
        assert_eq!(accept_error_kind(&aborted), "connection");
        let other = io::Error::other("strange");
        assert_eq!(accept_error_kind(&other), "other");
    }
}
