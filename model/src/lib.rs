//! The plant model and the one event that flows through PharmaTwin.
//!
//! Everything else builds on these types: the simulator serves the plant model, the
//! connectors turn OPC UA notifications into [`Sample`]s, a [`Historian`] keeps them and the
//! twin core reads them back. This crate does no I/O except reading plant files.

pub mod historian;
pub mod load;
pub mod plant;
pub mod sample;

pub use historian::{Cursor, Historian, HistorianError};
pub use load::{load_site_file, load_site_text, ConfigError};
pub use plant::{
    Area, Category, Climate, Costs, DataType, Deadband, Equipment, Line, Monitoring, NodeAddress,
    NodeIdentifier, Range, Security, SecurityMode, SecurityPolicy, Signal, Site, Trigger,
    UserIdentity,
};
pub use sample::{Quality, Sample, Tag, Value};
