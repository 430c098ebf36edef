//! How an [`super::InfluxHistorian`] is set up. Serializable, so it can live in a TOML file
//! and be logged: it holds the NAMES of environment variables with the secrets, never the
//! secrets themselves.

use std::{fmt, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::InfluxError;

/// Everything the InfluxDB historian needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    /// Base URL of the server, e.g. `http://127.0.0.1:8086`.
    pub url: String,
    /// Which write API, and its database or bucket.
    pub api: InfluxApi,
    pub spool: SpoolConfig,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub retry: RetryConfig,
    #[serde(default)]
    pub read: ReadConfig,
    /// Whole-request timeout for writes and queries.
    #[serde(default = "default_request_timeout", with = "duration_text")]
    pub request_timeout: Duration,
}

/// The write API: v1 (`/write`, InfluxDB 1.x) or v2 (`/api/v2/write` through `influxdb2`,
/// for InfluxDB 2.x, 3.x and Cloud). Both read with InfluxQL over `/query`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "version", rename_all = "lowercase", deny_unknown_fields)]
pub enum InfluxApi {
    V1 {
        database: String,
        #[serde(default)]
        retention_policy: Option<String>,
        #[serde(default)]
        username: Option<String>,
        /// Name of the environment variable holding the password (with `username`).
        #[serde(default)]
        password_env: Option<String>,
        /// Issue `CREATE DATABASE` (idempotent) when the forwarder first connects.
        #[serde(default)]
        create_database: bool,
    },
    V2 {
        org: String,
        bucket: String,
        /// Name of the environment variable holding the API token.
        token_env: String,
        /// Database name for InfluxQL reads (`/query?db=`): the bucket's DBRP mapping on
        /// 2.x, the database on 3.x. Defaults to the bucket name.
        #[serde(default)]
        query_database: Option<String>,
    },
}

// Written by hand so that a future field holding anything secret cannot slip into logs by
// a derive: only names of variables are shown.
impl fmt::Debug for InfluxApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InfluxApi::V1 {
                database,
                retention_policy,
                username,
                password_env,
                create_database,
            } => f
                .debug_struct("V1")
                .field("database", database)
                .field("retention_policy", retention_policy)
                .field("username", username)
                .field("password_env", password_env)
                .field("create_database", create_database)
                .finish(),
            InfluxApi::V2 {
                org,
                bucket,
                token_env,
                query_database,
            } => f
                .debug_struct("V2")
                .field("org", org)
                .field("bucket", bucket)
                .field("token_env", token_env)
                .field("query_database", query_database)
                .finish(),
        }
    }
}

/// The on-disk store-and-forward spool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// Folder of the spool database (`spool.redb`).
    pub dir: PathBuf,
    /// Most bytes of spooled line protocol (plus 16 bytes of key per sample). The file on
    /// disk can be larger: redb reuses freed pages but does not shrink.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Fill fraction above which the alert flag is raised and a warning logged.
    #[serde(default = "default_warn_fraction")]
    pub warn_fraction: f64,
    /// What a write does when the spool is full.
    #[serde(default)]
    pub when_full: FullPolicy,
    /// How long a write waits for room (with `block`) before it fails with `SpoolFull`.
    #[serde(default = "default_block_timeout", with = "duration_text")]
    pub block_timeout: Duration,
    /// Memory for the spool database's page cache. redb's own default (1 GiB) would keep
    /// most of a full spool resident while it replays; the spool is read front to back once,
    /// so the operating system's file cache serves it as well.
    #[serde(default = "default_cache_bytes")]
    pub cache_bytes: usize,
}

/// What happens when the spool is full. Either way a gap record is written to the spool
/// database, so nothing is lost without a trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FullPolicy {
    /// Stop acknowledging: `write` waits up to `block_timeout`, then returns `SpoolFull`
    /// and the caller keeps the batch (the pipeline's writer retries, its channel fills
    /// and the source slows down). The gap record says which tags and times were refused.
    #[default]
    Block,
    /// Delete the oldest spooled samples to make room; the gap record says which.
    DropOldest,
}

