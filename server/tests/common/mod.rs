//! Test harness: the real server on a port-0 listener, spoken to over real HTTP and SSE.

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod redis;

use futures_util::StreamExt;
use serde_json::{Value, json};
use server::AppState;
use server::config::Config;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long to wait for an event that should come.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait before concluding an event did not come.
pub const QUIET: Duration = Duration::from_millis(300);

pub struct TestServer {
    pub base: String,
    pub state: AppState,
    pub http: reqwest::Client,
    /// With `DRAWMESH_TEST_HUB=redis`, the Redis this server's hub runs on.
    _redis: Option<redis::RedisServer>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(Config::for_tests()).await
    }

    /// The server with `config`; with `DRAWMESH_TEST_HUB=redis` in the environment, on the
    /// Redis hub (a `redis-server` of its own), so the whole suite runs on both backends.
    pub async fn start_with(mut config: Config) -> TestServer {
        let redis = (std::env::var("DRAWMESH_TEST_HUB").as_deref() == Ok("redis")).then(|| {
            let redis = redis::RedisServer::start();
            config.redis_url = Some(redis.url());
            config
                .token_secret
                .get_or_insert_with(|| "test-secret".into());
            redis
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AppState::new(&config)
            .await
            .expect("a valid test configuration");
        tokio::spawn(server::serve(listener, state.clone()));
        // A fresh connection per request: a stream's connection then starts with `/connect`,
        // as a browser's usually does, and takes the dedicated path (`server::streams`);
        // `tests/streams.rs` covers `/connect` on a connection used before.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        TestServer {
            base: format!("http://{addr}"),
            state,
            http,
            _redis: redis,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /access`, returning the token and the user's id.
    pub async fn access(&self, username: &str) -> (String, String) {
        let res = self
            .http
            .post(self.url("/access"))
            .json(&json!({"username": username}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        (
            body["token"].as_str().unwrap().to_owned(),
            body["user"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// A user with an open stream whose `connected` event has been read.
    pub async fn user(&self, username: &str) -> Client {
        let (token, id) = self.access(username).await;
        let mut events = self.connect(&token).await;
        let connected = events.next().await;
        assert_eq!(connected.event, "connected");
        assert_eq!(connected.data["user"]["id"], id.as_str());
        Client {
            token,
            id,
            username: username.to_owned(),
            events,
        }
    }

    /// Users "a" and "b" in `room`, introduced to each other, their `add-peer` events read.
    pub async fn pair_in(&self, room: &str) -> (Client, Client) {
        let mut a = self.user("a").await;
        let mut b = self.user("b").await;
        assert_eq!(self.join(&a, room).await.status(), 200);
        assert_eq!(self.join(&b, room).await.status(), 200);
        assert_eq!(a.events.next().await.event, "add-peer");
        assert_eq!(b.events.next().await.event, "add-peer");
        (a, b)
    }

    pub async fn connect(&self, token: &str) -> Events {
        let res = self
            .http
            .get(self.url(&format!("/connect?token={token}")))
            .header("Accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Events::new(res)
    }

    pub async fn join(&self, client: &Client, room: &str) -> reqwest::Response {
        self.join_with_token(&client.token, room).await
    }

    /// `POST /<room>/join` with `token` (a user whose stream is opened some other way, or none).
    pub async fn join_with_token(&self, token: &str, room: &str) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/{room}/join")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn relay(
        &self,
        from: &Client,
        to: &str,
        event: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/relay/{to}/{event}")))
            .bearer_auth(&from.token)
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

pub struct Client {
    pub token: String,
    pub id: String,
    pub username: String,
    pub events: Events,
}

#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: Value,
}

/// A minimal SSE reader over a streaming response: enough of the format for our server's events.
pub struct Events {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl Events {
    pub fn new(res: reqwest::Response) -> Events {
        Events {
            body: res.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped); panics after [`EVENT_TIMEOUT`].
    pub async fn next(&mut self) -> SseEvent {
        self.next_within(EVENT_TIMEOUT)
            .await
            .expect("expected an event")
    }

    /// The next event within `wait`, or None if the stream was quiet (or ended).
    pub async fn next_within(&mut self, wait: Duration) -> Option<SseEvent> {
        tokio::time::timeout(wait, self.read_event())
            .await
            .ok()
            .flatten()
    }

    /// True when the server ends the stream within `wait`.
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        matches!(
            tokio::time::timeout(wait, self.read_event()).await,
            Ok(None)
        )
    }

    async fn read_event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let data = serde_json::from_str(&data).expect("event data is JSON");
                return Some(SseEvent { id, event, data });
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }
}
