//! Loading a site file (and the equipment-type catalogue it names) into a checked [`Site`].
//!
//! Files are read through the `config` crate so that any key can be overridden from the
//! environment: `PHARMATWIN_<FILE STEM>__<KEY>__<KEY>`, e.g.
//! `PHARMATWIN_SHENZHEN__SITE__ENDPOINT=opc.tcp://10.0.0.5:4840/`. Every error names the
//! file and the key, because the person reading it has to find the line to fix.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    sync::Arc,
};

use serde::{de::DeserializeOwned, Deserialize};

use crate::{
    plant::{
        Area, Category, Climate, Costs, DataType, Deadband, Equipment, Line, Monitoring,
        NodeAddress, Range, Security, SecurityMode, SecurityPolicy, Signal, Site, Trigger,
        UserIdentity,
    },
    sample::Tag,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the file: {source}")]
    Unreadable {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not valid TOML: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: key `{key}` is missing")]
    MissingKey { file: String, key: String },
    #[error("{file}: key `{key}`: {message}")]
    InvalidKey {
        file: String,
        key: String,
        message: String,
    },
}

impl ConfigError {
    /// The key the error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::MissingKey { key, .. } | ConfigError::InvalidKey { key, .. } => Some(key),
            _ => None,
        }
    }
}

// ---- the files as written -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteFile {
    /// Equipment-type catalogue, relative to the site file.
    templates: Option<String>,
    site: SiteSection,
    #[serde(default)]
    areas: Vec<Area>,
    lines: Vec<LineSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteSection {
    id: String,
    name: String,
    #[serde(default = "default_enterprise")]
    enterprise: String,
    namespace_uri: String,
    endpoint: String,
    #[serde(default)]
    climate: Climate,
    #[serde(default)]
    costs: Costs,
    #[serde(default)]
    security: Security,
    #[serde(default)]
    monitoring: Monitoring,
}

fn default_enterprise() -> String {
    "pharma-group".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineSection {
    id: String,
    #[serde(default)]
    name: String,
    area: String,
    equipment: Vec<EquipmentSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EquipmentSection {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    room: Option<String>,
    grade: Option<String>,
    maker: Option<String>,
    serial: Option<String>,
    installed: Option<String>,
    /// Monitoring parameters of all its signals.
    #[serde(default)]
    monitoring: Monitoring,
    #[serde(default)]
    signals: Vec<SignalSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalSection {
    id: String,
    #[serde(default)]
    description: String,
    category: Category,
    unit: String,
    #[serde(default)]
    data_type: DataType,
    /// `nsu=<uri>;s=<id>`; when absent, `nsu=<site namespace>;s=<line>.<equipment>.<signal>`.
    node: Option<String>,
    limits: Option<Range>,
    spec: Option<Range>,
    #[serde(default)]
    monitoring: Monitoring,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    types: BTreeMap<String, EquipmentType>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EquipmentType {
    #[serde(default)]
    name: String,
    signals: Vec<SignalSection>,
}

// ---- loading -----------------------------------------------------------------------------

/// Loads a site file from disk; its `templates` path is taken relative to it.
pub fn load_site_file(path: &Path) -> Result<Site, ConfigError> {
    let file = path.display().to_string();
    let text = read(path)?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_site_text(&file, &text, |name| {
        let p = dir.join(name);
        Ok((p.display().to_string(), read(&p)?))
    })
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
        file: path.display().to_string(),
        source,
    })
}

/// Loads a site from its text. `origin` names it in errors and picks the environment prefix
/// (its file stem); `read_templates` turns the file's `templates` value into (origin, text).
pub fn load_site_text(
    origin: &str,
    text: &str,
    read_templates: impl Fn(&str) -> Result<(String, String), ConfigError>,
) -> Result<Site, ConfigError> {
    let stem = Path::new(origin)
        .file_stem()
        .map(|s| {
            s.to_string_lossy()
                .to_uppercase()
                .replace(['-', '.', ' '], "_")
        })
        .unwrap_or_default();
    let raw: SiteFile = parse(origin, text, Some(&format!("PHARMATWIN_{stem}")))?;
    let types = match &raw.templates {
        Some(name) => {
            let (t_origin, t_text) = read_templates(name).map_err(|e| match e {
                ConfigError::Unreadable { file, source } => ConfigError::InvalidKey {
                    file: origin.to_string(),
                    key: "templates".into(),
                    message: format!("cannot read `{file}`: {source}"),
                },
                other => other,
            })?;
            let t: TemplateFile = parse(&t_origin, &t_text, None)?;
            t.types
        }
        None => BTreeMap::new(),
    };
    resolve(origin, raw, &types)
}

/// Reads TOML through `config` (with environment overrides) and deserializes it, tracking
/// the path so that an error can name the exact key.
fn parse<T: DeserializeOwned>(
    origin: &str,
    text: &str,
    env_prefix: Option<&str>,
) -> Result<T, ConfigError> {
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml));
    if let Some(prefix) = env_prefix {
        builder = builder.add_source(
            config::Environment::with_prefix(prefix)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
    }
    let cfg = builder.build().map_err(|e| ConfigError::Syntax {
        file: origin.to_string(),
        message: e.to_string(),
    })?;
    let value: config::Value = cfg.try_deserialize().map_err(|e| ConfigError::Syntax {
        file: origin.to_string(),
        message: e.to_string(),
    })?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        key_error(origin, &path, &message)
    })
}