/// When the forwarder sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Most samples in one live request; a request goes out as soon as this many wait.
    pub max_lines: usize,
    /// Most samples in one request while a backlog drains (after an outage or a restart):
    /// bigger requests are what lets the replay outrun live ingest.
    pub replay_max_lines: usize,
    /// Most uncompressed bytes in one request.
    pub max_bytes: usize,
    /// A smaller batch goes out once its oldest sample has waited this long.
    #[serde(with = "duration_text")]
    pub max_age: Duration,
    /// gzip level (0–9) of request bodies; 1 is fast and already shrinks line protocol ~10×.
    pub gzip_level: u32,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_lines: 5_000,
            replay_max_lines: 50_000,
            max_bytes: 16 * 1024 * 1024,
            max_age: Duration::from_millis(500),
            gzip_level: 1,
        }
    }
}

/// Backoff of failed requests: doubling from `first` up to `max`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    #[serde(with = "duration_text")]
    pub first: Duration,
    #[serde(with = "duration_text")]
    pub max: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            first: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

/// How `read_since` tails InfluxDB (see [`super::InfluxHistorian`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadConfig {
    /// Each read looks this far behind its cursor again, to catch late points.
    #[serde(with = "duration_text")]
    pub overlap: Duration,
    /// Where a reader starting at `Cursor(0)` begins: this long before now. `None` reads
    /// from the beginning of time.
    #[serde(with = "opt_duration_text")]
    pub initial_lookback: Option<Duration>,
    /// Rows per InfluxQL request when a `query` pages through a long range.
    pub page_rows: usize,
}

impl Default for ReadConfig {
    fn default() -> Self {
        ReadConfig {
            overlap: Duration::from_secs(5),
            initial_lookback: Some(Duration::from_secs(3600)),
            page_rows: 10_000,
        }
    }
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_bytes() -> u64 {
    1024 * 1024 * 1024
}
fn default_warn_fraction() -> f64 {
    0.8
}
fn default_block_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_cache_bytes() -> usize {
    32 * 1024 * 1024
}

impl InfluxConfig {
    /// InfluxDB 1.x through the v1 API, defaults elsewhere.
    pub fn v1(url: impl Into<String>, database: impl Into<String>, spool_dir: PathBuf) -> Self {
        Self::with_api(
            url,
            InfluxApi::V1 {
                database: database.into(),
                retention_policy: None,
                username: None,
                password_env: None,
                create_database: false,
            },
            spool_dir,
        )
    }

    /// InfluxDB 2.x/3.x/Cloud through the v2 API; the token is read from `token_env`.
    pub fn v2(
        url: impl Into<String>,
        org: impl Into<String>,
        bucket: impl Into<String>,
        token_env: impl Into<String>,
        spool_dir: PathBuf,
    ) -> Self {
        Self::with_api(
            url,
            InfluxApi::V2 {
                org: org.into(),
                bucket: bucket.into(),
                token_env: token_env.into(),
                query_database: None,
            },
            spool_dir,
        )
    }

    fn with_api(url: impl Into<String>, api: InfluxApi, spool_dir: PathBuf) -> Self {
        InfluxConfig {
            url: url.into(),
            api,
            spool: SpoolConfig {
                dir: spool_dir,
                max_bytes: default_max_bytes(),
                warn_fraction: default_warn_fraction(),
                when_full: FullPolicy::default(),
                block_timeout: default_block_timeout(),
                cache_bytes: default_cache_bytes(),
            },
            batch: BatchConfig::default(),
            retry: RetryConfig::default(),
            read: ReadConfig::default(),
            request_timeout: default_request_timeout(),
        }
    }

