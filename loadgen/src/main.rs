//! `drawmesh-load`: a load generator for the Drawmesh signaling server. It starts the real
//! `drawmesh-server` binary, drives it over real HTTP/1.1 and SSE on loopback, reads the
//! server's memory, descriptors and threads from /proc, and prints what it measured: a table per
//! scenario and one `BENCH_JSON {...}` line with every figure (`loadgen/plot.py` draws it).
//!
//! Module map:
//! - [`cli`]: the command line (scenarios as sub-commands; `all` runs every one).
//! - [`server`]: the server under test as a child process: started fresh per scenario, port
//!   read from its log line, its logs drained and their problems counted.
//! - [`http`]: the tiny raw HTTP/1.1 client (tokio sockets bound to cycling 127.0.0.x source
//!   addresses, `httparse` for response heads); no client library, so that 19,500 held streams
//!   cost the client little and the server's figures stay the server's.
//! - [`chunked`]: incremental chunked transfer decoding (an SSE body is one endless chunked body).
//! - [`sse`]: incremental Server-Sent Events parsing (events and keep-alive comments).
//! - [`api`]: the Drawmesh protocol: `/access` tokens, `/connect` streams, joins, relays, and the
//!   open-streams gauge of `/metrics`.
//! - [`proc`]: /proc readings of the server (VmRSS, descriptors, threads) and of the machine.
//! - [`stats`]: percentiles, latency summaries, and loss/duplicate/reorder bookkeeping.
//! - [`scenarios`]: `hold`, `churn`, `relay` and `fanout`, one module each.
//! - [`report`]: the tables and the JSON line.

mod api;
mod chunked;
mod cli;
mod http;
mod proc;
mod report;
mod scenarios;
mod server;
mod sse;
mod stats;

use clap::Parser;
use serde_json::Map;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Every held stream is a descriptor here too: take all the kernel allows this process.
    let nofile = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("drawmesh-load: could not raise the open file limit: {e}");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(soft, _)| soft)
        }
    };
    println!("drawmesh-load: open file limit {nofile}");
    let (plan, server_args) = match cli.plan() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("drawmesh-load: {e}");
            return ExitCode::from(2);
        }
    };
    if !cli.server_bin.exists() {
        eprintln!(
            "drawmesh-load: no server binary at {} (build it: cargo build --release -p server, or pass --server-bin)",
            cli.server_bin.display()
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.client_threads.max(1))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("drawmesh-load: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ctx = scenarios::Ctx {
        server: server::ServerOpts {
            bin: cli.server_bin.clone(),
            log: cli.server_log.clone(),
            extra_args: server_args.clone(),
        },
        source_first: cli.source_first,
        source_last: cli.source_last,
    };

    let mut machine = proc::Machine::now();
    let started = Instant::now();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    println!(
        "machine: {} cores, {} MiB, load average {:.2} {:.2} {:.2}; server {}",
        machine.nproc,
        machine.mem_total_kib / 1024,
        machine.loadavg_start[0],
        machine.loadavg_start[1],
        machine.loadavg_start[2],
        cli.server_bin.display()
    );
    let mut results = Map::new();
    let mut failed = false;
    for step in plan {
        let name = step.name();
        eprintln!("drawmesh-load: running {name}");
        let counters_before = proc::tcp_counters();
        let outcome = runtime.block_on(step.run(&ctx));
        let tcp = proc::counter_delta(&counters_before, &proc::tcp_counters());
        match outcome {
            Ok(mut o) => {
                for t in &o.tables {
                    println!("\n{}", t.render());
                }
                let moved: Vec<String> = tcp
                    .iter()
                    .filter(|(_, v)| **v != 0)
                    .map(|(k, v)| format!("{k} {v:+}"))
                    .collect();
                println!(
                    "kernel TCP counters during {name} (whole network namespace): {}",
                    if moved.is_empty() {
                        "none moved".into()
                    } else {
                        moved.join(", ")
                    }
                );
                if let Some(obj) = o.json.as_object_mut() {
                    obj.insert("tcp_counters_delta".into(), serde_json::json!(tcp));
                }
                results.insert(name.into(), o.json);
            }
            Err(e) => {
                failed = true;
                println!("\n== {name}: FAILED: {e} ==");
                results.insert(name.into(), serde_json::json!({ "error": e }));
            }
        }
        let _ = std::io::stdout().flush();
    }
    // Aborted readers may still hold sockets; drop them with the runtime before the figures.
    drop(runtime);
    machine.finish();
    let run = report::Run {
        schema: 1,
        started_unix,
        wall_secs: started.elapsed().as_secs_f64(),
        machine,
        server_bin: cli.server_bin.display().to_string(),
        git_commit: proc::git_commit(),
        server_args,
        server_log: cli.server_log.clone(),
        client_nofile: nofile,
        client_threads: cli.client_threads.max(1),
        client_sources: format!("127.0.0.{}..=127.0.0.{}", cli.source_first, cli.source_last),
        client_peak_rss_kib: proc::own_peak_rss_kib(),
        scenarios: results,
    };
    let line = report::json_line(&run);
    println!(
        "\nload average at end {:.2} {:.2} {:.2}; wall {:.1} s; load generator peak RSS {} KiB",
        run.machine.loadavg_end[0],
        run.machine.loadavg_end[1],
        run.machine.loadavg_end[2],
        run.wall_secs,
        run.client_peak_rss_kib
    );
    println!("{line}");
    if let Some(path) = &cli.json_out {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = appended {
            eprintln!("drawmesh-load: {}: {e}", path.display());
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
