//! The key this service certifies browsers' signing keys with (see `shared::signing`): `/access`
//! binds the peer id it issues to the key the browser names, and `/config` publishes the public
//! half so every peer can check a certificate itself.
//!
//! A certificate must stay checkable as long as the ops it vouches for live (for ever: late
//! joiners receive the work of people long gone), so the key must outlive the process. With
//! `TOKEN_SECRET` it is derived from the secret: every process sharing it, and every restart,
//! certifies with the same key. Without, it is made once and kept in a file
//! (`--cert-key-file`), so that a restarted server does not orphan every drawing made before.

use shared::signing::{Keypair, from_hex};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Domain of the key derived from the token secret (never the token key itself).
const PURPOSE: &[u8] = b"drawmesh certificate key";

/// The certificate key: derived from `secret` when there is one, otherwise kept in `file`
/// (created on first use, readable by its owner only). A file that exists but does not hold a
/// key is an error: replacing it would orphan every certificate it made.
pub fn certifier(secret: Option<&[u8]>, file: &Path) -> Result<Keypair, String> {
    if let Some(secret) = secret {
        return Ok(Keypair::derive(PURPOSE, secret));
    }
    let seed = load_or_create(file).map_err(|err| {
        format!(
            "the certificate key file {} could not be used ({err}); give another with \
             --cert-key-file, or set TOKEN_SECRET",
            file.display()
        )
    })?;
    Ok(Keypair::from_seed(seed))
}

fn load_or_create(file: &Path) -> io::Result<[u8; 32]> {
    match fs::read_to_string(file) {
        Ok(text) => from_hex::<32>(text.trim())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a key")),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir)?;
            }
            let seed: [u8; 32] = rand::random();
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(file) {
                Ok(mut out) => {
                    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
                    out.write_all(hex.as_bytes())?;
                    out.sync_all()?;
                    tracing::info!("made a certificate key in {}", file.display());
                    Ok(seed)
                }
                // Another process made it meanwhile: use that one.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => load_or_create(file),
                Err(err) => Err(err),
            }
        }
        Err(err) => Err(err),
    }
}

/// Where the key file goes by default: `$XDG_STATE_HOME/drawmesh/cert-key`, else
/// `~/.local/state/drawmesh/cert-key`, else `drawmesh-cert-key` here.
pub fn default_file() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".local/state"))
        });
    match state {
        Some(dir) => dir.join("drawmesh").join("cert-key"),
        None => PathBuf::from("drawmesh-cert-key"),
    }
}
