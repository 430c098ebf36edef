//! The plant model: ISA-95 places (site / area / line / equipment / signal), each signal
//! with its 5M1E category, unit, data type, OPC UA address and limits.
//!
//! These are the resolved types, after a site file and its equipment types were loaded and
//! checked (see [`crate::load`]); every consumer can rely on them being consistent.

use std::{fmt, str::FromStr, sync::Arc};

use serde::{Deserialize, Serialize};

use crate::sample::Tag;

/// The 5M1E category of a signal (Measurement, the sixth M, is the value itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    People,
    Machine,
    Material,
    Method,
    Environment,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::People,
        Category::Machine,
        Category::Material,
        Category::Method,
        Category::Environment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::People => "people",
            Category::Machine => "machine",
            Category::Material => "material",
            Category::Method => "method",
            Category::Environment => "environment",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The OPC UA data type a signal is served and read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    #[default]
    Double,
    Int,
    Bool,
    String,
}

/// A closed interval, used for engineering ranges and specification limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub low: f64,
    pub high: f64,
}

impl Range {
    pub fn contains(&self, x: f64) -> bool {
        x >= self.low && x <= self.high
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NodeIdentifier {
    String(String),
    Numeric(u32),
}

/// An OPC UA node id by namespace URI, never by index: indexes can change between server
/// restarts, URIs do not. Written `nsu=<uri>;s=<name>` or `nsu=<uri>;i=<number>`, as in the
/// OPC UA expanded node id text form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeAddress {
    pub namespace_uri: String,
    pub identifier: NodeIdentifier,
}

impl fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.identifier {
            NodeIdentifier::String(s) => write!(f, "nsu={};s={}", self.namespace_uri, s),
            NodeIdentifier::Numeric(i) => write!(f, "nsu={};i={}", self.namespace_uri, i),
        }
    }
}

impl FromStr for NodeAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some(rest) = text.strip_prefix("nsu=") else {
            return Err(format!(
                "node id `{text}` must start with `nsu=<namespace uri>;` (a bare namespace index is not stable across server restarts)"
            ));
        };
        // The URI itself may contain ';' only in theory; the identifier is what follows the last `;s=` / `;i=`.
        let (uri, ident) = match (rest.rfind(";s="), rest.rfind(";i=")) {
            (Some(p), _) => (
                &rest[..p],
                NodeIdentifier::String(rest[p + 3..].to_string()),
            ),
            (None, Some(p)) => {
                let n = rest[p + 3..]
                    .parse::<u32>()
                    .map_err(|_| format!("node id `{text}`: `i=` needs a whole number"))?;
                (&rest[..p], NodeIdentifier::Numeric(n))
            }
            (None, None) => {
                return Err(format!(
                    "node id `{text}` needs an identifier: `;s=<name>` or `;i=<number>`"
                ))
            }
        };
        if uri.is_empty() {
            return Err(format!("node id `{text}` has an empty namespace uri"));
        }
        if matches!(&ident, NodeIdentifier::String(s) if s.is_empty()) {
            return Err(format!("node id `{text}` has an empty identifier"));
        }
        Ok(NodeAddress {
            namespace_uri: uri.to_string(),
            identifier: ident,
        })
    }
}

