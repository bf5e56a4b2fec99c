//! Makes signed data-channel messages for the end-to-end tests' hostile peer, with the real
//! signing code, so the tests never reimplement hashing or signing in JavaScript.
//!
//! `forge key <seed-hex>` prints the public key of a 32-byte seed.
//! `forge sign` reads `{"seed": "<hex>", "messages": [[op, ...], ...], "certs": [...]}` on stdin
//! and prints one `ops` message per line: each author's ops chained from its seq 1 across the
//! messages (an op that does not follow its author's last is sent but not chained), each message
//! sealed at its end with the seed's key for every author in it, whoever that author is.

use serde::Deserialize;
use shared::document::Op;
use shared::signing::{Certificate, Keypair, Ledger, from_hex};
use shared::sync::ChannelMessage;
use std::io::Read;

#[derive(Deserialize)]
struct Job {
    seed: String,
    messages: Vec<Vec<Op>>,
    #[serde(default)]
    certs: Vec<Certificate>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed =
        |hex: &str| Keypair::from_seed(from_hex::<32>(hex).expect("a seed is 64 hex digits"));
    match args.get(1).map(String::as_str) {
        Some("key") => println!(
            "{}",
            seed(args.get(2).expect("forge key <seed-hex>")).public()
        ),
        Some("sign") => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).expect("stdin");
            let job: Job = serde_json::from_str(&input).expect("a sign job");
            let key = seed(&job.seed);
            let mut ledger = Ledger::new();
            for ops in job.messages {
                let mut proofs = Vec::new();
                for op in &ops {
                    ledger.record_mine(op, &key);
                }
                let mut authors: Vec<_> = ops.iter().map(|op| op.author.clone()).collect();
                authors.dedup();
                for author in authors {
                    proofs.extend(ledger.seal(&key, &author));
                }
                let message = ChannelMessage::Ops {
                    ops,
                    proofs,
                    certs: job.certs.clone(),
                };
                println!("{}", serde_json::to_string(&message).expect("encodes"));
            }
        }
        _ => {
            eprintln!("usage: forge key <seed-hex> | forge sign < job.json");
            std::process::exit(2);
        }
    }
}
