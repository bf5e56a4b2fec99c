//! Per-client limits, keyed by the client's address: open streams per address, and request rates
//! on the routes that cost something (`/access` and `/refresh` sign tokens, `/join` fans out to a
//! room, `/relay` writes to another user's stream). Past a limit: `429` with `Retry-After`.
//!
//! The address is the socket's peer, or, when that peer is one of the configured trusted proxies,
//! the right-most address in `X-Forwarded-For` that is not a trusted proxy (the left-most is
//! whatever the client wrote). `--no-limits` turns every limit here off, for load tests from one
//! machine; the descriptor budget ([`crate::listener::Budget`]) stays.
//!
//! Rates are GCRA buckets from `governor`, one per address and route; addresses not seen for a
//! while are forgotten ([`ClientLimits::forget_idle`]), so the maps stay as small as the clients.

use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

/// How many of what, per client address (see `--help` for each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// All of these off.
    pub off: bool,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Open event streams.
    pub streams: usize,
    /// `POST /access` per minute.
    pub access_per_minute: u32,
    /// `POST /refresh` per minute.
    pub refresh_per_minute: u32,
    /// `POST /<room>/join` per minute.
    pub joins_per_minute: u32,
    /// `POST /relay/...` per second.
    pub relays_per_second: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            off: false,
            trusted_proxies: Vec::new(),
            streams: 64,
            access_per_minute: 60,
            refresh_per_minute: 60,
            joins_per_minute: 120,
            relays_per_second: 200,
        }
    }
}

/// The routes with a rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    /// `POST /access`.
    Access,
    /// `POST /refresh`.
    Refresh,
    /// `POST /<room>/join`.
    Join,
    /// `POST /relay/<peer>/<event>`.
    Relay,
}

impl Limited {
    /// The limited route a request path is, if any (the API is mounted at `/` and at `/api`).
    pub fn of(path: &str) -> Option<Limited> {
        let path = path.strip_prefix("/api").unwrap_or(path);
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            ["access"] => Some(Limited::Access),
            ["refresh"] => Some(Limited::Refresh),
            [_, "join"] => Some(Limited::Join),
            ["relay", ..] => Some(Limited::Relay),
            _ => None,
        }
    }
}

/// The limits and what each client has used.
pub struct ClientLimits {
    settings: Settings,
    streams: DashMap<IpAddr, usize>,
    access: DefaultKeyedRateLimiter<IpAddr>,
    refresh: DefaultKeyedRateLimiter<IpAddr>,
    join: DefaultKeyedRateLimiter<IpAddr>,
    relay: DefaultKeyedRateLimiter<IpAddr>,
}

/// One open stream of a client, given back when it drops.
pub struct StreamPermit {
    limits: Arc<ClientLimits>,
    ip: Option<IpAddr>,
}

fn quota(per_minute_or_second: u32, per_second: bool) -> Quota {
    let n = NonZeroU32::new(per_minute_or_second).unwrap_or(NonZeroU32::MIN);
    if per_second {
        Quota::per_second(n)
    } else {
        Quota::per_minute(n)
    }
}

impl ClientLimits {
    /// Limits with `settings`.
    pub fn new(settings: Settings) -> Arc<ClientLimits> {
        Arc::new(ClientLimits {
            access: RateLimiter::keyed(quota(settings.access_per_minute, false)),
            refresh: RateLimiter::keyed(quota(settings.refresh_per_minute, false)),
            join: RateLimiter::keyed(quota(settings.joins_per_minute, false)),
            relay: RateLimiter::keyed(quota(settings.relays_per_second, true)),
            streams: DashMap::new(),
            settings,
        })
    }

    /// The client a request comes from: see the module docs.
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let trusted = |ip: &IpAddr| self.settings.trusted_proxies.contains(ip);
        if !trusted(&peer) {
            return peer;
        }
        forwarded_for
            .into_iter()
            .flat_map(|list| list.rsplit(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .find(|ip| !trusted(ip))
            .unwrap_or(peer)
    }

    /// Counts one request of `route` from `ip`: refused past its rate.
    pub fn check(&self, route: Limited, ip: IpAddr) -> Result<(), ApiError> {
        if self.settings.off {
            return Ok(());
        }
        let limiter = match route {
            Limited::Access => &self.access,
            Limited::Refresh => &self.refresh,
            Limited::Join => &self.join,
            Limited::Relay => &self.relay,
        };
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::TooManyRequests {
                retry_after: wait.as_secs() + 1,
            }
        })
    }

    /// A place for one more open stream from `ip`, if it has one.
    pub fn open_stream(self: &Arc<Self>, ip: IpAddr) -> Result<StreamPermit, ApiError> {
        if self.settings.off {
            return Ok(StreamPermit {
                limits: self.clone(),
                ip: None,
            });
        }
        let mut open = self.streams.entry(ip).or_default();
        if *open >= self.settings.streams {
            return Err(ApiError::TooManyStreams(self.settings.streams));
        }
        *open += 1;
        Ok(StreamPermit {
            limits: self.clone(),
            ip: Some(ip),
        })
    }

    /// Forgets the rate state of addresses idle long enough to have a full bucket again, and
    /// shrinks the maps: call now and then.
    pub fn forget_idle(&self) {
        for limiter in [&self.access, &self.refresh, &self.join, &self.relay] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.streams.shrink_to_fit();
    }

    /// Addresses with rate state or open streams (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.access.len()
            + self.refresh.len()
            + self.join.len()
            + self.relay.len()
            + self.streams.len()
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let gone = match self.limits.streams.get_mut(&ip) {
                Some(mut open) => {
                    *open = open.saturating_sub(1);
                    *open == 0
                }
                None => false,
            };
            if gone {
                self.limits.streams.remove_if(&ip, |_, open| *open == 0);
            }
        }
    }
}

