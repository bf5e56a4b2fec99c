//! The Redis hub: any number of server processes pointed at one Redis act as one service.
//! A browser's stream may live on one process while its joins and relays land on others.
//!
//! Client: `redis` 1.x (redis-rs) with tokio, rather than `fred`: it is the most used Rust
//! client, its `ConnectionManager` reconnects by itself and, over RESP3, resubscribes its pub/sub
//! channels after a reconnect, and its `Script` runs Lua by SHA with a fallback to the source
//! (so a Redis restarted empty still runs them).
//!
//! Connections, per process, whatever the number of streams: one **subscriber** connection
//! (RESP3 push messages on the process's own channel, routed to local streams by a non-blocking
//! callback) and one multiplexed **command** connection shared by every request. Nothing is
//! opened, spawned or scheduled per stream.
//!
//! Layout (all keys under `drawmesh:`):
//! - `user:<peer>`: hash `proc` (the process holding the user's stream), `stream` (its id,
//!   `<proc>:<n>`), `user` (the `User` JSON); `user:<peer>:rooms`: set of room ids;
//!   `room:<room>`: set of peer ids; `proc:<proc>:users`: set of peers streaming there;
//!   `procs`: sorted set, process id scored by when its presence expires.
//! - Every event for a user is published on the channel `deliver:<proc>` of the process that
//!   holds its stream, as an envelope `{"to": peer, "event": name, "data": payload}`; control
//!   envelopes tell that process a room was joined elsewhere (`joined`) or that its stream
//!   moved to another process (`close`).
//!
//! Each operation is one Lua script, so it is atomic (no join can miss a concurrent join) and
//! costs one round trip; the scripts publish the events themselves, so one sender's events to
//! one receiver go out in order on one connection, and each exactly once.
//!
//! Liveness: every [`HEARTBEAT`] a process renews its score in `procs` to now + [`PRESENCE_TTL`]
//! (Redis's clock, so processes on different machines agree) and collects the processes whose
//! presence expired: the one whose `ZREM` wins removes their users from their rooms, which
//! sends `remove-peer` to the others. So a dead process's users are gone within
//! `PRESENCE_TTL + HEARTBEAT` (10 s). A user whose stream moved to another process is skipped
//! (its `proc` is no longer the dead one).
//!
//! Redis going away: requests that need it fail with [`HubError::Unavailable`] (503), streams
//! stay open (their keep-alives need no Redis), and health says not ready. When the heartbeat
//! finds this process missing from `procs` (Redis restarted empty, or others thought it dead),
//! it registers its users, their streams and their rooms again from what it holds locally.

use super::{Delivery, HubError, HubStats, Joined, lock, queue};
use dashmap::DashMap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Script, Value};
use serde::Deserialize;
use serde_json::value::RawValue;
use shared::protocol::{Connected, PeerId, RelayEvent, User, event};
use shared::room::RoomId;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// How often a process renews its presence (and looks for dead ones).
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a presence lasts without renewal.
pub const PRESENCE_TTL: Duration = Duration::from_secs(8);
/// A command that takes longer than this counts as Redis being unavailable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Every key shares the hash tag `{drawmesh}`: on a Redis Cluster they live in one slot, so each
/// script's keys are on one node (a script may not cross slots). The delivery channels are
/// hashed by process instead, so on a cluster they spread over the shards.
const PREFIX: &str = "{drawmesh}:";

fn user_key(peer: &str) -> String {
    format!("{PREFIX}user:{peer}")
}
fn rooms_key(peer: &str) -> String {
    format!("{PREFIX}user:{peer}:rooms")
}
fn room_key(room: &RoomId) -> String {
    format!("{PREFIX}room:{room}")
}
fn proc_users_key(process: &str) -> String {
    format!("{PREFIX}proc:{process}:users")
}
fn procs_key() -> String {
    format!("{PREFIX}procs")
}
/// The channel of process `process`: `drawmesh:deliver:{<process>}`.
fn channel(process: &str) -> String {
    format!("drawmesh:deliver:{{{process}}}")
}

