//! The embedded historian: PharmaTwin's default store, one redb file on local disk.
//!
//! It exists so that the all-in-one deployment needs no database server, and so that the
//! connector has somewhere durable to put samples the moment they arrive. It implements
//! [`model::Historian`], the same interface the InfluxDB sink implements.

mod codec;
mod store;

#[cfg(test)]
mod tests;

pub use store::{EmbeddedStore, StoreError, StoreStats};