fn key_error(origin: &str, path: &str, message: &str) -> ConfigError {
    let join = |field: &str| {
        if path.is_empty() || path == "." {
            field.to_string()
        } else {
            format!("{path}.{field}")
        }
    };
    // serde reports a missing field at its parent; the person wants the full key.
    // `config` words it its own way and glues its own path in front of the field.
    let missing = between(message, "missing field `", "`").or_else(|| {
        between(message, "missing configuration field \"", "\"")
            .map(|p| p.rsplit([']', '.']).next().unwrap_or(p))
    });
    if let Some(field) = missing {
        return ConfigError::MissingKey {
            file: origin.to_string(),
            key: join(field),
        };
    }
    if let Some(field) = between(message, "unknown field `", "`") {
        if field == "password" {
            return ConfigError::InvalidKey {
                file: origin.to_string(),
                key: join(field),
                message: "a password is never read from a site file: put it in an environment \
                          variable and name that variable in `password_env`"
                    .into(),
            };
        }
        return ConfigError::InvalidKey {
            file: origin.to_string(),
            key: join(field),
            message: format!(
                "unknown key; {}",
                message
                    .split(", expected")
                    .nth(1)
                    .map(|r| format!("expected{r}"))
                    .unwrap_or_default()
            ),
        };
    }
    ConfigError::InvalidKey {
        file: origin.to_string(),
        key: if path.is_empty() {
            ".".into()
        } else {
            path.to_string()
        },
        message: message.to_string(),
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

fn resolve(
    origin: &str,
    raw: SiteFile,
    types: &BTreeMap<String, EquipmentType>,
) -> Result<Site, ConfigError> {
    let invalid = |key: String, message: String| ConfigError::InvalidKey {
        file: origin.to_string(),
        key,
        message,
    };
    let s = raw.site;
    for (key, v) in [
        ("site.id", &s.id),
        ("site.namespace_uri", &s.namespace_uri),
        ("site.endpoint", &s.endpoint),
    ] {
        if v.trim().is_empty() {
            return Err(invalid(key.into(), "must not be empty".into()));
        }
    }
    check_security(&s.security).map_err(|(key, message)| invalid(key.into(), message))?;
    if !is_identifier(&s.id) {
        return Err(invalid(
            "site.id".into(),
            format!("`{}` must be lowercase letters, digits, `-` or `_`", s.id),
        ));
    }
    if raw.lines.is_empty() {
        return Err(ConfigError::MissingKey {
            file: origin.into(),
            key: "lines".into(),
        });
    }
    let mut areas = raw.areas;
    if areas.is_empty() {
        areas.push(Area {
            id: "osd".into(),
            name: "Oral solid dose".into(),
        });
    }
    // Which signal first used each node id, to name both when one is reused.
    let mut nodes: HashMap<NodeAddress, String> = HashMap::new();
    let mut line_ids = HashMap::new();
    let mut lines = Vec::with_capacity(raw.lines.len());
    for (li, l) in raw.lines.into_iter().enumerate() {
        let lkey = format!("lines[{li}]");
        if !is_identifier(&l.id) {
            return Err(invalid(
                format!("{lkey}.id"),
                format!("`{}` must be lowercase letters, digits, `-` or `_`", l.id),
            ));
        }
        if let Some(prev) = line_ids.insert(l.id.clone(), li) {
            return Err(invalid(
                format!("{lkey}.id"),
                format!("line `{}` is already defined at lines[{prev}]", l.id),
            ));
        }
        if !areas.iter().any(|a| a.id == l.area) {
            return Err(invalid(
                format!("{lkey}.area"),
                format!("no area `{}` in [[areas]]", l.area),
            ));
        }
        let mut equipment = Vec::with_capacity(l.equipment.len());
        for (ei, e) in l.equipment.iter().enumerate() {
            let ekey = format!("{lkey}.equipment[{ei}]");
            if !is_identifier(&e.id) {
                return Err(invalid(
                    format!("{ekey}.id"),
                    format!("`{}` must be lowercase letters, digits, `-` or `_`", e.id),
                ));
            }
            if l.equipment[..ei].iter().any(|o| o.id == e.id) {
                return Err(invalid(
                    format!("{ekey}.id"),
                    format!("equipment `{}` is already defined on line `{}`", e.id, l.id),
                ));
            }
            if let Some(room) = &e.room {
                if !l.equipment.iter().any(|o| &o.id == room) {
                    return Err(invalid(
                        format!("{ekey}.room"),
                        format!("no equipment `{room}` on line `{}`", l.id),
                    ));
                }
            }
            let mut sections: Vec<(String, SignalSection)> = Vec::new();
            if let Some(kind) = &e.kind {
                let Some(t) = types.get(kind) else {
                    let known: Vec<_> = types.keys().map(String::as_str).collect();
                    return Err(invalid(
                        format!("{ekey}.type"),
                        format!(
                            "unknown equipment type `{kind}`; known: {}",
                            known.join(", ")
                        ),
                    ));
                };
                sections.extend(
                    t.signals
                        .iter()
                        .enumerate()
                        .map(|(i, s)| (format!("types.{kind}.signals[{i}]"), s.clone())),
                );
            }
            sections.extend(
                e.signals
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("{ekey}.signals[{i}]"), s.clone())),
            );
            if sections.is_empty() {
                return Err(invalid(
                    ekey.clone(),
                    "has no `type` and no `signals`".into(),
                ));
            }
            let mut signals: Vec<Signal> = Vec::with_capacity(sections.len());
            for (skey, sig) in sections {
                if signals.iter().any(|o| o.id == sig.id) {
                    return Err(invalid(
                        format!("{skey}.id"),
                        format!("signal `{}` is defined twice on `{}`", sig.id, e.id),
                    ));
                }
                let node = match &sig.node {
                    Some(text) => text
                        .parse::<NodeAddress>()
                        .map_err(|m| invalid(format!("{skey}.node"), m))?,
                    None => NodeAddress {
                        namespace_uri: s.namespace_uri.clone(),
                        identifier: crate::plant::NodeIdentifier::String(format!(
                            "{}.{}.{}",
                            l.id, e.id, sig.id
                        )),
                    },
                };
                let who = format!("{}/{}/{}", l.id, e.id, sig.id);
                if let Some(other) = nodes.get(&node) {
                    return Err(invalid(
                        format!("{skey}.node"),
                        format!("duplicate node id `{node}`: signal `{who}` and signal `{other}` both use it"),
                    ));
                }
                nodes.insert(node.clone(), who.clone());
                for (what, r) in [("limits", &sig.limits), ("spec", &sig.spec)] {
                    if let Some(r) = r {
                        if r.low.is_nan() || r.high.is_nan() || r.low > r.high {
                            return Err(invalid(
                                format!("{skey}.{what}"),
                                format!("low {} is above high {}", r.low, r.high),
                            ));
                        }
                    }
                }
                let monitoring = sig.monitoring.or(&e.monitoring).or(&s.monitoring);
                check_monitoring(&monitoring, sig.data_type).map_err(|(key, message)| {
                    // Name where the offending value was set: the narrowest place that has it.
                    let at = if has_key(&sig.monitoring, key) {
                        format!("{skey}.monitoring.{key}")
                    } else if has_key(&e.monitoring, key) {
                        format!("{ekey}.monitoring.{key}")
                    } else {
                        format!("site.monitoring.{key}")
                    };
                    invalid(at, format!("{message} (signal `{who}`)"))
                })?;
                let tag = Arc::new(Tag {
                    site: s.id.clone(),
                    area: l.area.clone(),
                    line: l.id.clone(),
                    equipment: e.id.clone(),
                    signal: sig.id.clone(),
                    category: sig.category,
                    unit: sig.unit.clone(),
                });
                signals.push(Signal {
                    id: sig.id,
                    description: sig.description,
                    category: sig.category,
                    unit: sig.unit,
                    data_type: sig.data_type,
                    node,
                    limits: sig.limits,
                    spec: sig.spec,
                    monitoring,
                    tag,
                });
            }
            let name = if e.name.is_empty() {
                e.kind
                    .as_ref()
                    .and_then(|k| types.get(k))
                    .map(|t| t.name.clone())
                    .unwrap_or_else(|| e.id.clone())
            } else {
                e.name.clone()
            };
            equipment.push(Equipment {
                id: e.id.clone(),
                name,
                kind: e.kind.clone(),
                room: e.room.clone(),
                grade: e.grade.clone(),
                maker: e.maker.clone(),
                serial: e.serial.clone(),
                installed: e.installed.clone(),
                signals,
            });
        }
        lines.push(Line {
            name: if l.name.is_empty() {
                l.id.clone()
            } else {
                l.name
            },
            id: l.id,
            area: l.area,
            equipment,
        });
    }
    Ok(Site {
        id: s.id,
        name: s.name,
        enterprise: s.enterprise,
        namespace_uri: s.namespace_uri,
        endpoint: s.endpoint,
        climate: s.climate,
        costs: s.costs,
        areas,
        lines,
        security: s.security,
        origin: origin.to_string(),
    })
}

