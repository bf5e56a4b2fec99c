//! Certificates of browsers' signing keys: `/access` certifies the key a browser names for the
//! peer id it issues, with the key `/config` publishes; processes sharing a secret agree on it.

mod common;

use common::TestServer;
use serde_json::{Value, json};
use server::AppState;
use server::config::Config;
use shared::signing::{Certificate, Keypair, PublicKey};

async fn cert_key(server: &TestServer) -> PublicKey {
    let config: Value = server
        .http
        .get(server.url("/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    serde_json::from_value(config["certKey"].clone()).expect("/config names the certificate key")
}

#[tokio::test]
async fn access_certifies_the_named_key_for_the_issued_peer_id() {
    let server = TestServer::start().await;
    let server_key = cert_key(&server).await;
    let key = Keypair::from_seed([7; 32]).public();
    let res = server
        .http
        .post(server.url("/access"))
        .json(&json!({"username": "alice", "key": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let cert: Certificate = serde_json::from_value(body["certificate"].clone()).unwrap();
    assert_eq!(cert.peer.0, body["user"]["id"].as_str().unwrap());
    assert_eq!(cert.key, key);
    assert!(cert.is_signed_by_one_of(&[server_key]));
    let other = Keypair::derive(b"drawmesh certificate key", b"another secret").public();
    assert!(!cert.is_signed_by_one_of(&[other]));

    // The tutorial's client names no key and gets no certificate, nothing else changes.
    let body: Value = server
        .http
        .post(server.url("/access"))
        .json(&json!({"username": "bob"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("certificate").is_none());
    assert!(body["token"].is_string());
}

#[tokio::test]
async fn a_malformed_key_is_a_clear_400() {
    let server = TestServer::start().await;
    for key in [json!("zz"), json!(42), json!("ab".repeat(33))] {
        let res = server
            .http
            .post(server.url("/access"))
            .json(&json!({"username": "alice", "key": key}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{key}");
        let body: Value = res.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("key")
                || body["error"].as_str().unwrap().contains("type"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn processes_sharing_a_secret_certify_with_one_key() {
    let with = |secret: &str| {
        let mut config = Config::for_tests();
        config.token_secret = Some(secret.into());
        config
    };
    let a = AppState::new(&with("s1")).await.unwrap();
    let b = AppState::new(&with("s1")).await.unwrap();
    let c = AppState::new(&with("s2")).await.unwrap();
    assert_eq!(a.certifier.public(), b.certifier.public());
    assert_ne!(a.certifier.public(), c.certifier.public());
    assert_eq!(a.client_config.cert_key, Some(a.certifier.public()));
}

/// A fresh path in the temp directory (the file itself not made).
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "drawmesh-certs-{}-{name}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    dir.join("state").join("cert-key")
}

#[tokio::test]
async fn without_a_secret_the_key_is_kept_in_a_file_and_survives_a_restart() {
    let file = scratch("restart");
    let config = || {
        let mut config = Config::for_tests();
        config.token_secret = None;
        config.cert_key_file = Some(file.clone());
        config
    };
    let first = AppState::new(&config()).await.unwrap();
    assert!(file.exists(), "made on first start");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "readable by its owner only: {mode:o}");
    }
    let restarted = AppState::new(&config()).await.unwrap();
    assert_eq!(first.certifier.public(), restarted.certifier.public());
    let elsewhere = {
        let mut c = config();
        c.cert_key_file = Some(scratch("other"));
        AppState::new(&c).await.unwrap()
    };
    assert_ne!(first.certifier.public(), elsewhere.certifier.public());

    // A file that holds no key is not replaced (that would orphan its certificates): refused.
    std::fs::write(&file, "not a key").unwrap();
    let err = AppState::new(&config()).await.err().expect("refused");
    assert!(err.contains("certificate key file"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a key");
    let _ = std::fs::remove_dir_all(file.parent().unwrap().parent().unwrap());
}
