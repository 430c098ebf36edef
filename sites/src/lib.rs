//! The three simulated PharmaTwin plants — Shenzhen, Anhui, Sichuan — as plant files, and the
//! simulator that serves a site's signals over OPC UA from a physical model of the plant.
//!
//! - The plant files (`sites/*.toml`, with the shared equipment-type catalogue) are
//!   configuration: [`builtin_sites`] loads the copies compiled into the binary; a file on
//!   disk loads with [`model::load_site_file`].
//! - [`physics`] is the plant model: pure, deterministic, no I/O.
//! - [`simulator`] runs the model against the clock and serves it as an OPC UA server.
//! - [`scenario`] injects faults into a plant at chosen moments (training, tests).
//!
//! **Architecture invariant:** `sites` is a peer of the plants, not of the twin: nothing here
//! depends on the connectors, the twin core or the dashboards.

pub mod physics;
pub mod scenario;
pub mod simulator;

use model::{ConfigError, Site};

/// The equipment-type catalogue the built-in site files name.
pub const EQUIPMENT_TYPES: &str = include_str!("../equipment-types.toml");
const EQUIPMENT_TYPES_FILE: &str = "equipment-types.toml";

/// Ids of the built-in sites, in the order [`builtin_sites`] returns them.
pub const SITE_IDS: [&str; 3] = ["shenzhen", "anhui", "sichuan"];

/// (origin, text) of each built-in site file; the origin names it in errors and selects its
/// environment-override prefix (`PHARMATWIN_SHENZHEN__…`).
const SITE_FILES: [(&str, &str); 3] = [
    ("sites/shenzhen.toml", include_str!("../shenzhen.toml")),
    ("sites/anhui.toml", include_str!("../anhui.toml")),
    ("sites/sichuan.toml", include_str!("../sichuan.toml")),
];

/// The three built-in sites, loaded from the plant files compiled into the crate.
pub fn builtin_sites() -> Result<Vec<Site>, ConfigError> {
    SITE_FILES
        .iter()
        .map(|(origin, text)| load_builtin(origin, text))
        .collect()
}

/// One built-in site by id (`shenzhen`, `anhui`, `sichuan`); `None` for another id.
pub fn builtin_site(id: &str) -> Option<Result<Site, ConfigError>> {
    let i = SITE_IDS.iter().position(|s| *s == id)?;
    let (origin, text) = SITE_FILES[i];
    Some(load_builtin(origin, text))
}

fn load_builtin(origin: &str, text: &str) -> Result<Site, ConfigError> {
    model::load_site_text(origin, text, |name| {
        if name == EQUIPMENT_TYPES_FILE {
            Ok((format!("sites/{name}"), EQUIPMENT_TYPES.to_string()))
        } else {
            Err(ConfigError::Unreadable {
                file: format!("sites/{name}"),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not one of the files built into pharmatwin-sites",
                ),
            })
        }
    })
}

#[cfg(test)]
mod tests;
