//! [`SourceOptions`]: how the OPC UA source subscribes, with defaults that work for a few
//! thousand signals per site.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::error::ConnectorError;

/// Tuning of the OPC UA source. Every field has a default; a site file or the command line
/// overrides what it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceOptions {
    /// How often the server sends the changes it collected.
    pub publishing_interval_ms: u64,
    /// How often the server samples each node.
    pub sampling_interval_ms: u64,
    /// Values the server keeps per node between two publishes; with sampling faster than
    /// publishing, a queue of 1 would hide every change but the last.
    pub queue_size: u32,
    /// Upper bound asked of the server per notification message. Keeps each publish
    /// response well under the server's message size limit (≈ 327 KB for async-opcua).
    pub max_notifications_per_publish: u32,
    /// Most samples sent downstream in one batch.
    pub max_batch_samples: usize,
    /// How often tags whose monitored item could not be created are tried again (nodes may
    /// appear on the server later, e.g. after it restarted with a new address space).
    pub retry_failed_tags_ms: u64,
    /// First and longest wait between connection attempts.
    pub reconnect_initial_ms: u64,
    pub reconnect_max_ms: u64,
    /// Timeout of each service call (read, create monitored items, …).
    pub request_timeout_ms: u64,
    /// Client decoding limits. async-opcua's default `max_array_length` of 1,000 makes a
    /// publish response with more notifications undecodable, and the client then receives
    /// nothing without logging anything; these defaults are far above any site's size.
    pub max_array_length: usize,
    pub max_message_size: usize,
    pub max_chunk_count: usize,
    /// A tag watched with trigger `status_value_timestamp` (its server reports every fresh
    /// sample) is flagged stale after this many publishing intervals without an update while
    /// the session is alive (0: only tags with their own `stale_after_ms`).
    pub stale_after_intervals: u32,
    /// Where gap records are appended (JSON lines, synced); none: kept in the status only.
    pub gap_log: Option<PathBuf>,
    /// Where the client keeps its certificates. Defaults to a folder in the system's temp
    /// directory, so that the client does not create `./pki` wherever it was started.
    pub pki_dir: Option<PathBuf>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            publishing_interval_ms: 500,
            sampling_interval_ms: 250,
            queue_size: 10,
            max_notifications_per_publish: 2_000,
            max_batch_samples: 5_000,
            retry_failed_tags_ms: 30_000,
            reconnect_initial_ms: 500,
            reconnect_max_ms: 30_000,
            request_timeout_ms: 10_000,
            max_array_length: 1_000_000,
            max_message_size: 64 * 1024 * 1024,
            max_chunk_count: 4_096,
            stale_after_intervals: 20,
            gap_log: None,
            pki_dir: None,
        }
    }
}

impl SourceOptions {
    /// Checks the options, naming the first one that cannot work.
    pub fn validate(&self) -> Result<(), ConnectorError> {
        let bad = |key: &'static str, message: &str| {
            Err(ConnectorError::Options {
                key,
                message: message.to_string(),
            })
        };
        if self.publishing_interval_ms == 0 {
            return bad("publishing_interval_ms", "must be at least 1");
        }
        if self.queue_size == 0 {
            return bad("queue_size", "must be at least 1");
        }
        if self.max_batch_samples == 0 {
            return bad("max_batch_samples", "must be at least 1");
        }
        if self.retry_failed_tags_ms == 0 {
            return bad("retry_failed_tags_ms", "must be at least 1");
        }
        if self.reconnect_initial_ms == 0 || self.reconnect_max_ms < self.reconnect_initial_ms {
            return bad(
                "reconnect_max_ms",
                "reconnect_initial_ms must be at least 1 and reconnect_max_ms at least as long",
            );
        }
        if self.request_timeout_ms == 0 {
            return bad("request_timeout_ms", "must be at least 1");
        }
        if self.max_array_length < 10_000 {
            return bad(
                "max_array_length",
                "below 10,000 a large publish response is silently undecodable",
            );
        }
        if self.max_message_size < 1024 * 1024 {
            return bad("max_message_size", "must be at least 1 MiB");
        }
        if self.max_chunk_count == 0 {
            return bad("max_chunk_count", "must be at least 1");
        }
        Ok(())
    }

    pub(crate) fn publishing_interval(&self) -> Duration {
        Duration::from_millis(self.publishing_interval_ms)
    }
    pub(crate) fn retry_failed_tags(&self) -> Duration {
        Duration::from_millis(self.retry_failed_tags_ms)
    }
    pub(crate) fn reconnect_initial(&self) -> Duration {
        Duration::from_millis(self.reconnect_initial_ms)
    }
    pub(crate) fn reconnect_max(&self) -> Duration {
        Duration::from_millis(self.reconnect_max_ms)
    }
    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    pub(crate) fn pki_dir(&self) -> PathBuf {
        self.pki_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("pharmatwin-opcua-pki"))
    }
}
