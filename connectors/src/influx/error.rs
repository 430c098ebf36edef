//! The InfluxDB historian's errors.

use std::path::PathBuf;

use model::HistorianError;

use super::line_protocol::PointError;

#[derive(Debug, thiserror::Error)]
pub enum InfluxError {
    #[error("InfluxDB historian setting {key}: {reason}")]
    Config { key: String, reason: String },
    #[error("environment variable {var} (named in the InfluxDB settings) is not set")]
    MissingSecret { var: String },
    #[error("cannot create spool folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open spool database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<redb::DatabaseError>,
    },
    #[error("spool database {path}: {source}")]
    Spool {
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("spool database {path} holds an unreadable {what}: {source}")]
    Corrupt {
        path: PathBuf,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "spool database {path} has format version {found}; this build reads version {expected}"
    )]
    Version {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    /// The spool holds `max_bytes` already; with the `block` policy nothing more is
    /// acknowledged until the forwarder has drained some. A gap record was written.
    #[error(
        "spool full ({spooled_bytes} of {max_bytes} bytes): {samples} samples not acknowledged; \
         InfluxDB is unreachable or slower than the input"
    )]
    SpoolFull {
        samples: usize,
        spooled_bytes: u64,
        max_bytes: u64,
    },
    #[error("spool task did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("request to {url} failed: {message}")]
    Transport { url: String, message: String },
    #[error("InfluxDB answered {status} to {what}: {body}")]
    Status {
        what: &'static str,
        status: u16,
        body: String,
    },
    #[error("InfluxDB query failed: {0}")]
    Query(String),
    #[error("unreadable InfluxDB answer: {0}")]
    Decode(String),
    #[error(transparent)]
    Point(#[from] PointError),
    #[error("gave up waiting: {0}")]
    Timeout(String),
}

impl InfluxError {
    pub(crate) fn spool<E: Into<redb::Error>>(path: &std::path::Path, e: E) -> Self {
        InfluxError::Spool {
            path: path.to_path_buf(),
            source: Box::new(e.into()),
        }
    }
}

/// Maps redb errors to [`InfluxError::Spool`] naming the file.
pub(crate) trait AtPath<T> {
    fn at(self, path: &std::path::Path) -> Result<T, InfluxError>;
}

impl<T, E: Into<redb::Error>> AtPath<T> for Result<T, E> {
    fn at(self, path: &std::path::Path) -> Result<T, InfluxError> {
        self.map_err(|e| InfluxError::spool(path, e))
    }
}

impl InfluxError {
    pub(crate) fn into_write(self, count: usize) -> HistorianError {
        HistorianError::Write {
            count,
            source: Box::new(self),
        }
    }

    pub(crate) fn into_read(self) -> HistorianError {
        HistorianError::Read {
            source: Box::new(self),
        }
    }
}
