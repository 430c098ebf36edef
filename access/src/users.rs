//! The user file: accounts with their role, scope and Argon2id hash, and the lockout state
//! that must survive a restart (else restarting the server would reset an attack's count).

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Mutex,
};

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::{random_hex, AccessError, Role, Scope};

/// Shorter passwords are refused when a user is created or changes theirs.
const MIN_PASSWORD: usize = 10;

/// A user as the rest of the system sees them: no hash, no counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    /// The printed name of a signature.
    pub full_name: String,
    pub role: Role,
    pub scope: Scope,
    #[serde(default)]
    pub disabled: bool,
    /// While locked, the right password is refused too.
    #[serde(default)]
    pub locked_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    user: User,
    password_hash: String,
    /// Consecutive wrong passwords since the last success or lock.
    #[serde(default)]
    failures: u32,
    created: DateTime<Utc>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    users: Vec<Stored>,
}

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Wrong passwords in a row that lock the account.
    pub attempts: u32,
    pub lock_for: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            attempts: 5,
            lock_for: Duration::minutes(30),
        }
    }
}

/// Why a password was not accepted. `Display` never says whether the user exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("wrong user name or password")]
    Wrong {
        /// This failure locked the account.
        locked_now: bool,
        /// The user exists (kept for the audit trail, never shown to the client).
        known: bool,
    },
    #[error("account locked until {until}")]
    Locked { until: DateTime<Utc> },
    #[error("account disabled")]
    Disabled,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub full_name: String,
    pub role: Role,
    pub scope: Scope,
    pub password: String,
}

/// A change an administrator makes; `None` leaves the field as it is.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserUpdate {
    pub full_name: Option<String>,
    pub role: Option<Role>,
    pub scope: Option<Scope>,
    pub disabled: Option<bool>,
    /// Clears a lock and the failure count.
    #[serde(default)]
    pub unlock: bool,
    pub password: Option<String>,
}

#[derive(Debug)]
pub struct UserStore {
    path: PathBuf,
    users: Mutex<Vec<Stored>>,
    policy: LockoutPolicy,
}

