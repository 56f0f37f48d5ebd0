//! `telespool` as a child process: the binary of this checkout ([`bin`]),
//! stderr captured (and kept, to assert on what was logged), "wait until it
//! logs that it serves" and the addresses it logged, signals, and a clean
//! kill when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a child may take to log that it serves (a cold start on a busy
/// 2-core machine takes seconds; this is a wide margin).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `telespool` binary cargo built for the running test or bench: the
/// one `CARGO_BIN_EXE_telespool` names, found next to the running
/// executable (tests and benches run from `<target>/<profile>/deps/`, the
/// binary is `<target>/<profile>/telespool`; cargo builds it before running
/// them). The kit cannot use `env!("CARGO_BIN_EXE_telespool")`: cargo sets
/// it only for telespool's own tests and benches.
pub fn bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the running test");
    let found = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(format!("telespool{}", std::env::consts::EXE_SUFFIX)))
        .find(|candidate| candidate.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "no telespool binary next to {} or its parent: run through `cargo test` or `cargo bench`",
            exe.display()
        )
    })
}

/// The binary named by the environment variable `var` when it is set (to
/// measure another build), else [`bin`].
pub fn bin_or_env(var: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(bin, PathBuf::from)
}

/// A running `telespool` child.
pub struct Proc {
    child: Child,
    stderr: Arc<Mutex<String>>,
    /// Reads stderr until the pipe closes; joined once the process exits.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    /// Spawns `command` with stderr captured.
    pub fn spawn(mut command: Command) -> Proc {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Proc {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Everything logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits until a logged line contains `needle`; returns that line.
    /// Panics (with the log) after `timeout`, or if the process exits.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = self.stderr().lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain();
                panic!(
                    "exited ({status}) before logging {needle:?}:\n{}",
                    self.stderr()
                );
            }
            assert!(
                start.elapsed() < timeout,
                "no {needle:?} logged within {timeout:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits for the process to exit; `None` if it still runs after
    /// `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.drain();
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        None
    }

    /// After the exit: waits until every line the process wrote is read.
    fn drain(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// SIGTERM, then the exit status; panics (with the log) if the process
    /// still runs after `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        self.signal("TERM");
        match self.wait_exit(timeout) {
            Some(status) => status,
            None => panic!(
                "still running {timeout:?} after SIGTERM:\n{}",
                self.stderr()
            ),
        }
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().expect("poll the child")?;
        self.drain();
        Some(status)
    }

    /// SIGTERM, then wait (SIGKILL after 30 s).
    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal("TERM");
            if self.wait_exit(Duration::from_secs(30)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address logged as `key=ADDR` in a log line.
pub fn addr_field(line: &str, key: &str) -> SocketAddr {
    let value = field(line, key);
    value
        .parse()
        .unwrap_or_else(|e| panic!("{key}={value:?} in {line:?} is not an address: {e}"))
}

/// The value of `key=VALUE` in a log line.
pub fn field(line: &str, key: &str) -> String {
    let needle = format!("{key}=");
    let start = line
        .find(&needle)
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        + needle.len();
    line[start..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned()
}

/// A `telespool gateway` serving on loopback ports chosen by the system.
pub struct GatewayProc {
    pub proc: Proc,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
}

/// Starts `telespool gateway ARGS` on 127.0.0.1 port 0 (both listeners)
/// and waits until it serves.
pub fn gateway(args: &[&str], log: &str) -> GatewayProc {
    let mut command = Command::new(bin());
    command
        .arg("gateway")
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .env("TELESPOOL_LOG", log);
    for var in [
        "TELESPOOL_GATEWAY_CONFIG",
        "TELESPOOL_GATEWAY_SINK",
        "TELESPOOL_GATEWAY_TLS_CERT",
        "TELESPOOL_GATEWAY_TLS_KEY",
        "TELESPOOL_GATEWAY_TLS_CLIENT_CA",
    ] {
        command.env_remove(var);
    }
    let mut proc = Proc::spawn(command);
    let line = proc.wait_for_line("telespool gateway serving", START_TIMEOUT);
    GatewayProc {
        grpc: addr_field(&line, "grpc"),
        http: addr_field(&line, "http"),
        proc,
    }
}

/// A `telespool serve` on loopback ports chosen by the system.
pub struct SidecarProc {
    pub proc: Proc,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
}

/// Starts `telespool serve --data-dir DIR` on 127.0.0.1 port 0 (both
/// listeners) with `ARGS`, logging at `info`, with no configuration from
/// the environment, and waits until it serves.
pub fn sidecar(data_dir: &Path, args: &[&str]) -> SidecarProc {
    sidecar_with(&bin(), data_dir, args)
}

/// [`sidecar`] with another binary.
pub fn sidecar_with(bin: &Path, data_dir: &Path, args: &[&str]) -> SidecarProc {
    let mut command = Command::new(bin);
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .env("TELESPOOL_LOG", "info");
    for var in [
        "TELESPOOL_CONFIG",
        "TELEMETRY_GATEWAY_EXPORTER_EXPORT_ADDR",
        "TELESPOOL_EXPORT_CA_FILE",
        "TELESPOOL_LICENSE_KEY",
    ] {
        command.env_remove(var);
    }
    let mut proc = Proc::spawn(command);
    let line = proc.wait_for_line("telespool sidecar serving", START_TIMEOUT);
    SidecarProc {
        grpc: addr_field(&line, "grpc"),
        http: addr_field(&line, "http"),
        proc,
    }
}

/// A valid event as JSON for `POST /v1/events`.
pub fn event_json(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","feature":"cody.completion","action":"accepted","source":{{"server":{{"version":"5.9.0"}},"client":{{"name":"VSCODE","version":"1.2.3"}}}},"parameters":{{"version":1,"metadata":{{"latencyMs":12}}}}}}"#
    )
}

/// POSTs events to a sidecar; panics unless it answers 200.
pub async fn post_events(http: SocketAddr, ids: &[&str]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let events: Vec<String> = ids.iter().map(|id| event_json(id)).collect();
    let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
    let mut stream = tokio::net::TcpStream::connect(http).await.unwrap();
    let request = format!(
        "POST /v1/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Waits until the JSONL file holds every id (as `"id":"ID"`); returns its
/// text. Panics after `timeout` with `context` (a process log, say).
pub fn wait_for_ids(
    file: &std::path::Path,
    ids: &[&str],
    timeout: Duration,
    context: impl Fn() -> String,
) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if ids
            .iter()
            .all(|id| text.contains(&format!("\"id\":\"{id}\"")))
        {
            return text;
        }
        assert!(
            start.elapsed() < timeout,
            "not all of {ids:?} reached {} within {timeout:?}; it holds:\n{text}\n{}",
            file.display(),
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