/// Monitoring parameters a server would refuse or that cannot mean anything: (key, why).
fn check_monitoring(m: &Monitoring, data_type: DataType) -> Result<(), (&'static str, String)> {
    if m.queue_size == Some(0) {
        return Err(("queue_size", "must be at least 1".into()));
    }
    if let Some(d) = m.deadband {
        let (Deadband::Absolute(v) | Deadband::Percent(v)) = d;
        if !(v.is_finite() && v >= 0.0) {
            return Err(("deadband", format!("{v} is not a number ≥ 0")));
        }
        if matches!(d, Deadband::Percent(p) if p > 100.0) {
            return Err(("deadband", format!("{v} % is more than the whole range")));
        }
        if !matches!(data_type, DataType::Double | DataType::Int) {
            return Err(("deadband", "applies to numbers only".into()));
        }
        if m.trigger == Some(Trigger::Status) {
            return Err((
                "deadband",
                "a deadband filters value changes, which trigger `status` ignores".into(),
            ));
        }
    }
    Ok(())
}

fn has_key(m: &Monitoring, key: &str) -> bool {
    match key {
        "queue_size" => m.queue_size.is_some(),
        "deadband" => m.deadband.is_some(),
        "trigger" => m.trigger.is_some(),
        _ => false,
    }
}

