//! `telespool` as a child process: stderr captured (and kept, to assert on
//! what was logged), the addresses it logged when it started serving,
//! signals, and a clean kill when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_telespool");

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
    let mut command = Command::new(BIN);
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
    let line = proc.wait_for_line("telespool gateway serving", Duration::from_secs(60));
    GatewayProc {
        grpc: field(&line, "grpc").parse().unwrap(),
        http: field(&line, "http").parse().unwrap(),
        proc,
    }
}

/// A `telespool serve` on loopback ports chosen by the system.
pub struct SidecarProc {
    pub proc: Proc,
    pub http: SocketAddr,
}

/// Starts `telespool serve --data-dir DIR ARGS` and waits until it serves.
pub fn sidecar(data_dir: &std::path::Path, args: &[&str]) -> SidecarProc {
    let mut command = Command::new(BIN);
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
        .args(["--export-interval", "1s", "--instance-id", "tls-instance"])
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
    let line = proc.wait_for_line("telespool sidecar serving", Duration::from_secs(60));
    SidecarProc {
        http: field(&line, "http").parse().unwrap(),
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
