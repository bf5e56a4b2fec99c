//! The health of the link to one peer, as a pure state machine: what the browser's peer
//! connection reports goes in ([`Link::channel_opened`], [`Link::transport`], [`Link::heard`],
//! ...), and [`Link::tick`] says what to do about it. The client's mesh owns the browser objects
//! and carries the actions out; this module owns the policy, so it is tested natively.
//!
//! Nothing may hang for good:
//! - A data channel that has not opened within [`OPEN_TIMEOUT_MS`] (a lost offer, answer or
//!   candidates) makes the offerer tear the connection down and negotiate afresh, waiting longer
//!   after each failure; after [`UNREACHABLE_AFTER`] failed attempts the peer is shown as
//!   unreachable, with the reason, and attempts go on at the longest interval.
//! - A connection that goes `disconnected` for [`RESTART_GRACE_MS`] (it often heals by itself) or
//!   `failed` gets an ICE restart from the offerer; if that has not reconnected within
//!   [`RESTART_TIMEOUT_MS`], a fresh negotiation.
//! - Both sides send a ping every [`PING_INTERVAL_MS`] on the reliable channel; a peer once
//!   connected and then heard from on no channel for [`SILENCE_TIMEOUT_MS`] is dropped, whatever
//!   restarts are under way: its tab died, even if the server (or its absence) has not said so
//!   yet. The bound leaves an ICE restart (a few seconds to notice the disconnect, the grace, the
//!   restart) time to heal a passing network change first.
//!
//! Only the offerer (the side the server told to offer) renegotiates, so the two sides never
//! offer at once. The answerer tells a fresh offer from an ICE restart by its DTLS fingerprint
//! ([`sdp_fingerprint`]): a new connection has a new certificate.

/// A data channel must open within this long of its negotiation starting.
pub const OPEN_TIMEOUT_MS: f64 = 10_000.0;
/// The longest wait for a channel to open, however many attempts failed before.
pub const MAX_OPEN_TIMEOUT_MS: f64 = 30_000.0;
/// `disconnected` for this long gets an ICE restart.
pub const RESTART_GRACE_MS: f64 = 2_000.0;
/// An ICE restart that has not reconnected within this long gives way to a fresh negotiation.
pub const RESTART_TIMEOUT_MS: f64 = 8_000.0;
/// How often each side pings the other on the reliable channel.
pub const PING_INTERVAL_MS: f64 = 2_000.0;
/// A peer once connected, then heard from on no channel for this long, is gone.
pub const SILENCE_TIMEOUT_MS: f64 = 20_000.0;
/// Failed attempts after which a peer is shown as unreachable.
pub const UNREACHABLE_AFTER: u32 = 3;

/// The browser's `RTCPeerConnectionState`, as far as the policy cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `new` or `connecting`.
    Connecting,
    /// `connected`.
    Connected,
    /// `disconnected`: may heal by itself.
    Disconnected,
    /// `failed`: will not heal without an ICE restart.
    Failed,
    /// `closed`.
    Closed,
}

/// How the connection's packets travel, from the selected ICE candidate pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Browser to browser (host, server-reflexive or peer-reflexive candidates).
    Direct,
    /// Through a TURN server (a `relay` candidate on either side).
    Relayed,
}

impl Route {
    /// The route given the two candidate types of the selected pair (`host`, `srflx`, `prflx`,
    /// `relay`).
    pub fn of_candidates(local: &str, remote: &str) -> Route {
        if local == "relay" || remote == "relay" {
            Route::Relayed
        } else {
            Route::Direct
        }
    }
}

/// Why a peer cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreachable {
    /// The negotiation never completed: our offer or its answer did not get through.
    NeverOpened,
    /// Offer and answer were exchanged but no candidate pair worked (or ICE failed): no route
    /// between the two browsers (a TURN server would help).
    IceFailed,
}

