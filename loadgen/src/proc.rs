//! Readings from /proc: the server's resident memory, descriptors and threads (its own process,
//! so the figures are the server's alone), and the facts about the machine a result needs to be
//! read against (cores, load, memory).

use serde::Serialize;
use std::collections::BTreeMap;
use std::process::Command;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// VmRSS, KiB.
    pub rss_kib: u64,
    /// Entries in /proc/<pid>/fd.
    pub fds: u64,
    /// The Threads line of /proc/<pid>/status.
    pub threads: u64,
}

/// The `<key>` line of a /proc status file as a number (its first word): `VmRSS:  1234 kB`.
pub fn status_field(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Reads `pid`'s usage; zeros for what cannot be read (the process is gone).
pub fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    Usage {
        rss_kib: status_field(&status, "VmRSS").unwrap_or(0),
        fds: count_fds(pid),
        threads: status_field(&status, "Threads").unwrap_or(0),
    }
}

/// Open descriptors of `pid`.
pub fn count_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// This process's peak resident memory (VmHWM, KiB): the client side's own cost.
pub fn own_peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status_field(&status, "VmHWM").unwrap_or(0)
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    parse_loadavg(&text)
}

fn parse_loadavg(text: &str) -> [f64; 3] {
    let mut it = text
        .split_whitespace()
        .map(|w| w.parse::<f64>().unwrap_or(f64::NAN));
    [(); 3].map(|()| it.next().unwrap_or(f64::NAN))
}

/// CPU time (user + system, all threads) of `pid`, or of this process for `None`, in seconds.
/// /proc counts it in clock ticks; USER_HZ is 100 on every Linux this runs on (`getconf CLK_TCK`).
pub fn cpu_secs(pid: Option<u32>) -> f64 {
    let path = pid.map_or("/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    parse_stat_cpu_ticks(&std::fs::read_to_string(path).unwrap_or_default()) as f64 / 100.0
}

/// utime + stime from a /proc/<pid>/stat line. The command name (field 2) is in parentheses
/// and may hold spaces, so fields are counted after its closing parenthesis.
fn parse_stat_cpu_ticks(stat: &str) -> u64 {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

/// Time on a CPU, in nanoseconds, summed over every thread of `pid` (or of this process for
/// `None`): the first field of each `/proc/<pid>/task/<tid>/schedstat`. Unlike `cpu_secs`, whose
/// clock ticks are 10 ms, this resolves a burst of a few milliseconds. Threads that exited
/// during the interval are not counted, so read it around intervals the thread pools outlive.
pub fn on_cpu_ns(pid: Option<u32>) -> u64 {
    let dir = pid.map_or("/proc/self/task".to_owned(), |p| format!("/proc/{p}/task"));
    let Ok(tasks) = std::fs::read_dir(dir) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// CPU use over an interval, in cores (1.0 = one core busy all along).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CpuUse {
    /// The server process.
    pub server_cores: f64,
    /// The load generator.
    pub client_cores: f64,
}

/// Starts measuring CPU use of the server and of this process.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    pid: u32,
    server: f64,
    client: f64,
    at: std::time::Instant,
}

impl CpuMeter {
    /// Readings now.
    pub fn start(pid: u32) -> CpuMeter {
        CpuMeter {
            pid,
            server: cpu_secs(Some(pid)),
            client: cpu_secs(None),
            at: std::time::Instant::now(),
        }
    }

    /// Cores used since `start`.
    pub fn read(&self) -> CpuUse {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        CpuUse {
            server_cores: (cpu_secs(Some(self.pid)) - self.server) / wall,
            client_cores: (cpu_secs(None) - self.client) / wall,
        }
    }
}

/// Kernel TCP counters that explain stalls a client sees: `ListenOverflows`/`ListenDrops` (a
/// connection arrived while the server's accept queue was full, and its SYN or ACK was dropped:
/// the client retries after 1 s, then 3 s...), `TCPSynRetrans`, `TCPTimeouts`, `TWKilled`
/// (TIME_WAIT sockets dropped over the table limit), and from /proc/net/snmp `AttemptFails`,
/// `EstabResets`, `RetransSegs`. They count the whole network namespace, so other loopback
/// traffic on the machine shows up too.
pub const TCP_COUNTERS: [&str; 8] = [
    "ListenOverflows",
    "ListenDrops",
    "TCPSynRetrans",
    "TCPTimeouts",
    "TWKilled",
    "AttemptFails",
    "EstabResets",
    "RetransSegs",
];

/// The [`TCP_COUNTERS`] now (those the kernel does not have are left out).
pub fn tcp_counters() -> BTreeMap<String, i64> {
    let mut all = parse_proc_net(&std::fs::read_to_string("/proc/net/netstat").unwrap_or_default());
    all.extend(parse_proc_net(
        &std::fs::read_to_string("/proc/net/snmp").unwrap_or_default(),
    ));
    all.into_iter()
        .filter(|(k, _)| TCP_COUNTERS.contains(&k.as_str()))
        .collect()
}

/// `after - before`, per counter.
pub fn counter_delta(
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
) -> BTreeMap<String, i64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .collect()
}

