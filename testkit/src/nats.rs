//! A real `nats-server -js` for the NATS tests: a free loopback port, a
//! temporary store directory, stop and restart on the same port and store.
//! The tests fail (never skip) when the binary is missing ([`binary`]); the
//! benches skip ([`find_binary`]).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const INSTALL_HINT: &str = "nats-server is not installed: the NATS tests need it \
     (Debian/Ubuntu: `apt-get install -y nats-server`; or put a nats-server binary on PATH)";

/// `nats-server` on PATH (or in /usr/sbin, where Debian puts it, or
/// /usr/local/bin); `None` when it is not installed.
pub fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

/// [`find_binary`], or a panic saying how to install it.
pub fn binary() -> PathBuf {
    find_binary().unwrap_or_else(|| panic!("{INSTALL_HINT}"))
}

pub struct NatsServer {
    pub port: u16,
    pub store: tempfile::TempDir,
    child: Option<Child>,
    /// Extra arguments (authentication, TLS).
    extra: Vec<String>,
}

impl NatsServer {
    /// Starts a JetStream server on a free loopback port.
    pub fn start() -> NatsServer {
        Self::start_with(&[])
    }

    /// Starts one with extra arguments (`--user U --pass P`, `--auth T`,
    /// `--tls --tlscert F --tlskey F`, …).
    pub fn start_with(extra: &[&str]) -> NatsServer {
        let mut server = NatsServer {
            port: crate::net::free_port(),
            store: tempfile::tempdir().unwrap(),
            child: None,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and store directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(binary())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting nats-server: {e}; {INSTALL_HINT}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGTERM, so it flushes its store; SIGKILL after
    /// 10 s) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