impl Unreachable {
    /// In two words, for a badge.
    pub fn short(self) -> &'static str {
        match self {
            Unreachable::NeverOpened => "no answer",
            Unreachable::IceFailed => "no route",
        }
    }

    /// For a person, in full.
    pub fn describe(self) -> &'static str {
        match self {
            Unreachable::NeverOpened => "no answer to our connection attempts",
            Unreachable::IceFailed => "no network route between us (a TURN server would help)",
        }
    }
}

/// What the link looks like to a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Negotiating; strokes do not flow yet.
    Connecting,
    /// Open; strokes flow. The route is `None` until the browser's stats have told it.
    Open(Option<Route>),
    /// Was open, lost its path, and is being restarted.
    Reconnecting,
    /// Attempts keep failing.
    Unreachable(Unreachable),
}

/// What the mesh should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a ping on the reliable channel.
    Ping,
    /// Restart ICE on the current connection (offer with `iceRestart`).
    RestartIce,
    /// Close the connection and negotiate a new one (offer afresh).
    Renegotiate,
    /// The peer is gone: close and forget it.
    Drop,
}

/// The link to one peer.
#[derive(Clone, Debug)]
pub struct Link {
    offerer: bool,
    /// When the current negotiation (fresh connection) started.
    started: f64,
    /// Fresh negotiations that failed in a row.
    failures: u32,
    last_reason: Option<Unreachable>,
    channel_open: bool,
    /// The channel has been open on this connection at some point.
    was_open: bool,
    /// This connection has the other side's session description: the negotiation got through,
    /// so a connection that still does not open is ICE's failure.
    described: bool,
    /// The channel has been open on some connection to this peer (kept across renegotiation).
    ever_open: bool,
    transport: Transport,
    /// Since when the transport has been disconnected or failed, if it is.
    troubled_since: Option<f64>,
    /// When the ICE restart under way started.
    restart_started: Option<f64>,
    last_heard: f64,
    last_ping: f64,
    route: Option<Route>,
}

impl Link {
    /// A link whose negotiation starts at `now` (milliseconds, any monotonic clock).
    pub fn new(offerer: bool, now: f64) -> Link {
        Link {
            offerer,
            started: now,
            failures: 0,
            last_reason: None,
            channel_open: false,
            was_open: false,
            described: false,
            ever_open: false,
            transport: Transport::Connecting,
            troubled_since: None,
            restart_started: None,
            last_heard: now,
            last_ping: now,
            route: None,
        }
    }

    /// A fresh connection replaced the old one at `now` (after [`Action::Renegotiate`], or an
    /// answerer taking a fresh offer). Failures so far are kept, for the back-off.
    pub fn renegotiated(&mut self, now: f64) {
        if !self.was_open {
            self.failures = self.failures.saturating_add(1);
            self.last_reason = Some(self.failure_reason());
        }
        let kept = self.clone();
        *self = Link::new(self.offerer, now);
        // What spans connections: the failures (for the back-off), and when the peer was last
        // heard (a dead peer must not live on through endless renegotiations).
        self.failures = kept.failures;
        self.last_reason = kept.last_reason;
        self.ever_open = kept.ever_open;
        self.last_heard = kept.last_heard;
    }

    /// Why the current connection has not opened.
    fn failure_reason(&self) -> Unreachable {
        if self.described || self.transport == Transport::Failed {
            Unreachable::IceFailed
        } else {
            Unreachable::NeverOpened
        }
    }

    /// The other side's session description was set on the current connection.
    pub fn described(&mut self) {
        self.described = true;
    }

    /// The reliable channel opened.
    pub fn channel_opened(&mut self, now: f64) {
        self.channel_open = true;
        self.was_open = true;
        self.ever_open = true;
        self.failures = 0;
        self.last_reason = None;
        self.last_heard = now;
    }

    /// Something arrived from the peer, on any channel.
    pub fn heard(&mut self, now: f64) {
        self.last_heard = self.last_heard.max(now);
    }