/// Middleware: the rate limits, for requests the listener told their client's address.
pub async fn limit_requests(
    State(limits): State<Arc<ClientLimits>>,
    request: Request,
    next: Next,
) -> Response {
    if let (Some(route), Some(ConnectInfo(peer))) = (
        Limited::of(request.uri().path()),
        request.extensions().get::<ConnectInfo<SocketAddr>>(),
    ) {
        let forwarded = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let ip = limits.client(peer.ip(), forwarded);
        if let Err(refused) = limits.check(route, ip) {
            return refused.into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_the_routes_that_cost_are_limited() {
        assert_eq!(Limited::of("/access"), Some(Limited::Access));
        assert_eq!(Limited::of("/api/refresh"), Some(Limited::Refresh));
        assert_eq!(Limited::of("/room1/join"), Some(Limited::Join));
        assert_eq!(Limited::of("/api/room1/join"), Some(Limited::Join));
        assert_eq!(Limited::of("/relay/p/ice-candidate"), Some(Limited::Relay));
        for free in [
            "/",
            "/config",
            "/connect",
            "/room1",
            "/a/b/join",
            "/metrics",
        ] {
            assert_eq!(Limited::of(free), None, "{free}");
        }
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let limits = ClientLimits::new(Settings {
            trusted_proxies: vec![ip("10.0.0.1"), ip("10.0.0.2")],
            ..Settings::default()
        });
        let chain = Some("6.6.6.6, 1.2.3.4, 10.0.0.2");
        // From the proxy: the right-most hop that is not a proxy (the client wrote 6.6.6.6).
        assert_eq!(limits.client(ip("10.0.0.1"), chain), ip("1.2.3.4"));
        // From anyone else: the socket's address, whatever the header says.
        assert_eq!(limits.client(ip("5.5.5.5"), chain), ip("5.5.5.5"));
        // A proxy with no (or garbage) header: the proxy itself.
        assert_eq!(limits.client(ip("10.0.0.1"), None), ip("10.0.0.1"));
        assert_eq!(
            limits.client(ip("10.0.0.1"), Some("nonsense")),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn rates_refuse_past_the_burst_with_a_wait_per_address() {
        let limits = ClientLimits::new(Settings {
            access_per_minute: 3,
            ..Settings::default()
        });
        let (a, b) = (ip("1.1.1.1"), ip("2.2.2.2"));
        for _ in 0..3 {
            assert!(limits.check(Limited::Access, a).is_ok());
        }
        match limits.check(Limited::Access, a) {
            Err(ApiError::TooManyRequests { retry_after }) => {
                assert!((1..=21).contains(&retry_after), "{retry_after}")
            }
            other => panic!("{other:?}"),
        }
        assert!(limits.check(Limited::Access, b).is_ok(), "another address");
        assert!(limits.check(Limited::Join, a).is_ok(), "another route");
        let off = ClientLimits::new(Settings {
            off: true,
            access_per_minute: 1,
            ..Settings::default()
        });
        for _ in 0..10 {
            assert!(off.check(Limited::Access, a).is_ok());
        }
    }

    #[test]
    fn streams_per_address_free_as_permits_drop() {
        let limits = ClientLimits::new(Settings {
            streams: 2,
            ..Settings::default()
        });
        let a = ip("1.1.1.1");
        let first = limits.open_stream(a).unwrap();
        let _second = limits.open_stream(a).unwrap();
        assert!(matches!(
            limits.open_stream(a),
            Err(ApiError::TooManyStreams(2))
        ));
        assert!(limits.open_stream(ip("2.2.2.2")).is_ok());
        drop(first);
        let _third = limits.open_stream(a).unwrap();
        drop(_third);
        drop(_second);
        assert_eq!(
            limits.streams.len(),
            0,
            "an address with no stream is forgotten"
        );
    }
}
