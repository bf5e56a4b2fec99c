//! The command line: one sub-command per scenario, and `all`, which runs every scenario (each on
//! a fresh server) with its defaults or with options given as one string per scenario
//! (`--hold "--streams 5000 --cycles 1"`). Arguments after `--` go to the server.

use crate::scenarios::churn::ChurnArgs;
use crate::scenarios::fanout::FanoutArgs;
use crate::scenarios::hold::HoldArgs;
use crate::scenarios::relay::RelayArgs;
use crate::scenarios::{self, Ctx, Outcome};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Drives the real drawmesh-server over HTTP + SSE on loopback and prints what it measured.
#[derive(Parser, Debug)]
#[command(name = "drawmesh-load", version)]
pub struct Cli {
    /// The server binary (started fresh for every scenario).
    #[arg(long, global = true, default_value = "target/release/drawmesh-server")]
    pub server_bin: PathBuf,
    /// RUST_LOG for the server. Its own default (info) logs every stream and join: at 19,500
    /// streams that logging is a cost of its own, so `warn` unless asked.
    #[arg(long, global = true, default_value = "warn")]
    pub server_log: String,
    /// Tokio worker threads of the load generator; the server has the rest of the machine.
    #[arg(long, global = true, default_value_t = 1)]
    pub client_threads: usize,
    /// Client sockets bind to 127.0.0.<first>..=<last> in turn (ephemeral ports are per source
    /// address: ~28k each).
    #[arg(long, global = true, default_value_t = 2)]
    pub source_first: u8,
    /// See --source-first.
    #[arg(long, global = true, default_value_t = 250)]
    pub source_last: u8,
    /// Also append the BENCH_JSON line to this file (for plot.py).
    #[arg(long, global = true)]
    pub json_out: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Hold N streams open: memory and descriptors per stream, keep-alives, return to baseline.
    Hold(One<HoldArgs>),
    /// Connect/close cycles: leftovers per cycle, and the rate.
    Churn(One<ChurnArgs>),
    /// Relays between pairs: throughput, latency, loss, duplicates, reordering; a rate sweep.
    Relay(One<RelayArgs>),
    /// Rooms whose members all join at once: add-peer latency, missing and extra events.
    Fanout(One<FanoutArgs>),
    /// Every scenario in turn, each on a fresh server.
    All(AllArgs),
}

#[derive(Args, Debug)]
struct One<T: Args> {
    #[command(flatten)]
    args: T,
    /// Extra arguments for the server.
    #[arg(last = true)]
    server_args: Vec<String>,
}

#[derive(Args, Debug)]
struct AllArgs {
    /// Options for hold, as one string ("--streams 5000 --cycles 1").
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    hold: String,
    /// Options for churn, as one string.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    churn: String,
    /// Options for relay, as one string.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    relay: String,
    /// Options for fanout, as one string.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    fanout: String,
    /// Scenarios to leave out, comma-separated.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Extra arguments for the server.
    #[arg(last = true)]
    server_args: Vec<String>,
}

/// Parses one scenario's options from a string.
#[derive(Parser, Debug)]
struct Sub<T: Args> {
    #[command(flatten)]
    args: T,
}

fn sub<T: Args>(name: &str, options: &str) -> Result<T, String> {
    Sub::<T>::try_parse_from(std::iter::once(name).chain(options.split_whitespace()))
        .map(|s| s.args)
        .map_err(|e| format!("--{name} {options:?}: {e}"))
}

/// One scenario to run, with its options.
#[derive(Debug)]
pub enum Step {
    /// `hold`.
    Hold(HoldArgs),
    /// `churn`.
    Churn(ChurnArgs),
    /// `relay`.
    Relay(RelayArgs),
    /// `fanout`.
    Fanout(FanoutArgs),
}

impl Step {
    /// The scenario's name (its key in the JSON).
    pub fn name(&self) -> &'static str {
        match self {
            Step::Hold(_) => "hold",
            Step::Churn(_) => "churn",
            Step::Relay(_) => "relay",
            Step::Fanout(_) => "fanout",
        }
    }

    /// Runs it against a fresh server.
    pub async fn run(&self, ctx: &Ctx) -> Result<Outcome, String> {
        match self {
            Step::Hold(a) => scenarios::hold::run(ctx, a).await,
            Step::Churn(a) => scenarios::churn::run(ctx, a).await,
            Step::Relay(a) => scenarios::relay::run(ctx, a).await,
            Step::Fanout(a) => scenarios::fanout::run(ctx, a).await,
        }
    }
}

impl Cli {
    /// The scenarios to run, in order, and the extra server arguments.
    pub fn plan(&self) -> Result<(Vec<Step>, Vec<String>), String> {
        Ok(match &self.command {
            Command::Hold(o) => (vec![Step::Hold(o.args.clone())], o.server_args.clone()),
            Command::Churn(o) => (vec![Step::Churn(o.args.clone())], o.server_args.clone()),
            Command::Relay(o) => (vec![Step::Relay(o.args.clone())], o.server_args.clone()),
            Command::Fanout(o) => (vec![Step::Fanout(o.args.clone())], o.server_args.clone()),
            Command::All(a) => {
                for s in &a.skip {
                    if !["hold", "churn", "relay", "fanout"].contains(&s.as_str()) {
                        return Err(format!("--skip: no scenario {s:?}"));
                    }
                }
                let steps = vec![
                    Step::Hold(sub("hold", &a.hold)?),
                    Step::Churn(sub("churn", &a.churn)?),
                    Step::Relay(sub("relay", &a.relay)?),
                    Step::Fanout(sub("fanout", &a.fanout)?),
                ];
                let steps = steps
                    .into_iter()
                    .filter(|s| !a.skip.iter().any(|k| k == s.name()))
                    .collect();
                (steps, a.server_args.clone())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_takes_options_per_scenario() {
        let cli = Cli::try_parse_from([
            "drawmesh-load",
            "all",
            "--hold",
            "--streams 100 --cycles 1",
            "--skip",
            "churn",
            "--",
            "--stream-queue",
            "512",
        ])
        .unwrap();
        let (steps, server_args) = cli.plan().unwrap();
        let names: Vec<_> = steps.iter().map(Step::name).collect();
        assert_eq!(names, ["hold", "relay", "fanout"]);
        match &steps[0] {
            Step::Hold(h) => assert_eq!((h.streams, h.cycles), (100, 1)),
            other => panic!("{other:?}"),
        }
        assert_eq!(server_args, ["--stream-queue", "512"]);
    }

    #[test]
    fn scenario_defaults_match_the_brief() {
        let cli = Cli::try_parse_from(["drawmesh-load", "all"]).unwrap();
        let (steps, _) = cli.plan().unwrap();
        match (&steps[0], &steps[1]) {
            (Step::Hold(h), Step::Churn(c)) => {
                assert_eq!((h.streams, h.cycles), (19_500, 3));
                assert_eq!((c.cycles, c.inflight), (100_000, 200));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            Cli::try_parse_from(["drawmesh-load", "all", "--skip", "nope"])
                .unwrap()
                .plan()
                .is_err()
        );
    }
}