/// Shared by every script: `emit(proc, envelope)` publishes an envelope to a process's channel
/// at once (`ARGV[1] == "publish"`, one Redis), or collects it for the caller to publish with
/// `SPUBLISH` (a cluster: a script may not publish to a shard channel in another slot).
/// Scripts return `{status, value, proc, envelope, proc, envelope, ...}`.
const PRELUDE: &str = r#"
local P = '{drawmesh}:'
local inline = ARGV[1] == 'publish'
local out = {}
local function emit(proc, msg)
  if inline then
    redis.call('PUBLISH', 'drawmesh:deliver:{' .. proc .. '}', msg)
  else
    table.insert(out, proc)
    table.insert(out, msg)
  end
end
local function done(status, value)
  local r = {status, value}
  for _, v in ipairs(out) do table.insert(r, v) end
  return r
end
"#;

/// Registers a stream: the user's record points at it; a stream on another process before it is
/// told to close. ARGV: mode, proc, stream, user JSON, peer.
const CONNECT: &str = r#"
local old = redis.call('HGET', KEYS[1], 'proc')
local oldstream = redis.call('HGET', KEYS[1], 'stream')
redis.call('HSET', KEYS[1], 'proc', ARGV[2], 'stream', ARGV[3], 'user', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[5])
if old and old ~= ARGV[2] then
  redis.call('SREM', P .. 'proc:' .. old .. ':users', ARGV[5])
  emit(old, '{"to":' .. cjson.encode(ARGV[5]) .. ',"close":' .. cjson.encode(oldstream) .. '}')
end
return done(1, 0)
"#;

/// Joins a room: status 0 when the user has no stream; 1 when already a member; 3 when the room
/// has the most members already, 4 when the user is in the most rooms already; otherwise 2, with
/// the number of members introduced (both ways). Members whose stream is gone are dropped first,
/// so they never fill a room. ARGV: mode, room, peer, most members, most rooms.
const JOIN: &str = r#"
local me = redis.call('HMGET', KEYS[1], 'proc', 'user')
if not me[1] then return done(0, 0) end
local room, peer = ARGV[2], ARGV[3]
if redis.call('SISMEMBER', KEYS[2], room) == 1 then return done(1, 0) end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[5]) then return done(4, 0) end
local live = {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if m ~= peer then
    local info = redis.call('HMGET', P .. 'user:' .. m, 'proc', 'user')
    if info[1] then
      table.insert(live, {m, info})
    else
      redis.call('SREM', KEYS[3], m)
    end
  end
end
if #live >= tonumber(ARGV[4]) then return done(3, 0) end
redis.call('SADD', KEYS[2], room)
emit(me[1], '{"to":' .. cjson.encode(peer) .. ',"joined":' .. cjson.encode(room) .. '}')
for _, member in ipairs(live) do
  local m, info = member[1], member[2]
  emit(info[1], '{"to":' .. cjson.encode(m) .. ',"event":"add-peer","data":{"peer":' .. me[2] ..
    ',"roomId":' .. cjson.encode(room) .. ',"offer":false}}')
  emit(me[1], '{"to":' .. cjson.encode(peer) .. ',"event":"add-peer","data":{"peer":' .. info[2] ..
    ',"roomId":' .. cjson.encode(room) .. ',"offer":true}}')
end
redis.call('SADD', KEYS[3], peer)
return done(2, #live)
"#;

/// Relays a body to a peer sharing a room with the sender: status 1 if sent, 0 if refused.
/// ARGV: mode, to, event, sender JSON, body.
const RELAY: &str = r#"
if redis.call('EXISTS', KEYS[4]) == 0 then return done(0, 0) end
if redis.call('SINTERCARD', 2, KEYS[1], KEYS[2], 'LIMIT', 1) == 0 then return done(0, 0) end
local proc = redis.call('HGET', KEYS[3], 'proc')
if not proc then return done(0, 0) end
emit(proc, '{"to":' .. cjson.encode(ARGV[2]) .. ',"event":' .. cjson.encode(ARGV[3]) ..
  ',"data":{"peer":' .. ARGV[4] .. ',"data":' .. ARGV[5] .. '}}')
return done(1, 0)
"#;

/// A user leaves every room, if its record still names this stream (ARGV[4] = "stream") or
/// this process (ARGV[4] = "proc", a dead process's cleanup); the others get `remove-peer`.
/// ARGV: mode, peer, stream or proc, kind.
const LEAVE: &str = r#"
local cur = redis.call('HMGET', KEYS[1], 'stream', 'proc', 'user')
if ARGV[4] == 'stream' and cur[1] ~= ARGV[3] then return done(0, 0) end
if ARGV[4] == 'proc' and cur[2] ~= ARGV[3] then return done(0, 0) end
local peer = ARGV[2]
for _, r in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local rk = P .. 'room:' .. r
  redis.call('SREM', rk, peer)
  local bye = '{"peer":' .. cur[3] .. ',"roomId":' .. cjson.encode(r) .. '}'
  for _, m in ipairs(redis.call('SMEMBERS', rk)) do
    local p = redis.call('HGET', P .. 'user:' .. m, 'proc')
    if p then
      emit(p, '{"to":' .. cjson.encode(m) .. ',"event":"remove-peer","data":' .. bye .. '}')
    end
  end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', P .. 'proc:' .. cur[2] .. ':users', peer)
return done(1, 0)
"#;

/// Renews this process's presence (by Redis's clock) and lists the processes whose presence
/// expired: {1 if this process was missing, dead...}. ARGV: proc, ttl in ms.
const HEARTBEAT_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local out = {added}
for _, p in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  table.insert(out, p)
end
return out
"#;

/// What arrives on a process's channel.
#[derive(Deserialize)]
struct Envelope<'a> {
    to: PeerId,
    #[serde(default)]
    event: Option<&'a str>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    /// The room the user joined, through whichever process took the join.
    #[serde(default)]
    joined: Option<RoomId>,
    /// The user's stream moved to another process: close the local one with this id.
    #[serde(default)]
    close: Option<String>,
}

/// A stream this process holds.
struct LocalStream {
    user: User,
    /// `<proc>:<n>`: which stream this is, across every process.
    stream: String,
    n: u64,
    tx: super::queue::Sender,
    /// Its rooms, mirrored here so that they can be registered again after Redis lost them.
    rooms: Mutex<HashSet<RoomId>>,
}

struct Scripts {
    connect: Script,
    join: Script,
    relay: Script,
    leave: Script,
    heartbeat: Script,
}

/// A connection to Redis: one server (a `ConnectionManager`, which reconnects by itself), or a
/// Redis Cluster (a cluster connection: one multiplexed connection per node, rerouted on
/// resharding). Both resubscribe their channels after a reconnect.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    async fn script<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> redis::RedisResult<T> {
        match self {
            Conn::Single(c) => invocation.invoke_async(&mut c.clone()).await,
            Conn::Cluster(c) => invocation.invoke_async(&mut c.clone()).await,
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        match self {
            Conn::Single(c) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        }
    }

    async fn pipeline(&self, pipe: &redis::Pipeline) -> redis::RedisResult<()> {
        match self {
            Conn::Single(c) => pipe.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => pipe.query_async(&mut c.clone()).await,
        }
    }

    async fn subscribe(&self, channel: String) -> redis::RedisResult<()> {
        match self {
            Conn::Single(c) => c.clone().subscribe(channel).await,
            // Sharded pub/sub: the channel lives on the shard that owns its slot.
            Conn::Cluster(c) => c.clone().ssubscribe(channel).await,
        }
    }
}

