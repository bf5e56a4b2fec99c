//! Server configuration: flags, each with an environment variable, and a `.env` file read first.

use clap::Parser;
use shared::protocol::IceServer;
use std::net::IpAddr;
use std::path::PathBuf;

/// Drawmesh signaling server: serves the web client, issues tokens, streams signaling events over
/// SSE and relays offers, answers and ICE candidates between peers in the same room.
#[derive(Debug, Clone, Parser)]
#[command(name = "drawmesh-server", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "DRAWMESH_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,

    /// Port to listen on (0 picks a free one; the URL is printed either way).
    #[arg(long, short, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// Directory of the built web client (trunk's dist/).
    #[arg(long, env = "DRAWMESH_DIST", default_value = "dist")]
    pub dist: PathBuf,

    /// Secret that signs access tokens. Prefer the environment (or .env) to the flag, which other
    /// users of the machine can see. When unset, a random one is made at start: tokens then die
    /// with the process and cannot be shared between servers.
    #[arg(long, env = "TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,

    /// How long an access token is valid, in seconds. Browsers renew theirs (same peer id)
    /// shortly before it runs out.
    #[arg(long, env = "DRAWMESH_TOKEN_TTL", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(5..=86_400))]
    pub token_ttl: u64,

    /// ICE servers for the browsers, as JSON: '[{"urls":["stun:stun.example.org"]},
    /// {"urls":["turn:turn.example.org"],"username":"u","credential":"c"}]'. The default, none,
    /// works on a LAN and on localhost.
    #[arg(long, env = "ICE_SERVERS", value_parser = parse_ice_servers, default_value = "[]")]
    pub ice_servers: IceServers,

    /// Events queued for one SSE stream before the server gives up on that (too slow) reader and
    /// closes its stream; its browser reconnects and resyncs.
    #[arg(long, env = "DRAWMESH_STREAM_QUEUE", default_value_t = 256)]
    pub stream_queue: usize,
}

/// The parsed `--ice-servers` list.
#[derive(Debug, Clone, Default)]
pub struct IceServers(pub Vec<IceServer>);

fn parse_ice_servers(s: &str) -> Result<IceServers, String> {
    serde_json::from_str(s).map(IceServers).map_err(|e| {
        format!("ICE servers must be a JSON array of {{urls, username?, credential?}}: {e}")
    })
}

impl Config {
    /// The configuration tests use: port 0, a fixed secret, no dist.
    pub fn for_tests() -> Config {
        Config {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            dist: PathBuf::from("dist"),
            token_secret: Some("test-secret".into()),
            token_ttl: 3600,
            ice_servers: IceServers::default(),
            stream_queue: 256,
        }
    }
}