    /// The connection's state changed.
    pub fn transport(&mut self, state: Transport, now: f64) {
        self.transport = state;
        match state {
            Transport::Connected => {
                self.troubled_since = None;
                self.restart_started = None;
            }
            Transport::Disconnected | Transport::Failed => {
                if self.troubled_since.is_none() {
                    self.troubled_since = Some(now);
                }
                if state == Transport::Failed && !self.was_open {
                    self.last_reason = Some(Unreachable::IceFailed);
                }
            }
            Transport::Connecting | Transport::Closed => {}
        }
    }

    /// The browser's stats told the route.
    pub fn set_route(&mut self, route: Route) {
        self.route = Some(route);
    }

    /// What a person should see.
    pub fn status(&self) -> Status {
        if self.channel_open && self.troubled_since.is_none() {
            return Status::Open(self.route);
        }
        if self.channel_open || self.restart_started.is_some() {
            return Status::Reconnecting;
        }
        match self.last_reason {
            Some(reason) if self.failures >= UNREACHABLE_AFTER => Status::Unreachable(reason),
            _ => Status::Connecting,
        }
    }

    /// How long the current attempt may take to open: longer after each failure, capped.
    pub fn open_timeout(&self) -> f64 {
        let factor = f64::from(1u32 << self.failures.min(4));
        (OPEN_TIMEOUT_MS * factor).min(MAX_OPEN_TIMEOUT_MS)
    }

    /// What to do at `now`. Call it every second or so; at most one action comes back per call.
    pub fn tick(&mut self, now: f64) -> Option<Action> {
        if self.ever_open && now - self.last_heard > SILENCE_TIMEOUT_MS {
            return Some(Action::Drop);
        }
        if self.channel_open {
            if self.offerer
                && let Some(action) = self.restart_if_troubled(now)
            {
                return Some(action);
            }
            if now - self.last_ping >= PING_INTERVAL_MS {
                self.last_ping = now;
                return Some(Action::Ping);
            }
            return None;
        }
        if !self.offerer {
            // The offerer drives every retry; an answerer that never gets anywhere shows it.
            if now - self.started > self.open_timeout() {
                self.failures = self.failures.saturating_add(1).min(UNREACHABLE_AFTER);
                self.last_reason = Some(self.failure_reason());
                self.started = now;
            }
            return None;
        }
        let failed = self.transport == Transport::Failed;
        if failed || now - self.started > self.open_timeout() {
            return Some(Action::Renegotiate);
        }
        None
    }

    fn restart_if_troubled(&mut self, now: f64) -> Option<Action> {
        let since = self.troubled_since?;
        match self.restart_started {
            None if self.transport == Transport::Failed || now - since >= RESTART_GRACE_MS => {
                self.restart_started = Some(now);
                Some(Action::RestartIce)
            }
            Some(started) if now - started > RESTART_TIMEOUT_MS => Some(Action::Renegotiate),
            _ => None,
        }
    }

    /// The reliable channel closed; after this the link waits to be renegotiated or dropped.
    pub fn channel_closed(&mut self) {
        self.channel_open = false;
    }
}