impl UserStore {
    /// Opens the user file, or starts an empty one (written on the first change).
    pub fn open(path: &Path, policy: LockoutPolicy) -> Result<UserStore, AccessError> {
        let users = match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice::<File>(&bytes)
                    .map_err(|source| AccessError::Parse {
                        path: path.to_path_buf(),
                        source,
                    })?
                    .users
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(AccessError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(UserStore {
            path: path.to_path_buf(),
            users: Mutex::new(users),
            policy,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub fn list(&self) -> Vec<User> {
        self.lock().iter().map(|s| s.user.clone()).collect()
    }

    pub fn get(&self, name: &str) -> Option<User> {
        self.lock()
            .iter()
            .find(|s| s.user.name == name)
            .map(|s| s.user.clone())
    }

    /// Adds a user (hashing their password: slow by design, call it off the async threads).
    pub fn create(&self, new: NewUser, now: DateTime<Utc>) -> Result<User, AccessError> {
        validate_name(&new.name)?;
        validate_scope(&new.scope)?;
        check_password(&new.password)?;
        if self.get(&new.name).is_some() {
            return Err(AccessError::Exists(new.name));
        }
        let password_hash = hash(&new.password)?;
        let user = User {
            name: new.name,
            full_name: if new.full_name.trim().is_empty() {
                return Err(AccessError::Invalid {
                    field: "full_name",
                    reason: "a signature needs the printed name".into(),
                });
            } else {
                new.full_name
            },
            role: new.role,
            scope: new.scope,
            disabled: false,
            locked_until: None,
        };
        let mut users = self.lock();
        if users.iter().any(|s| s.user.name == user.name) {
            return Err(AccessError::Exists(user.name));
        }
        users.push(Stored {
            user: user.clone(),
            password_hash,
            failures: 0,
            created: now,
        });
        self.save(&users)?;
        Ok(user)
    }

    /// Applies an administrator's change; returns the user before and after.
    pub fn update(&self, name: &str, change: UserUpdate) -> Result<(User, User), AccessError> {
        if let Some(scope) = &change.scope {
            validate_scope(scope)?;
        }
        let new_hash = match &change.password {
            Some(p) => {
                check_password(p)?;
                Some(hash(p)?)
            }
            None => None,
        };
        let mut users = self.lock();
        let stored = users
            .iter_mut()
            .find(|s| s.user.name == name)
            .ok_or_else(|| AccessError::NoSuchUser(name.into()))?;
        let before = stored.user.clone();
        if let Some(f) = change.full_name {
            stored.user.full_name = f;
        }
        if let Some(r) = change.role {
            stored.user.role = r;
        }
        if let Some(s) = change.scope {
            stored.user.scope = s;
        }
        if let Some(d) = change.disabled {
            stored.user.disabled = d;
        }
        if change.unlock {
            stored.user.locked_until = None;
            stored.failures = 0;
        }
        if let Some(h) = new_hash {
            stored.password_hash = h;
        }
        let after = stored.user.clone();
        self.save(&users)?;
        Ok((before, after))
    }

    /// Checks a password: a login, or the re-entered password of a signature. Wrong
    /// passwords count towards the lock either way. Slow by design (Argon2id); call it off
    /// the async threads.
    pub fn verify(
        &self,
        name: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<User, LoginError> {
        let found = self
            .lock()
            .iter()
            .find(|s| s.user.name == name)
            .map(|s| (s.user.clone(), s.password_hash.clone()));
        let Some((user, stored_hash)) = found else {
            // Spend the same time as for a real user: the answer's timing must not tell
            // which names exist.
            let _ = verify_hash(password, &dummy_hash());
            return Err(LoginError::Wrong {
                locked_now: false,
                known: false,
            });
        };
        if let Some(until) = user.locked_until.filter(|u| *u > now) {
            // No hashing while locked: a flood of guesses costs the server nothing.
            return Err(LoginError::Locked { until });
        }
        if user.disabled {
            return Err(LoginError::Disabled);
        }
        let ok = verify_hash(password, &stored_hash);
        let mut users = self.lock();
        let Some(stored) = users.iter_mut().find(|s| s.user.name == name) else {
            return Err(LoginError::Wrong {
                locked_now: false,
                known: false,
            });
        };
        // Locked while this guess was being hashed (by guesses running beside it): it is
        // answered as locked, right or wrong, and not counted.
        if let Some(until) = stored.user.locked_until.filter(|u| *u > now) {
            return Err(LoginError::Locked { until });
        }
        if ok {
            let changed = stored.failures != 0 || stored.user.locked_until.is_some();
            stored.failures = 0;
            stored.user.locked_until = None;
            let user = stored.user.clone();
            if changed {
                // The login succeeds even if the reset is not written: it only matters
                // for the next failure, which writes again.
                let _ = self.save(&users);
            }
            return Ok(user);
        }
        stored.failures += 1;
        let locked_now = stored.failures >= self.policy.attempts;
        if locked_now {
            stored.user.locked_until = Some(now + self.policy.lock_for);
            stored.failures = 0;
        }
        let _ = self.save(&users);
        Err(LoginError::Wrong {
            locked_now,
            known: true,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Stored>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the whole file beside itself and renames it over: a crash leaves the old file
    /// or the new one, never half of one. Only the owner may read it.
    fn save(&self, users: &[Stored]) -> Result<(), AccessError> {
        let io = |source| AccessError::Io {
            path: self.path.clone(),
            source,
        };
        let doc = File {
            users: users.to_vec(),
        };
        let bytes = serde_json::to_vec_pretty(&doc).map_err(|source| AccessError::Parse {
            path: self.path.clone(),
            source,
        })?;
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

fn validate_name(name: &str) -> Result<(), AccessError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(AccessError::Invalid {
            field: "name",
            reason: "1 to 64 of a-z, A-Z, 0-9, `.`, `-`, `_`".into(),
        })
    }
}

fn validate_scope(scope: &Scope) -> Result<(), AccessError> {
    if scope.sites.is_empty() {
        return Err(AccessError::Invalid {
            field: "scope.sites",
            reason: "at least one site (or `*`)".into(),
        });
    }
    if let Some(bad) = scope.lines.iter().find(|l| {
        l.split_once('/')
            .is_none_or(|(s, l)| s.is_empty() || l.is_empty())
    }) {
        return Err(AccessError::Invalid {
            field: "scope.lines",
            reason: format!("`{bad}` is not `site/line`"),
        });
    }
    Ok(())
}

fn check_password(p: &str) -> Result<(), AccessError> {
    if p.chars().count() < MIN_PASSWORD {
        return Err(AccessError::Invalid {
            field: "password",
            reason: format!("at least {MIN_PASSWORD} characters"),
        });
    }
    Ok(())
}

fn hash(password: &str) -> Result<String, AccessError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AccessError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccessError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccessError::Hash(e.to_string()))
}

fn verify_hash(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash of a random password, made once: what an unknown user's guess is checked against.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let pw = random_hex(16).unwrap_or_else(|_| "unguessable-placeholder".into());
            hash(&pw).unwrap_or_default()
        })
        .clone()
}
