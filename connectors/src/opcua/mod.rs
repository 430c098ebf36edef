//! The OPC UA source: subscribes to a site's server and emits [`model::Sample`] batches.
//!
//! - [`OpcUaSource`] runs the subscription side (see `source.rs` for its life cycle);
//! - [`SourceStatus`] is what it reports, per tag included, for the web API;
//! - [`read_value`] / [`write_value`] are one-shot calls for the command line and tests;
//! - [`browse`] walks a server's address space (the tree a site file is written from).
//!
//! Nodes are addressed by namespace URI ([`model::NodeAddress`]); the index is looked up on
//! every new session, since a restarted server may number its namespaces differently.

mod browse;
mod client;
mod config;
mod continuity;
mod convert;
mod error;
mod notifications;
mod pki;
mod placement;
mod source;
mod status;

#[cfg(test)]
mod tests;

pub use browse::{
    browse, AddressTree, BrowseRequest, BrowsedNode, Expansion, NodeKind, VariableInfo,
    OPC_UA_NAMESPACE,
};
pub use client::{read_value, write_value};
pub use config::SourceOptions;
pub use continuity::GapRecord;
pub use error::ConnectorError;
pub use pki::{rejected_certificates, trust_certificate};
pub use source::OpcUaSource;
pub use status::{SourceStatus, SourceStatusSnapshot, StaleTag, TagError, ValuelessStatus};