/// /proc/net/netstat and /proc/net/snmp: pairs of lines, `Prefix: names...` then
/// `Prefix: values...`.
fn parse_proc_net(text: &str) -> BTreeMap<String, i64> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = BTreeMap::new();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        for (k, v) in names
            .split_whitespace()
            .zip(values.split_whitespace())
            .skip(1)
        {
            if let Ok(v) = v.parse() {
                out.insert(k.to_owned(), v);
            }
        }
    }
    out
}

/// The machine a run happened on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores this process may use.
    pub nproc: usize,
    /// MemTotal, KiB.
    pub mem_total_kib: u64,
    /// /proc/loadavg (1, 5, 15 min) when the run started.
    pub loadavg_start: [f64; 3],
    /// ... and when it ended.
    pub loadavg_end: [f64; 3],
    /// The kernel (uname -r, from /proc).
    pub kernel: String,
}

impl Machine {
    /// Reads everything but the end load (filled in by [`Machine::finish`]).
    pub fn now() -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism().map_or(0, usize::from),
            mem_total_kib: status_field(&meminfo, "MemTotal").unwrap_or(0),
            loadavg_start: loadavg(),
            loadavg_end: [f64::NAN; 3],
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        }
    }

    /// Records the load at the end of the run.
    pub fn finish(&mut self) {
        self.loadavg_end = loadavg();
    }
}

/// `git rev-parse --short HEAD` (plus `-dirty` when the work tree has changes), if git answers.
pub fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let mut commit = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    if dirty {
        commit.push_str("-dirty");
    }
    Some(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_fields() {
        let status =
            "Name:\tdrawmesh-server\nVmHWM:\t   9000 kB\nVmRSS:\t   8120 kB\nThreads:\t3\n";
        assert_eq!(status_field(status, "VmRSS"), Some(8120));
        assert_eq!(status_field(status, "VmHWM"), Some(9000));
        assert_eq!(status_field(status, "Threads"), Some(3));
        assert_eq!(status_field(status, "VmSwap"), None);
        // A key that is a prefix of another is not confused with it.
        assert_eq!(status_field("VmRSSx:\t1 kB\n", "VmRSS"), None);
    }

    #[test]
    fn reads_proc_net_pairs() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 771 772\nIpExt: InNoRoutes\nIpExt: 3\n";
        let parsed = parse_proc_net(text);
        assert_eq!(parsed.get("ListenOverflows"), Some(&771));
        assert_eq!(parsed.get("ListenDrops"), Some(&772));
        assert_eq!(parsed.get("InNoRoutes"), Some(&3));
        let after = BTreeMap::from([("ListenOverflows".to_owned(), 785)]);
        assert_eq!(counter_delta(&parsed, &after)["ListenOverflows"], 14);
    }

    #[test]
    fn reads_cpu_ticks_past_a_spaced_name() {
        let stat =
            "4242 (drawmesh server) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_stat_cpu_ticks(stat), 325);
        assert_eq!(parse_stat_cpu_ticks("garbage"), 0);
    }

    #[test]
    fn on_cpu_time_counts_work_done_in_this_process() {
        let before = on_cpu_ns(None);
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < std::time::Duration::from_millis(20) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let spent = on_cpu_ns(None) - before;
        // 20 ms of spinning: at least most of it on a CPU, and not wildly more.
        assert!((10_000_000..2_000_000_000).contains(&spent), "{spent} ns");
        assert_eq!(on_cpu_ns(Some(u32::MAX)), 0);
    }

    #[test]
    fn reads_loadavg() {
        assert_eq!(
            parse_loadavg("1.80 1.33 1.41 5/97 18004\n"),
            [1.80, 1.33, 1.41]
        );
        assert!(parse_loadavg("")[0].is_nan());
    }
}
