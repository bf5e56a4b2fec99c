//! Server configuration: flags, each with an environment variable, and a `.env` file read first.

use crate::turn::{Turn, TurnSecret, validate_urls};
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

    /// Where the key that certifies browsers' signing keys is kept when TOKEN_SECRET is unset
    /// (made on first start; with TOKEN_SECRET the key is derived from it instead). Default:
    /// $XDG_STATE_HOME/drawmesh/cert-key or ~/.local/state/drawmesh/cert-key.
    #[arg(long, env = "CERT_KEY_FILE")]
    pub cert_key_file: Option<PathBuf>,

    /// How long an access token is valid, in seconds. Browsers renew theirs (same peer id)
    /// shortly before it runs out.
    #[arg(long, env = "DRAWMESH_TOKEN_TTL", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(5..=86_400))]
    pub token_ttl: u64,

    /// ICE servers for the browsers, as JSON: '[{"urls":["stun:stun.example.org"]},
    /// {"urls":["turn:turn.example.org"],"username":"u","credential":"c"}]'. The default, a
    /// public STUN server, lets browsers behind ordinary home NATs find each other; '[]' keeps
    /// everything on the local network (offline LANs, tests). Browsers behind symmetric NATs or
    /// strict firewalls also need TURN (--turn-urls and --turn-secret).
    #[arg(long, env = "ICE_SERVERS", value_parser = parse_ice_servers, default_value = DEFAULT_ICE_SERVERS)]
    pub ice_servers: IceServers,

    /// TURN server URLs, comma-separated (turn:turn.example.org:3478,turns:turn.example.org:5349).
    /// Given with --turn-secret, every signed-in browser gets its own time-limited credentials
    /// for them in /config.
    #[arg(long, env = "TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,

    /// Secret shared with the TURN server (coturn: use-auth-secret, static-auth-secret=...). It
    /// signs the per-user credentials and never leaves the server. Prefer the environment.
    #[arg(long, env = "TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<TurnSecret>,

    /// Redis to share rooms with every other server process pointed at it (redis://host:6379/).
    /// Without it, this process is the whole service (in-process hub). Needs TOKEN_SECRET, the
    /// same on every process: a token from one must be good on all.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// The Redis is a Redis Cluster: --redis-url lists some of its nodes, comma-separated.
    /// Events then travel by sharded pub/sub (SPUBLISH/SSUBSCRIBE), spread over the shards.
    #[arg(long, env = "REDIS_CLUSTER", requires = "redis_url")]
    pub redis_cluster: bool,

    /// Events queued for one SSE stream before the server gives up on that (too slow) reader and
    /// closes its stream; its browser reconnects and resyncs.
    #[arg(long, env = "DRAWMESH_STREAM_QUEUE", default_value_t = 256)]
    pub stream_queue: usize,

    /// Seconds between keep-alive comments on an idle event stream (they stop proxies from
    /// timing it out, and let the server notice a vanished client).
    #[arg(long, env = "DRAWMESH_KEEP_ALIVE_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub keep_alive_secs: u64,

    /// The `retry:` hint on event streams: milliseconds a browser waits before reconnecting a
    /// stream that ended.
    #[arg(long, env = "DRAWMESH_SSE_RETRY_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub sse_retry_ms: u64,

    /// Seconds a write to an event stream may make no progress before the stream is ended (its
    /// reader stopped reading; its queue of --stream-queue events is all it holds until then).
    #[arg(long, env = "DRAWMESH_STREAM_WRITE_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub stream_write_timeout_secs: u64,

    /// Most connections held at once; past it, new ones get 503 with Retry-After. Default: the
    /// process's open-file limit less 256 descriptors kept for everything else.
    #[arg(long, env = "DRAWMESH_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Most people in one room: the next gets a refusal that says the room is full (a full mesh
    /// of more browsers than this is unusable). Every process sharing a Redis needs the same.
    #[arg(long, env = "DRAWMESH_MAX_PEERS_PER_ROOM", default_value_t = 16, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub max_peers_per_room: usize,

    /// Most rooms one user (one token) is in at once (each relay looks at the sender's rooms).
    #[arg(long, env = "DRAWMESH_MAX_ROOMS_PER_PEER", default_value_t = 8, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub max_rooms_per_peer: usize,

    /// Turns every per-client limit below off (for load tests from one machine); the descriptor
    /// budget (--max-connections) stays.
    #[arg(long, env = "DRAWMESH_NO_LIMITS", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_limits: bool,

    /// Reverse proxies whose X-Forwarded-For is believed, comma-separated IP addresses: behind
    /// them, the per-client limits key on the client's address they forward.
    #[arg(long, env = "DRAWMESH_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,

    /// Most open event streams from one client address.
    #[arg(long, env = "DRAWMESH_STREAMS_PER_IP", default_value_t = 64)]
    pub streams_per_ip: usize,

    /// Most `POST /access` (sign-ins) per minute from one client address.
    #[arg(long, env = "DRAWMESH_ACCESS_PER_MINUTE", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub access_per_minute: u32,

    /// Most `POST /refresh` (token renewals) per minute from one client address.
    #[arg(long, env = "DRAWMESH_REFRESH_PER_MINUTE", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub refresh_per_minute: u32,

    /// Most `POST /<room>/join` per minute from one client address.
    #[arg(long, env = "DRAWMESH_JOINS_PER_MINUTE", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..))]
    pub joins_per_minute: u32,

    /// Most `POST /relay/...` (offers, answers, ICE candidates) per second from one client
    /// address.
    #[arg(long, env = "DRAWMESH_RELAYS_PER_SECOND", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub relays_per_second: u32,
}

