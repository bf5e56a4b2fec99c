//! Drawmesh's signaling server: it introduces browsers to each other and then gets out of the way.
//! The drawing itself travels browser to browser over WebRTC data channels.
//!
//! Module map:
//! - [`config`]: flags and environment (`--help` lists them).
//! - [`auth`]: HS256 access tokens and the [`auth::AuthUser`] extractor.
//! - [`turn`]: per-user, time-limited TURN credentials (coturn's REST scheme).
//! - [`hub`]: room membership and delivery to users' SSE streams (in-process now; Redis later).
//! - [`metrics`]: the counters and gauges `/metrics` exports (Prometheus text format).
//! - [`routes`]: the HTTP routes, each thin: authenticate, validate, call the hub.
//! - [`listener`]: the accept loop, the descriptor budget, and shutdown.
//! - [`limits`]: per-client limits (streams per address, request rates).
//! - [`memory`]: handing memory back to the system after a crowd leaves.
//! - [`streams`]: `GET /connect` served outside the HTTP stack (an open stream's memory is the
//!   server's memory).
//! - [`error`]: [`error::ApiError`], every refusal with its status code and JSON body.
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it on a listener (through
//! [`listener`]). Tests start the real server on port 0 with both.

pub mod auth;
pub mod certs;
pub mod config;
pub mod error;
pub mod hub;
pub mod limits;
pub mod listener;
pub mod memory;
pub mod metrics;
pub mod routes;
pub mod streams;
pub mod turn;

use auth::Tokens;
use axum::Router;
use axum::extract::Request;
use axum::routing::get;
use config::Config;
use hub::Hub;
use shared::protocol::ClientConfig;
use shared::signing::Keypair;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

/// What every route can reach: one shared [`Shared`], so a clone (axum makes one or more per
/// request) is one reference count, not one per field (the fields' own handles were about 17
/// atomic counts, taken and dropped on every request from both cores).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The state's parts (see [`AppState`]).
pub struct Shared {
    /// Rooms and streams.
    pub hub: Hub,
    /// Token issuing and checking.
    pub tokens: Arc<Tokens>,
    /// Certifies browsers' signing keys (see [`certs`]).
    pub certifier: Arc<Keypair>,
    /// Served at `/config` (plus the user's TURN credentials, see [`turn`]).
    pub client_config: Arc<ClientConfig>,
    /// The TURN service whose credentials `/config` hands out, if configured.
    pub turn: Option<Arc<turn::Turn>>,
    /// The built web client.
    pub dist: Arc<PathBuf>,
    /// Served at `/metrics`.
    pub metrics: metrics::Metrics,
    /// Connections held, against what the descriptors allow.
    pub connections: Arc<listener::Budget>,
    /// Keep-alives and the reconnect hint of event streams.
    pub pacing: streams::Pacing,
    /// Per-client limits and what each client has used.
    pub limits: Arc<limits::ClientLimits>,
}

impl AppState {
    /// State from configuration. Without a token secret, a random one is made (and said so),
    /// except with Redis, where it is refused: tokens must be good on every process. A
    /// half-configured TURN service (`Config::turn`) is an error too, and so is a Redis that
    /// cannot be reached at start.
    pub async fn new(config: &Config) -> Result<AppState, String> {
        let turn = config.turn()?.map(Arc::new);
        let configured = config.token_secret.as_deref().filter(|s| !s.is_empty());
        let secret: Vec<u8> = match (configured, &config.redis_url) {
            (Some(s), _) => s.as_bytes().to_vec(),
            (_, Some(_)) => {
                return Err(
                    "--redis-url needs TOKEN_SECRET, the same on every server process: a \
                            random per-process secret would make a token issued by one process \
                            useless on the others"
                        .into(),
                );
            }
            _ => {
                tracing::warn!(
                    "TOKEN_SECRET is not set: using a random secret; tokens will not survive a \
                     restart nor work across servers"
                );
                rand::random::<[u8; 64]>().to_vec()
            }
        };
        let certifier = certs::certifier(
            configured.map(str::as_bytes),
            &config
                .cert_key_file
                .clone()
                .unwrap_or_else(certs::default_file),
        )?;
        let metrics = metrics::Metrics::new();
        let limits = limits::ClientLimits::new(config.client_limits());
        // Clients come and go: their rate state is forgotten once it is back to full.
        let forgetting = Arc::downgrade(&limits);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                match forgetting.upgrade() {
                    Some(limits) => limits.forget_idle(),
                    None => break,
                }
            }
        });
        let room_limits = hub::RoomLimits {
            peers_per_room: config.max_peers_per_room,
            rooms_per_peer: config.max_rooms_per_peer,
        };
        let hub = match &config.redis_url {
            Some(url) => {
                Hub::redis(url, config.redis_cluster, config.stream_queue, &metrics).await?
            }
            None => {
                tracing::info!("hub: in-process (this process is the whole service)");
                Hub::local(config.stream_queue)
            }
        }
        .with_room_limits(room_limits);
        Ok(AppState(Arc::new(Shared {
            hub,
            tokens: Arc::new(Tokens::with_ttl(
                &secret,
                Duration::from_secs(config.token_ttl),
            )),
            client_config: Arc::new(ClientConfig {
                ice_servers: config.ice_servers.0.clone(),
                cert_key: Some(certifier.public()),
            }),
            certifier: Arc::new(certifier),
            turn,
            dist: Arc::new(config.dist.clone()),
            metrics,
            connections: match config.max_connections {
                Some(max) => listener::Budget::new(max),
                None => listener::Budget::from_open_file_limit(),
            },
            pacing: streams::Pacing {
                keep_alive: Duration::from_secs(config.keep_alive_secs),
                retry: Duration::from_millis(config.sse_retry_ms),
                write_timeout: Duration::from_secs(config.stream_write_timeout_secs),
            },
            limits,
        })))
    }
}

