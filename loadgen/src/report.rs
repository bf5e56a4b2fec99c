//! Output: a table per scenario for a person, and one `BENCH_JSON {...}` line with every figure
//! for scripts (`plot.py`, comparisons between runs). The JSON is the record; the tables are a
//! reading of it.

use crate::proc::Machine;
use serde::Serialize;
use serde_json::{Map, Value};

/// The prefix of the machine-readable line.
pub const JSON_PREFIX: &str = "BENCH_JSON ";

/// A table: a title, column names and rows of cells, printed with aligned columns.
#[derive(Debug, Clone, Default)]
pub struct Table {
    title: String,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table.
    pub fn new(title: impl Into<String>, columns: &[&str]) -> Table {
        Table {
            title: title.into(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells print empty, extra cells are dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text: title, header, rule, rows; numbers right-aligned, text left-aligned.
    pub fn render(&self) -> String {
        let n = self.columns.len();
        let cell = |row: &Vec<String>, i: usize| row.get(i).cloned().unwrap_or_default();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for row in &self.rows {
            for (i, w) in widths.iter_mut().enumerate() {
                *w = (*w).max(cell(row, i).chars().count());
            }
        }
        let line = |cells: Vec<String>| {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if looks_numeric(c) {
                        format!("{c:>w$}", w = widths[i])
                    } else {
                        format!("{c:<w$}", w = widths[i])
                    }
                })
                .collect();
            parts.join("  ").trim_end().to_owned()
        };
        let mut out = format!("== {} ==\n", self.title);
        out.push_str(&line(self.columns.clone()));
        out.push('\n');
        out.push_str(
            &widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  "),
        );
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line((0..n).map(|i| cell(row, i)).collect()));
            out.push('\n');
        }
        out
    }
}

fn looks_numeric(s: &str) -> bool {
    let s = s.trim_start_matches(['-', '+']);
    s.chars().next().is_some_and(|c| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '%' | 'x'))
}

/// The whole run's record.
#[derive(Debug, Serialize)]
pub struct Run {
    /// Format version of this record.
    pub schema: u32,
    /// Unix time the run started.
    pub started_unix: u64,
    /// Wall time of the whole run.
    pub wall_secs: f64,
    /// The machine.
    pub machine: Machine,
    /// The server binary (as given) and the commit of the work tree we ran in.
    pub server_bin: String,
    /// `git rev-parse --short HEAD`, if available.
    pub git_commit: Option<String>,
    /// Extra server arguments.
    pub server_args: Vec<String>,
    /// RUST_LOG given to the server.
    pub server_log: String,
    /// The load generator's own descriptor limit (after raising it) and tokio worker threads.
    pub client_nofile: u64,
    /// Tokio worker threads of the load generator.
    pub client_threads: usize,
    /// The client's source addresses.
    pub client_sources: String,
    /// The load generator's peak resident memory, KiB.
    pub client_peak_rss_kib: u64,
    /// Scenario name to its figures, in the order run.
    pub scenarios: Map<String, Value>,
}

/// The `BENCH_JSON {...}` line (no newline inside: one record per line).
pub fn json_line(run: &Run) -> String {
    // Serializing plain data cannot fail; an error string still keeps the line parseable.
    let json = serde_json::to_string(run)
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string());
    format!("{JSON_PREFIX}{json}")
}

/// Thousands separators, for counts in tables.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Marks a figure reached under a deadline that ran out.
pub fn mark(timed_out: bool) -> &'static str {
    if timed_out { " (TIMED OUT)" } else { "" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine {
            nproc: 2,
            mem_total_kib: 24_000_000,
            loadavg_start: [1.5, 1.25, 1.0],
            loadavg_end: [f64::NAN; 3],
            kernel: "6.1".into(),
        }
    }

    #[test]
    fn json_line_is_one_parseable_line() {
        let mut scenarios = Map::new();
        scenarios.insert("hold".into(), serde_json::json!({"per_stream_kib": 23.5}));
        let run = Run {
            schema: 1,
            started_unix: 1,
            wall_secs: 2.5,
            machine: machine(),
            server_bin: "target/release/drawmesh-server".into(),
            git_commit: Some("abc1234".into()),
            server_args: vec![],
            server_log: "warn".into(),
            client_nofile: 20_000,
            client_threads: 1,
            client_sources: "127.0.0.2..=127.0.0.250".into(),
            client_peak_rss_kib: 1000,
            scenarios,
        };
        let line = json_line(&run);
        assert!(!line.contains('\n'));
        let json: Value = serde_json::from_str(line.strip_prefix(JSON_PREFIX).unwrap()).unwrap();
        assert_eq!(json["machine"]["nproc"], 2);
        assert_eq!(json["machine"]["loadavg_start"][1], 1.25);
        // NaN (load not read) becomes null, not invalid JSON.
        assert!(json["machine"]["loadavg_end"][0].is_null());
        assert_eq!(json["git_commit"], "abc1234");
        assert_eq!(json["scenarios"]["hold"]["per_stream_kib"], 23.5);
    }

    #[test]
    fn tables_align() {
        let mut t = Table::new("hold", &["streams", "RSS KiB", "note"]);
        t.row(vec!["4,875".into(), "120000".into(), "ok".into()]);
        t.row(vec!["19,500".into(), "9".into()]);
        assert_eq!(
            t.render(),
            "== hold ==\nstreams  RSS KiB  note\n-------  -------  ----\n  4,875   120000  ok\n 19,500        9\n"
        );
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(19_500), "19,500");
        assert_eq!(grouped(1_000_000), "1,000,000");
    }
}