/// The Redis backend of one process.
pub struct RedisHub {
    process: String,
    commands: Conn,
    /// Held for its pushes; pinged by the heartbeat so a broken one reconnects (and resubscribes).
    subscriber: Conn,
    streams: DashMap<PeerId, Arc<LocalStream>>,
    next_stream: AtomicU64,
    queue: usize,
    /// Leaves of closed streams, done by a task (they need I/O; `Drop` must not).
    leaves: mpsc::UnboundedSender<(PeerId, String)>,
    /// Leaves that failed (Redis away), retried after each good heartbeat: a leave lost for
    /// good would leave a ghost member that later joiners get introduced to.
    failed_leaves: Mutex<Vec<(PeerId, String)>>,
    available: AtomicBool,
    scripts: Scripts,
    errors: prometheus::IntCounter,
    rtt: prometheus::Histogram,
}

/// A push handler that reaches the hub once it exists (the connections are made first).
type Router = Arc<Mutex<Weak<RedisHub>>>;

fn push_sender(
    router: &Router,
) -> impl Fn(PushInfo) -> Result<(), redis::aio::SendError> + Send + Sync + 'static {
    let router = router.clone();
    move |push: PushInfo| {
        if let Some(hub) = lock(&router).upgrade() {
            hub.on_push(push);
        }
        Ok(())
    }
}

