//! Who may see and do what: users with a role and a site scope, their Argon2id password
//! hashes, account lockout, sessions with an absolute and an idle expiry, and the
//! re-entered password of an electronic signature (21 CFR Part 11.200).
//!
//! **Architecture invariant:** this crate knows nothing of HTTP or of the twin. The web view
//! asks it two questions — who is this (a session token), and may they (a permission on a
//! site and line) — and answers the request itself.

mod roles;
mod sessions;
mod users;

pub use roles::{Meaning, Permission, Role, Scope};
pub use sessions::{Session, SessionError, SessionPolicy, Sessions};
pub use users::{LockoutPolicy, LoginError, NewUser, User, UserStore, UserUpdate};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("user `{0}` already exists")]
    Exists(String),
    #[error("no user `{0}`")]
    NoSuchUser(String),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("no random numbers from the operating system: {0}")]
    Random(String),
}

/// `n` bytes from the operating system's generator, hex: session tokens, CSRF tokens,
/// salts.
pub fn random_hex(n: usize) -> Result<String, AccessError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| AccessError::Random(e.to_string()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests;