    /// Rejects settings that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), InfluxError> {
        let bad = |key: &str, why: &str| {
            Err(InfluxError::Config {
                key: key.to_string(),
                reason: why.to_string(),
            })
        };
        match reqwest::Url::parse(&self.url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            Ok(_) => return bad("url", "must be an http:// or https:// URL"),
            Err(e) => return bad("url", &e.to_string()),
        }
        match &self.api {
            InfluxApi::V1 { database, .. } if database.is_empty() => {
                return bad("api.database", "must not be empty")
            }
            InfluxApi::V2 { org, bucket, .. } if org.is_empty() || bucket.is_empty() => {
                return bad("api.org / api.bucket", "must not be empty")
            }
            _ => {}
        }
        if self.spool.max_bytes == 0 {
            return bad("spool.max_bytes", "must be above 0");
        }
        if self.spool.cache_bytes < 1024 * 1024 {
            return bad("spool.cache_bytes", "must be at least 1 MiB");
        }
        if !(self.spool.warn_fraction > 0.0 && self.spool.warn_fraction <= 1.0) {
            return bad("spool.warn_fraction", "must be in (0, 1]");
        }
        if self.batch.max_lines == 0 || self.batch.replay_max_lines < self.batch.max_lines {
            return bad(
                "batch.max_lines / batch.replay_max_lines",
                "need 0 < max_lines <= replay_max_lines",
            );
        }
        if self.batch.gzip_level > 9 {
            return bad("batch.gzip_level", "must be 0..=9");
        }
        if self.retry.first.is_zero() || self.retry.max < self.retry.first {
            return bad("retry.first / retry.max", "need 0 < first <= max");
        }
        if self.read.overlap.is_zero() {
            return bad(
                "read.overlap",
                "must be above 0 (points at the cursor's own time are read again)",
            );
        }
        if self.read.page_rows == 0 {
            return bad("read.page_rows", "must be above 0");
        }
        Ok(())
    }
}

/// Durations as text (`"250ms"`, `"5s"`, `"2m"`, `"1h"`) or a number of milliseconds.
pub(crate) mod duration_text {
    use std::time::Duration;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", d.as_millis()))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Millis(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Millis(ms) => Ok(Duration::from_millis(ms)),
            Raw::Text(t) => parse(&t).ok_or_else(|| {
                D::Error::custom(format!(
                    "bad duration {t:?}: use e.g. \"250ms\", \"5s\", \"2m\", \"1h\""
                ))
            }),
        }
    }

    pub(crate) fn parse(t: &str) -> Option<Duration> {
        let t = t.trim();
        let split = t.find(|c: char| !c.is_ascii_digit())?;
        let (n, unit) = t.split_at(split);
        let n: u64 = n.parse().ok()?;
        let ms = match unit.trim() {
            "ms" => n,
            "s" => n.checked_mul(1_000)?,
            "m" => n.checked_mul(60_000)?,
            "h" => n.checked_mul(3_600_000)?,
            _ => return None,
        };
        Some(Duration::from_millis(ms))
    }
}

pub(crate) mod opt_duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration_text::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::duration_text")] Duration);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_text_or_millis() {
        assert_eq!(
            duration_text::parse("250ms"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(duration_text::parse("2m"), Some(Duration::from_secs(120)));
        assert_eq!(duration_text::parse("5 s"), Some(Duration::from_secs(5)));
        assert_eq!(duration_text::parse("5x"), None);
        let json = r#"{"url":"http://127.0.0.1:8086","api":{"version":"v1","database":"plant"},
            "spool":{"dir":"/tmp/s","block_timeout":"1s"},"request_timeout":1500}"#;
        let c: InfluxConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.spool.block_timeout, Duration::from_secs(1));
        assert_eq!(c.request_timeout, Duration::from_millis(1500));
        assert_eq!(c.batch, BatchConfig::default());
        c.validate().unwrap();
    }

    #[test]
    fn validation_names_the_bad_key() {
        let mut c = InfluxConfig::v1("ftp://x", "db", "/tmp/s".into());
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("url"), "{e}");
        c.url = "http://127.0.0.1:1".into();
        c.spool.warn_fraction = 1.5;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("spool.warn_fraction"), "{e}");
    }

    #[test]
    fn debug_shows_variable_names_not_secrets() {
        std::env::set_var("PHARMATWIN_TEST_TOKEN_DEBUG", "s3cr3t-token");
        let c = InfluxConfig::v2(
            "http://127.0.0.1:1",
            "org",
            "bucket",
            "PHARMATWIN_TEST_TOKEN_DEBUG",
            "/tmp/s".into(),
        );
        let text = format!("{c:?}");
        assert!(text.contains("PHARMATWIN_TEST_TOKEN_DEBUG"));
        assert!(!text.contains("s3cr3t"));
    }
}