/// The DTLS fingerprint an SDP announces (`a=fingerprint:sha-256 AB:CD:...`), if any. Each
/// `RTCPeerConnection` has its own certificate, so an offer with a new fingerprint comes from a
/// new connection, and one with the same fingerprint renegotiates (restarts ICE on) the old one.
pub fn sdp_fingerprint(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix("a=fingerprint:"))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks every 500 ms from `from` up to `to`, collecting the actions.
    fn run(link: &mut Link, from: f64, to: f64) -> Vec<(f64, Action)> {
        let mut out = Vec::new();
        let mut t = from;
        while t <= to {
            if let Some(a) = link.tick(t) {
                out.push((t, a));
            }
            t += 500.0;
        }
        out
    }

    #[test]
    fn a_channel_that_never_opens_is_renegotiated_by_the_offerer_with_back_off() {
        let mut link = Link::new(true, 0.0);
        assert_eq!(link.tick(OPEN_TIMEOUT_MS - 1.0), None);
        assert_eq!(link.tick(OPEN_TIMEOUT_MS + 1.0), Some(Action::Renegotiate));
        link.renegotiated(OPEN_TIMEOUT_MS + 1.0);
        assert_eq!(link.status(), Status::Connecting);
        // The second attempt gets twice as long.
        let start = OPEN_TIMEOUT_MS + 1.0;
        assert_eq!(link.tick(start + OPEN_TIMEOUT_MS + 1.0), None);
        assert_eq!(
            link.tick(start + 2.0 * OPEN_TIMEOUT_MS + 1.0),
            Some(Action::Renegotiate)
        );
        link.renegotiated(start + 2.0 * OPEN_TIMEOUT_MS + 1.0);
        link.renegotiated(start + 3.0 * OPEN_TIMEOUT_MS);
        assert_eq!(link.status(), Status::Unreachable(Unreachable::NeverOpened));
        assert_eq!(link.open_timeout(), MAX_OPEN_TIMEOUT_MS);
        // And once it opens, all is forgiven.
        link.channel_opened(0.0);
        assert_eq!(link.status(), Status::Open(None));
        link.set_route(Route::Relayed);
        assert_eq!(link.status(), Status::Open(Some(Route::Relayed)));
    }

    #[test]
    fn the_answerer_never_renegotiates_but_says_when_nothing_works() {
        let mut link = Link::new(false, 0.0);
        let actions = run(&mut link, 0.0, 200_000.0);
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(link.status(), Status::Unreachable(Unreachable::NeverOpened));
    }

    #[test]
    fn ice_failure_before_opening_renegotiates_at_once_and_names_the_reason() {
        let mut link = Link::new(true, 0.0);
        link.transport(Transport::Failed, 1_000.0);
        assert_eq!(link.tick(1_000.0), Some(Action::Renegotiate));
        for n in 0..UNREACHABLE_AFTER {
            link.transport(Transport::Failed, 1_000.0 + f64::from(n));
            link.renegotiated(1_000.0 + f64::from(n));
        }
        assert_eq!(link.status(), Status::Unreachable(Unreachable::IceFailed));
        assert!(Unreachable::IceFailed.describe().contains("TURN"));
    }

    #[test]
    fn an_exchanged_negotiation_that_never_connects_is_blamed_on_the_route() {
        let mut link = Link::new(true, 0.0);
        for n in 0..UNREACHABLE_AFTER {
            link.described();
            let at = 100_000.0 * f64::from(n + 1);
            assert_eq!(link.tick(at), Some(Action::Renegotiate));
            link.renegotiated(at);
        }
        assert_eq!(link.status(), Status::Unreachable(Unreachable::IceFailed));
        let mut answerer = Link::new(false, 0.0);
        answerer.described();
        run(&mut answerer, 0.0, 200_000.0);
        assert_eq!(
            answerer.status(),
            Status::Unreachable(Unreachable::IceFailed)
        );
    }

    #[test]
    fn a_disconnect_that_heals_costs_nothing() {
        let mut link = Link::new(true, 0.0);
        link.channel_opened(100.0);
        link.transport(Transport::Connected, 100.0);
        link.transport(Transport::Disconnected, 1_000.0);
        link.heard(1_500.0);
        assert_eq!(link.tick(1_500.0), None);
        link.transport(Transport::Connected, 2_000.0);
        let actions = run(&mut link, 2_000.0, 9_000.0);
        assert!(
            actions.iter().all(|(_, a)| *a == Action::Ping),
            "{actions:?}"
        );
    }

    #[test]
    fn a_lasting_disconnect_restarts_ice_then_negotiates_afresh() {
        let mut link = Link::new(true, 0.0);
        link.channel_opened(0.0);
        link.transport(Transport::Disconnected, 1_000.0);
        assert_eq!(link.status(), Status::Reconnecting);
        link.heard(1_000.0 + RESTART_GRACE_MS);
        assert_eq!(
            link.tick(1_000.0 + RESTART_GRACE_MS),
            Some(Action::RestartIce)
        );
        let restarted = 1_000.0 + RESTART_GRACE_MS;
        // Keep hearing pings so silence is not what decides.
        link.heard(restarted + RESTART_TIMEOUT_MS);
        assert_ne!(
            link.tick(restarted + RESTART_TIMEOUT_MS - 1.0),
            Some(Action::Renegotiate)
        );
        assert_eq!(
            link.tick(restarted + RESTART_TIMEOUT_MS + 1.0),
            Some(Action::Renegotiate)
        );
    }

    #[test]
    fn failed_restarts_ice_at_once_and_only_the_offerer_does() {
        let mut offerer = Link::new(true, 0.0);
        let mut answerer = Link::new(false, 0.0);
        for link in [&mut offerer, &mut answerer] {
            link.channel_opened(0.0);
            link.transport(Transport::Failed, 500.0);
        }
        assert_eq!(offerer.tick(600.0), Some(Action::RestartIce));
        assert_ne!(answerer.tick(600.0), Some(Action::RestartIce));
        assert_eq!(answerer.status(), Status::Reconnecting);
    }

    #[test]
    fn a_silent_peer_is_dropped_and_pings_keep_a_quiet_one() {
        let mut link = Link::new(false, 0.0);
        link.channel_opened(0.0);
        let actions = run(&mut link, 0.0, SILENCE_TIMEOUT_MS + 1_000.0);
        let pings = actions.iter().filter(|(_, a)| *a == Action::Ping).count();
        assert!(pings >= 4, "{actions:?}");
        assert_eq!(actions.last().map(|(_, a)| *a), Some(Action::Drop));
        let dropped_at = actions.last().unwrap().0;
        assert!(dropped_at > SILENCE_TIMEOUT_MS && dropped_at <= SILENCE_TIMEOUT_MS + 1_000.0);

        let mut heard = Link::new(false, 0.0);
        heard.channel_opened(0.0);
        let mut t = 0.0;
        while t < 60_000.0 {
            heard.heard(t);
            assert_ne!(heard.tick(t), Some(Action::Drop));
            t += PING_INTERVAL_MS;
        }
    }

    #[test]
    fn a_dead_peer_is_dropped_even_while_being_renegotiated() {
        let mut link = Link::new(true, 0.0);
        link.channel_opened(0.0);
        link.transport(Transport::Failed, 6_000.0);
        assert_eq!(link.tick(6_000.0), Some(Action::RestartIce));
        assert_eq!(
            link.tick(6_000.0 + RESTART_TIMEOUT_MS + 1.0),
            Some(Action::Renegotiate)
        );
        link.renegotiated(6_000.0 + RESTART_TIMEOUT_MS + 1.0);
        assert_eq!(link.status(), Status::Connecting);
        // The fresh connection does not open: the peer is dropped at the silence bound, not
        // kept "connecting" for ever.
        let actions = run(&mut link, 15_000.0, SILENCE_TIMEOUT_MS + 1_000.0);
        assert_eq!(
            actions.last().map(|(_, a)| *a),
            Some(Action::Drop),
            "{actions:?}"
        );
        // A peer never connected is not dropped for silence (the server says it is there).
        let mut never = Link::new(true, 0.0);
        let actions = run(&mut never, 0.0, 3.0 * SILENCE_TIMEOUT_MS);
        assert!(
            actions.iter().all(|(_, a)| *a == Action::Renegotiate),
            "{actions:?}"
        );
    }

    #[test]
    fn routes_come_from_the_candidate_types() {
        assert_eq!(Route::of_candidates("host", "host"), Route::Direct);
        assert_eq!(Route::of_candidates("srflx", "prflx"), Route::Direct);
        assert_eq!(Route::of_candidates("relay", "host"), Route::Relayed);
        assert_eq!(Route::of_candidates("host", "relay"), Route::Relayed);
    }

    #[test]
    fn fingerprints_tell_new_connections_from_restarts() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=fingerprint:sha-256 AB:CD:EF\r\na=setup:actpass\r\n";
        assert_eq!(sdp_fingerprint(sdp), Some("sha-256 AB:CD:EF"));
        assert_eq!(sdp_fingerprint("v=0\r\n"), None);
    }
}
