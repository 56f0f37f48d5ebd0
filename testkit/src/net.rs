//! Loopback ports and addresses chosen by the system, and waiting until a
//! process listens on one.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A loopback address whose port was free a moment ago (bound to port 0,
/// then released): for processes that must be told their port up front.
/// Prefer port 0 and reading the bound address where the server allows it.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .expect("the bound address")
}

/// The port of [`free_addr`].
pub fn free_port() -> u16 {
    free_addr().port()
}

/// Waits until a TCP connection to `addr` succeeds; panics after `timeout`.
pub fn wait_listening(addr: SocketAddr, timeout: Duration) {
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            start.elapsed() < timeout,
            "nothing listens on {addr} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