impl TryFrom<String> for NodeAddress {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<NodeAddress> for String {
    fn from(a: NodeAddress) -> String {
        a.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signal {
    pub id: String,
    pub description: String,
    pub category: Category,
    pub unit: String,
    pub data_type: DataType,
    pub node: NodeAddress,
    /// Engineering range: values outside it are physically implausible.
    pub limits: Option<Range>,
    /// Specification (alarm) limits: values outside them are excursions.
    pub spec: Option<Range>,
    /// How the server is asked to watch it; what is not set here the connector's options
    /// decide.
    pub monitoring: Monitoring,
    pub tag: Arc<Tag>,
}

/// OPC UA monitoring parameters of a signal. Set per site (`[site.monitoring]`), per
/// equipment type signal, per equipment (`monitoring` of `[[lines.equipment]]`) and per
/// signal; the narrower setting wins key by key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    /// How often the server samples the node, ms (0: as fast as it can).
    pub sampling_ms: Option<u64>,
    /// Values the server queues between publishes; enough to cover a network stall of
    /// `queue_size × sampling_ms` without losing one.
    pub queue_size: Option<u32>,
    /// Which value a full queue drops: the oldest (default) or the newest.
    pub discard_oldest: Option<bool>,
    /// What counts as a change worth a notification.
    pub trigger: Option<Trigger>,
    /// Changes smaller than this are not reported (numbers only).
    pub deadband: Option<Deadband>,
    /// Flag the tag stale when no update came for this long while the session is alive;
    /// otherwise a tag that has been updating is flagged after the connector's default
    /// number of publishing intervals.
    pub stale_after_ms: Option<u64>,
}

impl Monitoring {
    /// `self` with what it leaves unset taken from `wider`.
    pub fn or(&self, wider: &Monitoring) -> Monitoring {
        Monitoring {
            sampling_ms: self.sampling_ms.or(wider.sampling_ms),
            queue_size: self.queue_size.or(wider.queue_size),
            discard_oldest: self.discard_oldest.or(wider.discard_oldest),
            trigger: self.trigger.or(wider.trigger),
            deadband: self.deadband.or(wider.deadband),
            stale_after_ms: self.stale_after_ms.or(wider.stale_after_ms),
        }
    }
}

/// The DataChangeFilter trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Only a change of status.
    Status,
    /// A change of status or value: the default, so a Bad status is never missed.
    StatusValue,
    /// Also a new source timestamp with the same value.
    StatusValueTimestamp,
}

/// A DataChangeFilter deadband: `{ absolute = 0.5 }` or `{ percent = 2.0 }` (of the node's
/// EURange, which the server must have).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Deadband {
    Absolute(f64),
    Percent(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Equipment {
    pub id: String,
    pub name: String,
    /// The equipment type from the equipment-type catalogue (`tablet_press`, `cleanroom`, …).
    pub kind: Option<String>,
    /// The cleanroom it stands in (an equipment of kind `cleanroom` on the same line).
    pub room: Option<String>,
    /// Cleanroom grade (EU GMP A–D) for rooms.
    pub grade: Option<String>,
    pub maker: Option<String>,
    pub serial: Option<String>,
    pub installed: Option<String>,
    pub signals: Vec<Signal>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub id: String,
    pub name: String,
    pub area: String,
    pub equipment: Vec<Equipment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

/// Outdoor climate of a site; drives the simulated HVAC load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Climate {
    pub mean_temp_c: f64,
    pub seasonal_amplitude_c: f64,
    pub daily_amplitude_c: f64,
    pub mean_rh_pct: f64,
    pub rh_amplitude_pct: f64,
}

impl Default for Climate {
    fn default() -> Self {
        Climate {
            mean_temp_c: 18.0,
            seasonal_amplitude_c: 8.0,
            daily_amplitude_c: 4.0,
            mean_rh_pct: 65.0,
            rh_amplitude_pct: 10.0,
        }
    }
}

/// Cost rates, so HQ can compare energy and cost per batch across plants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Costs {
    pub currency: String,
    pub energy_per_kwh: f64,
    pub labour_per_hour: f64,
    pub material_per_kg: f64,
}

impl Default for Costs {
    fn default() -> Self {
        Costs {
            currency: "CNY".into(),
            energy_per_kwh: 0.8,
            labour_per_hour: 60.0,
            material_per_kg: 120.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub enterprise: String,
    /// Namespace of this site's nodes on its OPC UA server.
    pub namespace_uri: String,
    /// Where the site's OPC UA server listens (and where its simulator serves).
    pub endpoint: String,
    pub climate: Climate,
    pub costs: Costs,
    pub areas: Vec<Area>,
    pub lines: Vec<Line>,
    /// How a client secures its session to the site's server (and what its simulator
    /// offers). Not part of the web view's description of a site.
    #[serde(skip)]
    pub security: Security,
    /// The file (or built-in name) the site was loaded from, for messages.
    pub origin: String,
}

/// `[site.security]` of a site file: the OPC UA security policy and message mode of the
/// session, and the user it logs in as. The names are OPC UA's (Part 7 profiles), so that
/// they read as on the server's endpoint list. Defaults: None, None, anonymous.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    #[serde(default)]
    pub policy: SecurityPolicy,
    #[serde(default)]
    pub mode: SecurityMode,
    #[serde(default)]
    pub user: UserIdentity,
    /// Where the connector keeps its application instance certificate and the `trusted/`
    /// and `rejected/` server certificates; relative to the working directory. When absent
    /// the process-wide default of the connector is used.
    #[serde(default)]
    pub pki_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum SecurityPolicy {
    #[default]
    None,
    Basic256Sha256,
    #[serde(rename = "Aes128_Sha256_RsaOaep")]
    Aes128Sha256RsaOaep,
    #[serde(rename = "Aes256_Sha256_RsaPss")]
    Aes256Sha256RsaPss,
}

impl SecurityPolicy {
    pub const ALL: [SecurityPolicy; 4] = [
        SecurityPolicy::None,
        SecurityPolicy::Basic256Sha256,
        SecurityPolicy::Aes128Sha256RsaOaep,
        SecurityPolicy::Aes256Sha256RsaPss,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum SecurityMode {
    #[default]
    None,
    Sign,
    SignAndEncrypt,
}

/// Who the session logs in as. A password is never written in a site file: `password_env`
/// names the environment variable that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum UserIdentity {
    #[default]
    Anonymous,
    Username {
        name: String,
        password_env: String,
    },
    /// A user certificate (DER or PEM) and its private key (PEM).
    X509 {
        certificate: std::path::PathBuf,
        private_key: std::path::PathBuf,
    },
}

impl Site {
    /// Every signal of the site with the line and equipment it belongs to.
    pub fn signals(&self) -> impl Iterator<Item = (&Line, &Equipment, &Signal)> {
        self.lines.iter().flat_map(|l| {
            l.equipment
                .iter()
                .flat_map(move |e| e.signals.iter().map(move |s| (l, e, s)))
        })
    }

    pub fn signal_count(&self) -> usize {
        self.signals().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_address_round_trips_through_text() {
        let a: NodeAddress = "nsu=urn:pharmatwin:site:anhui;s=line-1.press-01.speed"
            .parse()
            .unwrap();
        assert_eq!(a.namespace_uri, "urn:pharmatwin:site:anhui");
        assert_eq!(
            a.identifier,
            NodeIdentifier::String("line-1.press-01.speed".into())
        );
        assert_eq!(a.to_string().parse::<NodeAddress>().unwrap(), a);
        let n: NodeAddress = "nsu=http://example.org/UA/;i=2001".parse().unwrap();
        assert_eq!(n.identifier, NodeIdentifier::Numeric(2001));
    }

    #[test]
    fn bare_namespace_index_is_refused_with_the_reason() {
        let err = "ns=2;s=Temperature".parse::<NodeAddress>().unwrap_err();
        assert!(err.contains("nsu="), "{err}");
        assert!("nsu=urn:x;i=abc".parse::<NodeAddress>().is_err());
        assert!("nsu=urn:x".parse::<NodeAddress>().is_err());
    }
}
