//! `drawmesh-server`: see `--help`.

use clap::Parser;
use server::AppState;
use server::config::Config;
use std::process::ExitCode;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // A .env file is optional; a real environment variable wins over it.
    let _ = dotenvy::dotenv();
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    server::raise_open_file_limit();
    let state = match AppState::new(&config).await {
        Ok(state) => state,
        Err(why) => {
            eprintln!("drawmesh-server: {why}");
            return ExitCode::from(2);
        }
    };
    let listener = match listen(std::net::SocketAddr::new(config.bind, config.port)) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, bind = %config.bind, port = config.port, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "no local address");
            return ExitCode::FAILURE;
        }
    };
    if !config.dist.join("index.html").exists() {
        tracing::warn!(dist = %config.dist.display(), "no index.html in dist: build the client (scripts/run.sh does)");
    }
    // Scripts and tests read this line to find the port.
    let shown = if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    };
    println!("Drawmesh listening on http://{shown}/");
    // Bound beyond loopback, say where others can open it: a room link only works for them with
    // an address they can reach.
    for url in server::share_urls(addr) {
        println!("Share rooms with others at {url}");
    }

    // On Ctrl-C / SIGTERM: stop accepting, end every stream (browsers reconnect, to another
    // process when there is one), and exit once connections are gone or the drain is over.
    match server::listener::serve_until(listener, state, shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// A listener with a deep accept queue: a crowd reconnecting at once (after a restart, say) waits
/// in it rather than in SYN retries (1 s, then 3 s) behind the usual 128 (the kernel still caps
/// it at `net.core.somaxconn`).
fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
