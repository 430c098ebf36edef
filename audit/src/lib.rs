//! The audit trail: an append-only, hash-chained record of who did what and when —
//! acknowledgements, work orders, maintenance actions, configuration changes, logins.
//!
//! One JSON record per line. Each record carries the SHA-256 of the previous record's line
//! and its own hash over its content and that link, so changing, removing or reordering any
//! byte of a stored record breaks the chain at that record, and [`verify`] names it
//! (21 CFR Part 11.10(e), EU GMP Annex 11 §9). A record is on disk (fsync) before the action
//! it records is acknowledged to the user.

use std::{
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The link of the first record.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: record {line} is broken: {reason}")]
    Broken {
        path: PathBuf,
        /// 1-based line of the first broken record.
        line: usize,
        reason: String,
    },
    #[error("an audit record needs a user")]
    NoUser,
}

/// What happened, as the caller describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub user: String,
    /// What was done: `alert.acknowledge`, `workorder.close`, `maintenance.record`, …
    pub action: String,
    /// What it was done to: an alert id, a unit path, a configuration key.
    pub target: String,
    /// Anything else worth keeping: comment, old and new value, reason, meaning.
    #[serde(default)]
    pub details: serde_json::Value,
}

/// An entry as stored: numbered, timed and chained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub entry: Entry,
    /// Hash of the previous record (all zeros for the first).
    pub prev: String,
    /// SHA-256 over this record without `hash`, hex.
    pub hash: String,
}

impl Record {
    fn digest(&self) -> String {
        let mut unhashed = self.clone();
        unhashed.hash = String::new();
        let bytes = serde_json::to_vec(&unhashed).unwrap_or_default();
        hex(&Sha256::digest(&bytes))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The trail, open for appending.
#[derive(Debug)]
pub struct AuditTrail {
    path: PathBuf,
    state: Mutex<Tail>,
}

#[derive(Debug)]
struct Tail {
    file: File,
    seq: u64,
    last: String,
}

impl AuditTrail {
    /// Opens (creating) the trail after verifying what it holds: appending to a broken
    /// chain would hide the break.
    pub fn open(path: &Path) -> Result<AuditTrail, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let records = verify(path)?;
        let (seq, last) = records
            .last()
            .map_or((0, GENESIS.to_string()), |r| (r.seq, r.hash.clone()));
        Ok(AuditTrail {
            path: path.to_path_buf(),
            state: Mutex::new(Tail { file, seq, last }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an entry, durably; returns the stored record.
    pub fn append(&self, entry: Entry) -> Result<Record, AuditError> {
        if entry.user.trim().is_empty() {
            return Err(AuditError::NoUser);
        }
        let mut tail = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut record = Record {
            seq: tail.seq + 1,
            at: Utc::now(),
            entry,
            prev: tail.last.clone(),
            hash: String::new(),
        };
        record.hash = record.digest();
        let mut line = serde_json::to_vec(&record).unwrap_or_default();
        line.push(b'\n');
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        tail.file.write_all(&line).map_err(io)?;
        tail.file.sync_data().map_err(io)?;
        tail.seq = record.seq;
        tail.last.clone_from(&record.hash);
        Ok(record)
    }

    /// Every record, oldest first (verified).
    pub fn records(&self) -> Result<Vec<Record>, AuditError> {
        let _held = self.state.lock().unwrap_or_else(|e| e.into_inner());
        verify(&self.path)
    }
}

/// Reads the trail and checks every link; returns the records, or names the first broken
/// one.
pub fn verify(path: &Path) -> Result<Vec<Record>, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    let broken = |line: usize, reason: String| AuditError::Broken {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut out: Vec<Record> = Vec::new();
    let mut prev = GENESIS.to_string();
    // Lines as bytes: a byte that is not UTF-8 is a broken record, not an I/O error.
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let n = i + 1;
        let line = line.map_err(io)?;
        let text = std::str::from_utf8(&line).map_err(|e| broken(n, e.to_string()))?;
        let r: Record =
            serde_json::from_str(text).map_err(|e| broken(n, format!("not a record: {e}")))?;
        if r.seq != out.len() as u64 + 1 {
            return Err(broken(
                n,
                format!("sequence {} where {} was due", r.seq, out.len() + 1),
            ));
        }
        if r.prev != prev {
            return Err(broken(n, "does not link to the record before it".into()));
        }
        if r.digest() != r.hash {
            return Err(broken(n, "content does not match its hash".into()));
        }
        // The stored line must be exactly what was hashed: extra spaces or reordered keys
        // are changes too.
        if serde_json::to_vec(&r).ok().as_deref() != Some(&line[..]) {
            return Err(broken(n, "stored bytes differ from the record".into()));
        }
        prev.clone_from(&r.hash);
        out.push(r);
    }
    Ok(out)
}

/// The trail as CSV for an inspector: one row per record.
pub fn to_csv(records: &[Record]) -> String {
    let field = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = String::from("seq,time_utc,user,action,target,details,hash\n");
    for r in records {
        out.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            r.seq,
            r.at.to_rfc3339(),
            field(&r.entry.user),
            field(&r.entry.action),
            field(&r.entry.target),
            field(&r.entry.details.to_string()),
            r.hash
        ));
    }
    out
}

/// The trail as a self-contained HTML report (printable to PDF from any browser).
pub fn to_html(records: &[Record], title: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let rows: String = records
        .iter()
        .map(|r| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}…</code></td></tr>\n",
                r.seq,
                r.at.format("%Y-%m-%d %H:%M:%S UTC"),
                esc(&r.entry.user),
                esc(&r.entry.action),
                esc(&r.entry.target),
                esc(&r.entry.details.to_string()),
                &r.hash[..16.min(r.hash.len())]
            )
        })
        .collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font:12px sans-serif}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:2px 6px;text-align:left;vertical-align:top}}</style></head><body><h1>{t}</h1><p>{n} records, chain verified; generated {g}.</p><table><tr><th>#</th><th>Time</th><th>User</th><th>Action</th><th>Target</th><th>Details</th><th>Hash</th></tr>\n{rows}</table></body></html>\n",
        t = esc(title),
        n = records.len(),
        g = Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
    )
}

#[cfg(test)]
mod tests;
