//! Browser tests: the client's modules in a real headless Chromium (`wasm-bindgen-test`).
//!
//! Run with `cargo test -p client --target wasm32-unknown-unknown` (the runner in
//! `.cargo/config.toml` drives Chromium through chromedriver). One binary with one module per
//! concept, so the wasm is linked once.

mod board;
mod export;
mod input;
mod mailbox;
mod mesh;
mod signing_cost;
mod storage;
mod support;
mod ui;
mod wire;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
