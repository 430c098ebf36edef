//! Connectors: where samples enter PharmaTwin and where they are kept.
//!
//! - [`opcua`] is a source: it subscribes to a site's OPC UA server and turns every data
//!   change into a [`model::Sample`], sent in batches over a bounded channel.
//! - [`pipeline`] moves those batches into a [`model::Historian`], coalescing and retrying.
//! - [`embedded`] is a sink: the default historian, a durable single-file store (redb).
//! - [`influx`] is a sink: InfluxDB (v1 or v2 write API, InfluxQL reads) behind a
//!   store-and-forward spool on local disk.
//! - [`webhook`] is a sink for notifications (alerts) rather than samples: JSON POSTed with
//!   retries.
//!
//! **Architecture invariant:** sources and sinks meet only through `Vec<Sample>` batches on a
//! channel; neither knows the other. The topology is wired by the `pharmatwin` binary.

pub mod embedded;
pub mod influx;
pub mod opcua;
pub mod pipeline;
pub mod webhook;

pub use embedded::{EmbeddedStore, StoreError, StoreStats};
pub use influx::{
    FullPolicy, InfluxApi, InfluxConfig, InfluxError, InfluxHistorian, InfluxStatus, TagCatalog,
};
pub use opcua::{
    read_value, rejected_certificates, trust_certificate, write_value, ConnectorError, GapRecord,
    OpcUaSource, SourceOptions, SourceStatus, SourceStatusSnapshot, StaleTag, TagError,
    ValuelessStatus,
};
pub use pipeline::{run_writer, WriterStats, WriterStatsSnapshot};
pub use webhook::{Webhook, WebhookError};