/// The default `--ice-servers`: one public STUN server, as the tutorial uses.
pub const DEFAULT_ICE_SERVERS: &str = r#"[{"urls":["stun:stun.l.google.com:19302"]}]"#;

/// The parsed `--ice-servers` list.
#[derive(Debug, Clone, Default)]
pub struct IceServers(pub Vec<IceServer>);

fn parse_ice_servers(s: &str) -> Result<IceServers, String> {
    serde_json::from_str(s).map(IceServers).map_err(|e| {
        format!("ICE servers must be a JSON array of {{urls, username?, credential?}}: {e}")
    })
}

impl Config {
    /// The per-client limits these settings ask for.
    pub fn client_limits(&self) -> crate::limits::Settings {
        crate::limits::Settings {
            off: self.no_limits,
            trusted_proxies: self.trusted_proxies.clone(),
            streams: self.streams_per_ip,
            access_per_minute: self.access_per_minute,
            refresh_per_minute: self.refresh_per_minute,
            joins_per_minute: self.joins_per_minute,
            relays_per_second: self.relays_per_second,
        }
    }

    /// The configuration tests use: port 0, a fixed secret, no dist.
    pub fn for_tests() -> Config {
        Config {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            dist: PathBuf::from("dist"),
            token_secret: Some("test-secret".into()),
            cert_key_file: None,
            token_ttl: 3600,
            ice_servers: IceServers::default(),
            turn_urls: Vec::new(),
            turn_secret: None,
            redis_url: None,
            redis_cluster: false,
            stream_queue: 256,
            keep_alive_secs: 15,
            sse_retry_ms: 2000,
            stream_write_timeout_secs: 30,
            max_connections: None,
            max_peers_per_room: 16,
            max_rooms_per_peer: 8,
            no_limits: false,
            trusted_proxies: Vec::new(),
            streams_per_ip: 64,
            access_per_minute: 60,
            refresh_per_minute: 60,
            joins_per_minute: 120,
            relays_per_second: 200,
        }
    }

    /// The TURN service, if configured. URLs without a secret (or the reverse) are a mistake
    /// worth stopping for: the browsers would get TURN servers they cannot use.
    pub fn turn(&self) -> Result<Option<Turn>, String> {
        match (&self.turn_secret, self.turn_urls.is_empty()) {
            (None, true) => Ok(None),
            (Some(_), true) => {
                Err("--turn-secret is set but --turn-urls is not: say where the TURN server is".into())
            }
            (None, false) => Err(
                "--turn-urls is set but --turn-secret is not: give the secret shared with the TURN \
                 server (coturn's static-auth-secret)"
                    .into(),
            ),
            (Some(secret), false) => {
                validate_urls(&self.turn_urls)?;
                Ok(Some(Turn::new(self.turn_urls.clone(), secret.clone())))
            }
        }
    }
}