/// The combinations a server would refuse, named by key before any connection is tried.
fn check_security(s: &Security) -> Result<(), (&'static str, String)> {
    match (s.policy, s.mode) {
        (SecurityPolicy::None, SecurityMode::None) => {}
        (SecurityPolicy::None, mode) => {
            return Err((
                "site.security.mode",
                format!("`{mode:?}` needs a security policy other than `None`"),
            ))
        }
        (policy, SecurityMode::None) => {
            return Err((
                "site.security.mode",
                format!("policy `{policy:?}` needs mode `Sign` or `SignAndEncrypt`"),
            ))
        }
        _ => {}
    }
    match &s.user {
        UserIdentity::Anonymous => {}
        UserIdentity::Username { name, password_env } => {
            if name.trim().is_empty() {
                return Err(("site.security.user.name", "must not be empty".into()));
            }
            let valid_env = !password_env.is_empty()
                && !password_env.starts_with(|c: char| c.is_ascii_digit())
                && password_env
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid_env {
                return Err((
                    "site.security.user.password_env",
                    format!(
                        "`{password_env}` is not an environment variable name \
                         (letters, digits and `_`, not starting with a digit)"
                    ),
                ));
            }
        }
        UserIdentity::X509 {
            certificate,
            private_key,
        } => {
            if certificate.as_os_str().is_empty() {
                return Err(("site.security.user.certificate", "must not be empty".into()));
            }
            if private_key.as_os_str().is_empty() {
                return Err(("site.security.user.private_key", "must not be empty".into()));
            }
        }
    }
    Ok(())
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPES: &str = r#"
[types.press]
name = "Tablet press"
[[types.press.signals]]
id = "speed"
category = "machine"
unit = "tab/h"
limits = { low = 0, high = 300000 }
"#;

    fn load(text: &str) -> Result<Site, ConfigError> {
        load_site_text("sites/test.toml", text, |_| {
            Ok(("sites/types.toml".into(), TYPES.into()))
        })
    }

    const GOOD: &str = r#"
templates = "types.toml"
[site]
id = "test"
name = "Test plant"
namespace_uri = "urn:test"
endpoint = "opc.tcp://127.0.0.1:4840/"
[[areas]]
id = "osd"
[[lines]]
id = "line-1"
area = "osd"
[[lines.equipment]]
id = "press-01"
type = "press"
[[lines.equipment]]
id = "room-1"
[[lines.equipment.signals]]
id = "temperature"
category = "environment"
unit = "degC"
node = "nsu=urn:other;i=7"
"#;

    #[test]
    fn template_signals_get_derived_node_ids_and_tags() {
        let site = load(GOOD).unwrap();
        assert_eq!(site.signal_count(), 2);
        let (_, _, speed) = site.signals().next().unwrap();
        assert_eq!(
            speed.node.to_string(),
            "nsu=urn:test;s=line-1.press-01.speed"
        );
        assert_eq!(speed.tag.path(), "test/osd/line-1/press-01/speed");
        assert_eq!(speed.limits.unwrap().high, 300000.0);
        let (_, _, t) = site.signals().nth(1).unwrap();
        assert_eq!(t.node.to_string(), "nsu=urn:other;i=7");
    }

    #[test]
    fn missing_key_is_named_in_full() {
        let err = load(&GOOD.replace("unit = \"degC\"\n", "")).unwrap_err();
        assert_eq!(
            err.key(),
            Some("lines[0].equipment[1].signals[0].unit"),
            "{err}"
        );
        assert!(err.to_string().starts_with("sites/test.toml: key"), "{err}");
    }

    #[test]
    fn unknown_category_names_key_and_choices() {
        let err = load(&GOOD.replace("\"environment\"", "\"weather\"")).unwrap_err();
        assert_eq!(
            err.key(),
            Some("lines[0].equipment[1].signals[0].category"),
            "{err}"
        );
        assert!(err.to_string().contains("weather"), "{err}");
    }

    fn with_security(section: &str) -> String {
        GOOD.replace(
            "endpoint = \"opc.tcp://127.0.0.1:4840/\"\n",
            &format!("endpoint = \"opc.tcp://127.0.0.1:4840/\"\n{section}"),
        )
    }

    #[test]
    fn security_defaults_to_none_and_anonymous() {
        assert_eq!(load(GOOD).unwrap().security, Security::default());
        let site = load(&with_security(
            "[site.security]\npolicy = \"Aes256_Sha256_RsaPss\"\nmode = \"Sign\"\n\
             user = { kind = \"username\", name = \"op\", password_env = \"ANHUI_OPCUA_PASSWORD\" }\n",
        ))
        .unwrap();
        assert_eq!(site.security.policy, SecurityPolicy::Aes256Sha256RsaPss);
        assert_eq!(site.security.mode, SecurityMode::Sign);
        assert_eq!(
            site.security.user,
            UserIdentity::Username {
                name: "op".into(),
                password_env: "ANHUI_OPCUA_PASSWORD".into()
            }
        );
    }

    #[test]
    fn a_wrong_security_value_names_the_file_and_the_key() {
        let cases = [
            (
                "[site.security]\npolicy = \"Basic256\"\nmode = \"Sign\"\n",
                "site.security.policy",
                "Basic256",
            ),
            (
                "[site.security]\npolicy = \"Basic256Sha256\"\nmode = \"Encrypt\"\n",
                "site.security.mode",
                "Encrypt",
            ),
            (
                "[site.security]\npolicy = \"Basic256Sha256\"\n",
                "site.security.mode",
                "Sign",
            ),
            (
                "[site.security]\nmode = \"SignAndEncrypt\"\n",
                "site.security.mode",
                "policy",
            ),
            (
                "[site.security]\nuser = { kind = \"username\", name = \"op\", password = \"secret\" }\n",
                "site.security.user.password",
                "password_env",
            ),
            (
                "[site.security]\nuser = { kind = \"username\", name = \"op\", password_env = \"1 X\" }\n",
                "site.security.user.password_env",
                "environment variable",
            ),
            (
                "[site.security]\nuser = { kind = \"kerberos\" }\n",
                "site.security.user",
                "kerberos",
            ),
        ];
        for (section, key, says) in cases {
            let err = load(&with_security(section)).unwrap_err();
            assert!(
                err.key().is_some_and(|k| k.starts_with(key)),
                "{section}: {err}"
            );
            let text = err.to_string();
            assert!(text.starts_with("sites/test.toml: key"), "{text}");
            assert!(text.contains(says), "{section}: {text}");
        }
    }

    #[test]
    fn monitoring_is_set_per_site_equipment_and_signal_the_narrowest_winning() {
        let text = GOOD
            .replace(
                "endpoint = \"opc.tcp://127.0.0.1:4840/\"\n",
                "endpoint = \"opc.tcp://127.0.0.1:4840/\"\n\
                 monitoring = { sampling_ms = 1000, queue_size = 5 }\n",
            )
            .replace(
                "id = \"room-1\"\n",
                "id = \"room-1\"\nmonitoring = { queue_size = 50, trigger = \"status_value_timestamp\" }\n",
            )
            .replace(
                "node = \"nsu=urn:other;i=7\"\n",
                "node = \"nsu=urn:other;i=7\"\n\
                 monitoring = { sampling_ms = 100, deadband = { absolute = 0.2 } }\n",
            );
        let site = load(&text).unwrap();
        let (_, _, speed) = site.signals().next().unwrap();
        assert_eq!(
            speed.monitoring,
            Monitoring {
                sampling_ms: Some(1000),
                queue_size: Some(5),
                ..Monitoring::default()
            }
        );
        let (_, _, t) = site.signals().nth(1).unwrap();
        assert_eq!(
            t.monitoring,
            Monitoring {
                sampling_ms: Some(100),
                queue_size: Some(50),
                trigger: Some(Trigger::StatusValueTimestamp),
                deadband: Some(Deadband::Absolute(0.2)),
                ..Monitoring::default()
            }
        );
    }

    #[test]
    fn a_wrong_monitoring_value_names_the_key_where_it_was_set() {
        let cases = [
            (
                GOOD.replace(
                    "node = \"nsu=urn:other;i=7\"\n",
                    "node = \"nsu=urn:other;i=7\"\nmonitoring = { deadband = { percent = 150.0 } }\n",
                ),
                "lines[0].equipment[1].signals[0].monitoring.deadband",
            ),
            (
                GOOD.replace(
                    "id = \"room-1\"\n",
                    "id = \"room-1\"\nmonitoring = { queue_size = 0 }\n",
                ),
                "lines[0].equipment[1].monitoring.queue_size",
            ),
            (
                GOOD.replace(
                    "unit = \"degC\"\n",
                    "unit = \"degC\"\ndata_type = \"string\"\n",
                )
                .replace(
                    "endpoint = \"opc.tcp://127.0.0.1:4840/\"\n",
                    "endpoint = \"opc.tcp://127.0.0.1:4840/\"\n\
                     monitoring = { deadband = { absolute = 1.0 } }\n",
                ),
                "site.monitoring.deadband",
            ),
            (
                GOOD.replace(
                    "id = \"room-1\"\n",
                    "id = \"room-1\"\nmonitoring = { trigger = \"sometimes\" }\n",
                ),
                "lines[0].equipment[1].monitoring.trigger",
            ),
        ];
        for (text, key) in cases {
            let err = load(&text).unwrap_err();
            assert_eq!(err.key(), Some(key), "{err}");
            assert!(err.to_string().contains("sites/test.toml"), "{err}");
        }
    }

    #[test]
    fn duplicate_node_id_names_both_signals() {
        let dup = GOOD.replace("nsu=urn:other;i=7", "nsu=urn:test;s=line-1.press-01.speed");
        let err = load(&dup).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("line-1/press-01/speed") && text.contains("line-1/room-1/temperature"),
            "{text}"
        );
    }

    #[test]
    fn unknown_equipment_type_lists_known_ones() {
        let err = load(&GOOD.replace("type = \"press\"", "type = \"dryer\"")).unwrap_err();
        assert_eq!(err.key(), Some("lines[0].equipment[0].type"));
        assert!(err.to_string().contains("known: press"), "{err}");
    }

    #[test]
    fn unreadable_file_names_the_file() {
        let err = load_site_file(Path::new("/nonexistent/plant.toml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/plant.toml: cannot read"),
            "{err}"
        );
    }
}