impl RedisHub {
    /// Connects to Redis at `url` (with `cluster`, a comma-separated list of cluster nodes) and
    /// starts this process's heartbeat and leave tasks, which end when the hub is dropped.
    pub async fn connect(
        url: &str,
        cluster: bool,
        queue: usize,
        metrics: &crate::metrics::Metrics,
    ) -> Result<Arc<RedisHub>, String> {
        let process = uuid::Uuid::new_v4().simple().to_string();
        let router: Router = Arc::new(Mutex::new(Weak::new()));
        let unreachable = |e: redis::RedisError| format!("cannot reach Redis at {url}: {e}");
        let (commands, subscriber) = if cluster {
            let nodes: Vec<&str> = url.split(',').map(str::trim).collect();
            let builder = || {
                ClusterClientBuilder::new(nodes.clone())
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .connection_timeout(COMMAND_TIMEOUT)
                    .response_timeout(COMMAND_TIMEOUT)
            };
            let commands = builder()
                .build()
                .map_err(|e| format!("bad Redis Cluster URLs: {e}"))?;
            let subscriber = builder()
                .push_sender(push_sender(&router))
                .build()
                .map_err(|e| format!("bad Redis Cluster URLs: {e}"))?;
            (
                Conn::Cluster(commands.get_async_connection().await.map_err(unreachable)?),
                Conn::Cluster(
                    subscriber
                        .get_async_connection()
                        .await
                        .map_err(unreachable)?,
                ),
            )
        } else {
            let client = redis::Client::open(url).map_err(|e| format!("bad Redis URL: {e}"))?;
            let settings = client
                .get_connection_info()
                .redis_settings()
                .clone()
                .set_protocol(redis::ProtocolVersion::RESP3);
            let resp3 = redis::Client::open(
                client
                    .get_connection_info()
                    .clone()
                    .set_redis_settings(settings),
            )
            .map_err(|e| format!("bad Redis URL: {e}"))?;
            let config = || {
                ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(COMMAND_TIMEOUT))
                    .set_response_timeout(Some(COMMAND_TIMEOUT))
                    .set_max_delay(Duration::from_secs(2))
            };
            let commands = resp3
                .get_connection_manager_with_config(config())
                .await
                .map_err(unreachable)?;
            let subscriber = resp3
                .get_connection_manager_with_config(
                    config()
                        .set_automatic_resubscription()
                        .set_push_sender(push_sender(&router)),
                )
                .await
                .map_err(unreachable)?;
            (Conn::Single(commands), Conn::Single(subscriber))
        };
        let (leaves, leave_rx) = mpsc::unbounded_channel();
        let op = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        let hub = Arc::new(RedisHub {
            process,
            commands,
            subscriber,
            streams: DashMap::new(),
            next_stream: AtomicU64::new(1),
            queue: queue.max(1),
            leaves,
            failed_leaves: Mutex::new(Vec::new()),
            available: AtomicBool::new(true),
            errors: metrics.redis_errors.clone(),
            rtt: metrics.redis_rtt.clone(),
            scripts: Scripts {
                connect: op(CONNECT),
                join: op(JOIN),
                relay: op(RELAY),
                leave: op(LEAVE),
                heartbeat: Script::new(HEARTBEAT_SCRIPT),
            },
        });
        *lock(&router) = Arc::downgrade(&hub);
        hub.subscriber
            .subscribe(channel(&hub.process))
            .await
            .map_err(|e| format!("cannot subscribe on Redis: {e}"))?;
        hub.heartbeat().await;
        tokio::spawn(heartbeat_loop(Arc::downgrade(&hub)));
        tokio::spawn(leave_loop(Arc::downgrade(&hub), leave_rx));
        tracing::info!(
            process = %hub.process,
            cluster,
            "hub: Redis backend, one process of many"
        );
        Ok(hub)
    }

    /// Whether Redis answered the last heartbeat (and this process is registered there).
    pub fn is_available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    /// How scripts deliver: publish from inside (one Redis), or return the envelopes for
    /// `SPUBLISH` (a cluster).
    fn mode(&self) -> &'static str {
        match self.commands {
            Conn::Single(_) => "publish",
            Conn::Cluster(_) => "return",
        }
    }

    /// Runs a script, noting when Redis is not there.
    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, HubError> {
        let _timer = self.rtt.start_timer();
        // Only the heartbeat says Redis is back: it registers this process's users again
        // first, so "available" means that what this process holds is in Redis too.
        match self.commands.script(invocation).await {
            Ok(value) => Ok(value),
            Err(e) => {
                self.errors.inc();
                self.set_available(false);
                tracing::warn!(error = %e, "Redis command failed");
                Err(HubError::Unavailable(format!("Redis: {e}")))
            }
        }
    }

    /// Runs one of the operation scripts (see [`PRELUDE`]) and publishes the envelopes it
    /// returned, in order (on a cluster). Returns its status and value.
    async fn op(&self, invocation: &redis::ScriptInvocation<'_>) -> Result<(i64, i64), HubError> {
        let reply: Vec<Value> = self.run(invocation).await?;
        let int = |v: Option<&Value>| match v {
            Some(Value::Int(n)) => *n,
            _ => 0,
        };
        let (status, value) = (int(reply.first()), int(reply.get(1)));
        let envelopes = reply.get(2..).unwrap_or_default();
        // A cluster pipeline may not cross slots: one pipeline per process channel, each in
        // the order the script emitted (what one receiver gets stays in order), sent together.
        let mut pipes: Vec<(Vec<u8>, redis::Pipeline)> = Vec::new();
        for pair in envelopes.chunks(2) {
            let [Value::BulkString(proc), Value::BulkString(msg)] = pair else {
                continue;
            };
            let at = match pipes.iter().position(|(p, _)| p == proc) {
                Some(at) => at,
                None => {
                    pipes.push((proc.clone(), redis::pipe()));
                    pipes.len() - 1
                }
            };
            pipes[at]
                .1
                .cmd("SPUBLISH")
                .arg(channel(&String::from_utf8_lossy(proc)))
                .arg(msg.as_slice())
                .ignore();
        }
        let sent = futures_util::future::join_all(
            pipes.iter().map(|(_, pipe)| self.commands.pipeline(pipe)),
        )
        .await;
        if let Some(Err(e)) = sent.into_iter().find(Result::is_err) {
            self.errors.inc();
            tracing::warn!(error = %e, "Redis publish failed");
            return Err(HubError::Unavailable(format!("Redis: {e}")));
        }
        Ok((status, value))
    }

    fn set_available(&self, up: bool) {
        let was = self.available.swap(up, Ordering::Relaxed);
        if was != up {
            if up {
                tracing::info!("Redis is back");
            } else {
                tracing::warn!("Redis is unreachable: requests that need it get 503");
            }
        }
    }

    /// Opens a stream for the user on this process.
    pub async fn connect_user(
        &self,
        user: User,
    ) -> Result<(super::queue::Receiver, u64), HubError> {
        let (tx, rx) = super::queue::bounded(self.queue);
        let n = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let stream = format!("{}:{n}", self.process);
        let user_json =
            serde_json::to_string(&user).map_err(|_| HubError::Unavailable("encoding".into()))?;
        // A reconnect to this same process keeps the rooms the old stream had.
        let rooms = self
            .streams
            .get(&user.id)
            .map(|old| lock(&old.rooms).clone())
            .unwrap_or_default();
        let local = Arc::new(LocalStream {
            user: user.clone(),
            stream: stream.clone(),
            n,
            tx,
            rooms: Mutex::new(rooms),
        });
        // Registered locally first: events published for it may arrive before the script returns.
        self.streams.insert(user.id.clone(), local.clone());
        let registered = self
            .op(self
                .scripts
                .connect
                .key(user_key(&user.id.0))
                .key(proc_users_key(&self.process))
                .arg(self.mode())
                .arg(&self.process)
                .arg(&stream)
                .arg(&user_json)
                .arg(&user.id.0))
            .await;
        if let Err(e) = registered {
            self.streams.remove_if(&user.id, |_, s| s.n == n);
            return Err(e);
        }
        let connected = Delivery::json(event::CONNECTED, &Connected { user });
        let _ = local.tx.try_send(connected);
        Ok((rx, n))
    }

    /// See [`Hub::join`](super::Hub::join).
    pub async fn join(
        &self,
        user: &User,
        room: &RoomId,
        limits: super::RoomLimits,
    ) -> Result<Joined, HubError> {
        let (status, members) = self
            .op(self
                .scripts
                .join
                .key(user_key(&user.id.0))
                .key(rooms_key(&user.id.0))
                .key(room_key(room))
                .arg(self.mode())
                .arg(room.to_string())
                .arg(&user.id.0)
                .arg(limits.peers_per_room)
                .arg(limits.rooms_per_peer))
            .await?;
        match status {
            0 => Err(HubError::NotConnected),
            2 => Ok(Joined::New {
                members: usize::try_from(members).unwrap_or(0),
            }),
            3 => Err(HubError::RoomFull(limits.peers_per_room)),
            4 => Err(HubError::TooManyRooms(limits.rooms_per_peer)),
            _ => Ok(Joined::Already),
        }
    }

    /// See [`Hub::relay`](super::Hub::relay).
    pub async fn relay(
        &self,
        from: &User,
        to: &PeerId,
        event: RelayEvent,
        body: &RawValue,
    ) -> Result<(), HubError> {
        let sender = serde_json::to_string(from).map_err(|_| HubError::NotInSharedRoom)?;
        let (published, _) = self
            .op(self
                .scripts
                .relay
                .key(rooms_key(&from.id.0))
                .key(rooms_key(&to.0))
                .key(user_key(&to.0))
                .key(user_key(&from.id.0))
                .arg(self.mode())
                .arg(&to.0)
                .arg(event.name())
                .arg(sender)
                .arg(body.get()))
            .await?;
        if published == 1 {
            Ok(())
        } else {
            Err(HubError::NotInSharedRoom)
        }
    }

    /// Streams and rooms as this process sees them (its own streams; rooms they are in).
    pub fn stats(&self) -> HubStats {
        let mut rooms = HashSet::new();
        for s in self.streams.iter() {
            rooms.extend(lock(&s.rooms).iter().cloned());
        }
        HubStats {
            streams: self.streams.len(),
            rooms: rooms.len(),
        }
    }

    /// A stream ended: forget it here at once, and hand the leave (I/O) to the leave task.
    pub fn stream_closed(&self, peer: &PeerId, n: u64) {
        if let Some((_, stream)) = self.streams.remove_if(peer, |_, s| s.n == n) {
            let _ = self.leaves.send((peer.clone(), stream.stream.clone()));
            super::shrink_when_sparse(&self.streams);
        }
    }

    /// A push from the subscriber connection: an envelope for one of our streams.
    fn on_push(&self, push: PushInfo) {
        match push.kind {
            PushKind::Message | PushKind::SMessage => {}
            PushKind::Disconnection => {
                tracing::warn!("Redis subscriber disconnected; it reconnects and resubscribes");
                return;
            }
            PushKind::Subscribe | PushKind::SSubscribe => {
                tracing::info!(channel = %channel(&self.process), "subscribed to this process's channel");
                return;
            }
            _ => return,
        }
        let Some(Value::BulkString(payload)) = push.data.get(1) else {
            return;
        };
        let envelope: Envelope = match serde_json::from_slice(payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable envelope dropped");
                return;
            }
        };
        let Some(stream) = self.streams.get(&envelope.to).map(|s| Arc::clone(&s)) else {
            return;
        };
        if let Some(room) = envelope.joined {
            lock(&stream.rooms).insert(room);
            return;
        }
        if let Some(closed) = envelope.close {
            // The user's stream moved to another process: end ours (without a leave).
            if closed == stream.stream {
                self.streams.remove_if(&envelope.to, |_, s| s.n == stream.n);
            }
            return;
        }
        let (Some(name), Some(data)) = (envelope.event, envelope.data) else {
            return;
        };
        let Some(name) = known_event(name) else {
            return;
        };
        let delivery = Delivery {
            event: name,
            data: data.get().into(),
        };
        if !queue(&stream.tx, delivery) {
            tracing::warn!(peer = %stream.user.id, "stream queue full: closing the slow stream");
            self.stream_closed(&stream.user.id, stream.n);
        }
    }

    /// Renews presence; registers everything again if Redis had lost this process; removes
    /// the users of processes that died.
    async fn heartbeat(&self) {
        // Keeps the subscriber connection honest: a broken one reconnects on this.
        if let Err(e) = self.subscriber.query::<Value>(&redis::cmd("PING")).await {
            tracing::debug!(error = %e, "subscriber ping failed");
            self.set_available(false);
            return;
        }
        let ttl_ms = PRESENCE_TTL.as_millis().to_string();
        let beat: Result<Vec<Value>, _> = self
            .run(
                self.scripts
                    .heartbeat
                    .key(procs_key())
                    .arg(&self.process)
                    .arg(ttl_ms),
            )
            .await;
        let Ok(beat) = beat else {
            return;
        };
        let retry = std::mem::take(&mut *lock(&self.failed_leaves));
        for (peer, stream) in retry {
            self.leave(peer, stream).await;
        }
        let missing = matches!(beat.first(), Some(Value::Int(1)));
        if missing && !self.streams.is_empty() {
            tracing::warn!(
                streams = self.streams.len(),
                "Redis had lost this process: registering its users again"
            );
            if !self.register_again().await {
                return;
            }
        }
        self.set_available(true);
        for dead in beat.iter().skip(1) {
            let Value::BulkString(dead) = dead else {
                continue;
            };
            let dead = String::from_utf8_lossy(dead).into_owned();
            if dead != self.process {
                self.bury(&dead).await;
            }
        }
    }

    /// Puts this process's users, streams and rooms back into Redis; false if Redis failed.
    async fn register_again(&self) -> bool {
        let streams: Vec<Arc<LocalStream>> = self.streams.iter().map(|s| Arc::clone(&s)).collect();
        for s in streams {
            let Ok(user_json) = serde_json::to_string(&s.user) else {
                continue;
            };
            let rooms: Vec<RoomId> = lock(&s.rooms).iter().cloned().collect();
            let mut pipe = redis::pipe();
            pipe.atomic()
                .hset_multiple(
                    user_key(&s.user.id.0),
                    &[
                        ("proc", self.process.as_str()),
                        ("stream", &s.stream),
                        ("user", &user_json),
                    ],
                )
                .ignore()
                .sadd(proc_users_key(&self.process), &s.user.id.0)
                .ignore();
            for room in &rooms {
                pipe.sadd(rooms_key(&s.user.id.0), room.to_string())
                    .ignore()
                    .sadd(room_key(room), &s.user.id.0)
                    .ignore();
            }
            if let Err(e) = self.commands.pipeline(&pipe).await {
                tracing::warn!(error = %e, "could not register a user again");
                return false;
            }
        }
        true
    }

    /// The user leaves its rooms if `stream` is still its current stream; kept for a retry if
    /// Redis is away.
    async fn leave(&self, peer: PeerId, stream: String) {
        let done = self
            .op(self
                .scripts
                .leave
                .key(user_key(&peer.0))
                .key(rooms_key(&peer.0))
                .arg(self.mode())
                .arg(&peer.0)
                .arg(&stream)
                .arg("stream"))
            .await;
        if done.is_err() {
            lock(&self.failed_leaves).push((peer, stream));
        }
    }

    /// A process died: if this process wins the right to (its `ZREM`), its users leave.
    async fn bury(&self, dead: &str) {
        let won: i64 = match self
            .commands
            .query(redis::cmd("ZREM").arg(procs_key()).arg(dead))
            .await
        {
            Ok(n) => n,
            Err(_) => return,
        };
        if won != 1 {
            return;
        }
        let users: Vec<String> = self
            .commands
            .query(redis::cmd("SMEMBERS").arg(proc_users_key(dead)))
            .await
            .unwrap_or_default();
        tracing::warn!(
            process = dead,
            users = users.len(),
            "a server process died: its users leave their rooms"
        );
        for peer in users {
            let _ = self
                .op(self
                    .scripts
                    .leave
                    .key(user_key(&peer))
                    .key(rooms_key(&peer))
                    .arg(self.mode())
                    .arg(&peer)
                    .arg(dead)
                    .arg("proc"))
                .await;
        }
        let _: Result<(), _> = self
            .commands
            .query(redis::cmd("DEL").arg(proc_users_key(dead)))
            .await;
    }
}

/// The event names an envelope may carry, as the `'static` names deliveries use.
fn known_event(name: &str) -> Option<&'static str> {
    [
        event::ADD_PEER,
        event::REMOVE_PEER,
        RelayEvent::SessionDescription.name(),
        RelayEvent::IceCandidate.name(),
    ]
    .into_iter()
    .find(|known| *known == name)
}

async fn heartbeat_loop(hub: Weak<RedisHub>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        hub.heartbeat().await;
    }
}

async fn leave_loop(hub: Weak<RedisHub>, mut leaves: mpsc::UnboundedReceiver<(PeerId, String)>) {
    while let Some((peer, stream)) = leaves.recv().await {
        let Some(hub) = hub.upgrade() else {
            return;
        };
        hub.leave(peer, stream).await;
    }
}
