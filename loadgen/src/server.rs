//! The server under test: the real `drawmesh-server` binary as a child process (so /proc figures
//! are its own and nothing of the load generator is in them), started fresh per scenario so one
//! scenario's leftovers cannot colour the next one's baseline.
//!
//! It is found the way `server/benches/streams.rs` finds it: port 0, and the port read back from
//! the `Drawmesh listening on http://…/` line it prints. Both its outputs are drained by threads
//! for as long as it runs: a full pipe would stall it mid-benchmark. Error lines (accept errors
//! when it runs out of descriptors, slow-reader closes) are counted and the last few kept.

use serde::Serialize;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServerOpts {
    /// The binary.
    pub bin: PathBuf,
    /// RUST_LOG for it. Its default `info` writes a line per stream and per join; at 19,500
    /// streams that is the server's own cost, not what we measure, so `warn` is our default.
    pub log: String,
    /// Extra arguments (after `--` on our command line).
    pub extra_args: Vec<String>,
}

/// What the server logged, in short.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogSummary {
    /// Lines seen on stdout and stderr.
    pub lines: u64,
    /// Lines at WARN level.
    pub warnings: u64,
    /// Lines at ERROR level.
    pub errors: u64,
    /// `accept error` lines: the listener could not accept (typically EMFILE).
    pub accept_errors: u64,
    /// `stream queue full` lines: the hub closed a slow reader's stream.
    pub slow_reader_closes: u64,
    /// The last few WARN/ERROR lines.
    pub last_problems: Vec<String>,
}

#[derive(Default)]
struct LogState {
    summary: LogSummary,
    recent: VecDeque<String>,
    /// The last lines of any kind: why it would not start (clap errors have no level).
    tail: VecDeque<String>,
}

const KEEP_PROBLEM_LINES: usize = 5;

/// A running server; killed (and its temporary directories removed) on drop.
pub struct Server {
    child: Child,
    /// Its process id, for /proc.
    pub pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<LogState>>,
    temp: PathBuf,
}

static STARTED: AtomicUsize = AtomicUsize::new(0);

impl Server {
    /// Starts the server and waits (at most 20 s) for its listening line.
    pub fn start(opts: &ServerOpts) -> Result<Server, String> {
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let temp = std::env::temp_dir().join(format!("drawmesh-load-{}-{n}", std::process::id()));
        let dist = temp.join("dist");
        std::fs::create_dir_all(&dist).map_err(|e| format!("{}: {e}", dist.display()))?;
        let mut child = Command::new(&opts.bin)
            .args(["--port", "0", "--ice-servers", "[]"])
            .args(&opts.extra_args)
            .env("TOKEN_SECRET", "bench-secret")
            .env("CERT_KEY_FILE", temp.join("cert-key"))
            .env("DRAWMESH_DIST", &dist)
            // Per-client limits off (one machine is every client here). "true", not "1": the
            // server's clap flag takes true/false only, and a server without the flag ignores it.
            .env("DRAWMESH_NO_LIMITS", "true")
            .env("RUST_LOG", &opts.log)
            // Plain lines: we match on their text.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", opts.bin.display()))?;
        let pid = child.id();
        let log = Arc::new(Mutex::new(LogState::default()));
        let (port_tx, port_rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            drain(out, Arc::clone(&log), port_tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            drain(err, Arc::clone(&log), port_tx);
        }
        let mut server = Server {
            child,
            pid,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            log,
            temp,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(port) = port_rx.recv_timeout(Duration::from_millis(100)) {
                server.addr.set_port(port);
                return Ok(server);
            }
            let exited = server.child.try_wait().ok().flatten();
            if exited.is_some() || std::time::Instant::now() >= deadline {
                // Let the drain threads take in its last words.
                std::thread::sleep(Duration::from_millis(100));
                let tail: Vec<String> = {
                    let state = server.log.lock().unwrap_or_else(|p| p.into_inner());
                    state.tail.iter().cloned().collect()
                };
                return Err(format!(
                    "{} printed no listening line ({}); its last lines: {}",
                    opts.bin.display(),
                    exited.map_or("still running after 20 s".into(), |s| format!(
                        "exited: {s}"
                    )),
                    tail.join(" | ")
                ));
            }
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What it has logged so far.
    pub fn log_summary(&self) -> LogSummary {
        let state = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let mut summary = state.summary.clone();
        summary.last_problems = state.recent.iter().cloned().collect();
        summary
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.temp);
    }
}

/// Reads `from` line by line until it closes: counts problems, and sends the port once seen.
fn drain(from: impl Read + Send + 'static, log: Arc<Mutex<LogState>>, port: mpsc::Sender<u16>) {
    std::thread::spawn(move || {
        let reader = BufReader::new(from);
        for line in reader.split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line);
            if let Some(p) = listening_port(&line) {
                let _ = port.send(p);
            }
            let mut state = log.lock().unwrap_or_else(|p| p.into_inner());
            if state.tail.len() == KEEP_PROBLEM_LINES {
                state.tail.pop_front();
            }
            state.tail.push_back(line.chars().take(300).collect());
            let s = &mut state.summary;
            s.lines += 1;
            let warn = line.contains(" WARN ");
            let error = line.contains(" ERROR ");
            s.warnings += u64::from(warn);
            s.errors += u64::from(error);
            s.accept_errors += u64::from(line.contains("accept error"));
            s.slow_reader_closes += u64::from(line.contains("stream queue full"));
            if warn || error {
                if state.recent.len() == KEEP_PROBLEM_LINES {
                    state.recent.pop_front();
                }
                state.recent.push_back(line.chars().take(300).collect());
            }
        }
    });
}

/// The port in `Drawmesh listening on http://127.0.0.1:41234/` (or `localhost:41234`).
pub fn listening_port(line: &str) -> Option<u16> {
    let rest = line.split("listening on http://").nth(1)?;
    let host_port = rest.split('/').next()?;
    host_port.rsplit(':').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_port() {
        assert_eq!(
            listening_port("Drawmesh listening on http://127.0.0.1:41234/"),
            Some(41234)
        );
        assert_eq!(
            listening_port("Drawmesh listening on http://localhost:3000/"),
            Some(3000)
        );
        assert_eq!(
            listening_port("Drawmesh listening on http://[::1]:8080/"),
            Some(8080)
        );
        assert_eq!(
            listening_port("Share rooms with others at http://10.0.0.2:3000/"),
            None
        );
    }
}