/// The whole application as one router.
pub fn app(state: AppState) -> Router {
    let api = routes::api();
    let files = ServeDir::new(state.dist.as_ref())
        .fallback(get(routes::room_page).with_state(state.clone()));
    Router::new()
        .route("/", get(routes::new_room))
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        .merge(api.clone())
        .nest("/api", api)
        // A known path with another method: in our error shape too (axum's is an empty body).
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        // Files for GET and HEAD; anything else at an unknown path is a JSON 404.
        .fallback_service(
            axum::routing::get_service(files).fallback(|| async { error::ApiError::NotFound }),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.limits.clone(),
            limits::limit_requests,
        ))
        .layer(axum::middleware::from_fn(routes::refuse_large_bodies))
        // Spans name the path only: the query may hold a token, which must never reach the logs.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
        }))
        .with_state(state)
}

/// Serves the app on `listener` until the process is stopped.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    listener::serve_until(listener, state, std::future::pending()).await
}

/// The URLs at which other machines can reach a server listening on `addr`: its own address if
/// that is a specific, non-loopback one; every non-loopback interface address if it listens on
/// all of them (`0.0.0.0` or `::`); nothing when it listens on loopback only.
pub fn share_urls(addr: SocketAddr) -> Vec<String> {
    let ip = addr.ip();
    let ips: Vec<IpAddr> = if ip.is_loopback() {
        Vec::new()
    } else if ip.is_unspecified() {
        let interfaces = if_addrs::get_if_addrs().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list network interfaces");
            Vec::new()
        });
        interfaces
            .into_iter()
            .map(|i| i.ip())
            // An IPv4 wildcard accepts only IPv4; link-local IPv6 needs a zone id no URL takes.
            .filter(|i| !i.is_loopback() && (ip.is_ipv6() || i.is_ipv4()))
            .filter(|i| !matches!(i, IpAddr::V6(v6) if v6.is_unicast_link_local()))
            .collect()
    } else {
        vec![ip]
    };
    ips.into_iter()
        .map(|ip| format!("http://{}/", SocketAddr::new(ip, addr.port())))
        .collect()
}

/// Raises the soft limit on open files to the hard limit: every SSE stream holds one descriptor,
/// and the usual soft default (1024) would cap the server far below what the machine allows.
pub fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open file limit"),
    }
}
