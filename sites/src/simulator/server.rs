//! The OPC UA side of the simulator: endpoint parsing, server limits, and the address space
//! (folders Site / Area / Line / Equipment, one variable per signal at its configured node
//! id) of an async-opcua server.

use std::{collections::BTreeSet, path::PathBuf, sync::Arc};

use model::{DataType, NodeIdentifier, SecurityPolicy, Signal, Site, UserIdentity, Value};
use opcua::{
    crypto::SecurityPolicy as UaPolicy,
    nodes::{ImportedItem, NodeSetImport},
    server::{
        address_space::{AccessLevel, VariableBuilder},
        node_manager::memory::{simple_node_manager_imports, SimpleNodeManager},
        Limits, Server, ServerBuilder, ServerEndpoint, ServerHandle, ServerUserToken,
        ANONYMOUS_USER_TOKEN_ID,
    },
    types::{
        DataTypeId, DataValue, DateTime, LocalizedText, MessageSecurityMode, NodeId,
        NodeSetNamespaceMapper, QualifiedName, StatusCode, UAString, Variant,
    },
};

use super::SimError;
use crate::physics::WriteError;

/// An `opc.tcp://host:port/path` URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Host as written in the URL (IPv6 in brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: String,
}

impl Endpoint {
    /// The site's configured endpoint, or `text` instead: a port alone keeps the rest
    /// (`"0"` asks for a free one), anything else is a full URL.
    pub(crate) fn configured_or(site: &Site, text: Option<&str>) -> Result<Endpoint, SimError> {
        let configured = Endpoint::parse(&site.endpoint)?;
        match text.map(str::trim) {
            None | Some("") => Ok(configured),
            Some(text) => match text.parse::<u16>() {
                Ok(port) => Ok(Endpoint { port, ..configured }),
                Err(_) => Endpoint::parse(text),
            },
        }
    }

    /// Listens on this endpoint; a port 0 becomes the one the system gave.
    pub(crate) async fn bind(&mut self) -> Result<tokio::net::TcpListener, SimError> {
        let requested = self.url();
        let bind_error = |source| SimError::Bind {
            endpoint: requested.clone(),
            source,
        };
        let listener = tokio::net::TcpListener::bind((self.bind_host(), self.port))
            .await
            .map_err(bind_error)?;
        self.port = listener.local_addr().map_err(bind_error)?.port();
        Ok(listener)
    }

    pub(crate) fn parse(url: &str) -> Result<Endpoint, SimError> {
        let invalid = |reason: &str| SimError::Endpoint {
            endpoint: url.to_string(),
            reason: reason.to_string(),
        };
        let rest = url
            .trim()
            .strip_prefix("opc.tcp://")
            .ok_or_else(|| invalid("must start with `opc.tcp://`"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or_else(|| invalid("unclosed `[` in the host"))?;
            (&authority[..end + 2], v6[end + 1..].strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(invalid("has no host"));
        }
        let port = match port {
            None => 4840,
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| invalid(&format!("port `{p}` is not a number from 0 to 65535")))?,
        };
        Ok(Endpoint {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// The host to bind to (IPv6 without brackets).
    pub(crate) fn bind_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    pub(crate) fn url(&self) -> String {
        format!("opc.tcp://{}:{}{}", self.host, self.port, self.path)
    }
}

/// Limits raised above async-opcua's defaults, which fail quietly with a plant's worth of
/// signals: 1,000 monitored items per subscription and per call, 327 KB messages.
pub(crate) fn limits() -> Limits {
    let mut limits = Limits {
        max_array_length: 100_000,
        max_message_size: 32 * 1024 * 1024,
        max_chunk_count: 2048,
        max_sessions: 50,
        ..Limits::default()
    };
    let subs = &mut limits.subscriptions;
    subs.max_monitored_items_per_sub = 100_000;
    subs.max_queued_notifications = 200;
    // A client that asks for a deep queue (to ride out a network stall) gets it: 10 values,
    // the library's default, is one second of a 10 Hz signal.
    subs.max_monitored_item_queue_size = 10_000;
    subs.min_sampling_interval_ms = 100.0;
    subs.min_publishing_interval_ms = 100.0;
    let ops = &mut limits.operational;
    ops.max_monitored_items_per_call = 100_000;
    ops.max_nodes_per_read = 100_000;
    ops.max_nodes_per_write = 10_000;
    ops.max_nodes_per_browse = 10_000;
    ops.max_references_per_browse_node = 10_000;
    ops.max_nodes_per_register_nodes = 10_000;
    ops.max_nodes_per_translate_browse_paths_to_node_ids = 10_000;
    ops.max_nodes_per_history_read_data = 1_000;
    limits
}

/// The endpoints the simulator offers at `path`: security None with anonymous access (as
/// an unsecured plant), or, when the site file asks for a secured session, every secured
/// policy of the site-file model in Sign and SignAndEncrypt and no unsecured door — a
/// connector can then be tried with any of them against the same simulator. Each takes the
/// anonymous user and `users`.
pub(crate) fn endpoints(
    site: &Site,
    path: &str,
    users: &[String],
) -> Vec<(String, ServerEndpoint)> {
    let mut tokens = vec![ANONYMOUS_USER_TOKEN_ID.to_string()];
    tokens.extend(users.iter().cloned());
    if site.security.policy == SecurityPolicy::None {
        return vec![("none".into(), ServerEndpoint::new_none(path, &tokens))];
    }
    let mut out = Vec::new();
    for policy in SecurityPolicy::ALL {
        let ua_policy = match policy {
            SecurityPolicy::None => continue,
            SecurityPolicy::Basic256Sha256 => UaPolicy::Basic256Sha256,
            SecurityPolicy::Aes128Sha256RsaOaep => UaPolicy::Aes128Sha256RsaOaep,
            SecurityPolicy::Aes256Sha256RsaPss => UaPolicy::Aes256Sha256RsaPss,
        };
        for (mode, ua_mode) in [
            ("sign", MessageSecurityMode::Sign),
            ("sign_encrypt", MessageSecurityMode::SignAndEncrypt),
        ] {
            out.push((
                format!("{}_{mode}", ua_policy.to_str().to_lowercase()),
                ServerEndpoint::new(path, ua_policy, ua_mode, &tokens),
            ));
        }
    }
    out
}

/// The user the site file names, as the simulator's user token (id `site-user`): the
/// password from the same environment variable the connector reads it from.
pub(crate) fn user_tokens(site: &Site) -> Result<Vec<(String, ServerUserToken)>, SimError> {
    let id = "site-user".to_string();
    Ok(match &site.security.user {
        UserIdentity::Anonymous => Vec::new(),
        UserIdentity::Username { name, password_env } => {
            let password = std::env::var(password_env).map_err(|_| {
                SimError::Options(format!(
                    "site {}: the password of user `{name}` is read from the environment \
                     variable `{password_env}`, which is not set",
                    site.id
                ))
            })?;
            vec![(id, ServerUserToken::user_pass(name.clone(), password))]
        }
        UserIdentity::X509 { certificate, .. } => {
            vec![(id, ServerUserToken::x509("x509-user", certificate))]
        }
    })
}

/// The namespaces the site's nodes live in: its own first, then any other a signal names.
pub(crate) fn namespace_uris(site: &Site) -> Vec<String> {
    let mut uris = vec![site.namespace_uri.clone()];
    for (_, _, s) in site.signals() {
        if !uris.contains(&s.node.namespace_uri) {
            uris.push(s.node.namespace_uri.clone());
        }
    }
    uris
}

/// An empty node-set import that only registers namespaces. The simple node manager takes
/// one namespace, or the namespaces of its imports; this is how one manager owns several.
#[derive(Debug)]
pub(crate) struct SiteNamespaces(pub(crate) Vec<String>);

impl NodeSetImport for SiteNamespaces {
    fn register_namespaces(&self, namespaces: &mut NodeSetNamespaceMapper<'_>) {
        for (i, uri) in self.0.iter().enumerate() {
            let index = u16::try_from(i + 1).unwrap_or(u16::MAX);
            namespaces.add_namespace(uri, index);
        }
    }

    fn get_own_namespaces(&self) -> Vec<String> {
        self.0.clone()
    }

    fn load<'a>(
        &'a self,
        _namespaces: &'a NodeSetNamespaceMapper<'_>,
    ) -> Box<dyn Iterator<Item = ImportedItem> + 'a> {
        Box::new(std::iter::empty())
    }
}

/// Builds the server `builder` describes, serving the site's namespaces from one
/// `SimpleNodeManager` (returned, for the address space to be filled).
pub(crate) fn build(
    builder: ServerBuilder,
    url: &str,
    pki_dir: PathBuf,
    limits: Limits,
    site: &Site,
    manager_name: &str,
) -> Result<(Server, ServerHandle, Arc<SimpleNodeManager>), SimError> {
    let server_error = |message: String| SimError::Server {
        endpoint: url.to_string(),
        message,
    };
    let (server, handle) = builder
        .discovery_urls(vec![url.to_string()])
        .pki_dir(pki_dir)
        .limits(limits)
        .with_node_manager(simple_node_manager_imports(
            vec![Box::new(SiteNamespaces(namespace_uris(site)))],
            manager_name,
        ))
        .build()
        .map_err(server_error)?;
    let manager = handle
        .node_managers()
        .get_of_type::<SimpleNodeManager>()
        .ok_or_else(|| server_error(format!("the node manager {manager_name} is missing")))?;
    Ok((server, handle, manager))
}

/// The OPC UA node id of a signal, its namespace resolved to the server's index.
pub(crate) fn node_id(
    signal: &Signal,
    index_of: &impl Fn(&str) -> Option<u16>,
) -> Result<NodeId, SimError> {
    let ns = index_of(&signal.node.namespace_uri).ok_or_else(|| SimError::AddressSpace {
        node: signal.node.to_string(),
        reason: "its namespace is not registered on the server".into(),
    })?;
    Ok(match &signal.node.identifier {
        NodeIdentifier::String(s) => NodeId::new(ns, s.clone()),
        NodeIdentifier::Numeric(i) => NodeId::new(ns, *i),
    })
}

pub(crate) fn data_type_id(data_type: DataType) -> DataTypeId {
    match data_type {
        DataType::Double => DataTypeId::Double,
        DataType::Int => DataTypeId::Int64,
        DataType::Bool => DataTypeId::Boolean,
        DataType::String => DataTypeId::String,
    }
}

/// A model value as the variant of the signal's OPC UA data type.
pub(crate) fn variant(value: &Value) -> Variant {
    match value {
        Value::Float(x) => Variant::Double(*x),
        Value::Int(i) => Variant::Int64(*i),
        Value::Bool(b) => Variant::Boolean(*b),
        Value::Text(s) => Variant::String(UAString::from(s.as_str())),
        Value::Null => Variant::Empty,
    }
}

/// A written variant as a model value; `None` for types a signal never has.
pub(crate) fn value_of(variant: &Variant) -> Option<Value> {
    Some(match variant {
        Variant::Double(x) => Value::Float(*x),
        Variant::Float(x) => Value::Float(f64::from(*x)),
        Variant::Int64(i) => Value::Int(*i),
        Variant::Int32(i) => Value::Int(i64::from(*i)),
        Variant::Int16(i) => Value::Int(i64::from(*i)),
        Variant::SByte(i) => Value::Int(i64::from(*i)),
        Variant::UInt64(i) => Value::Int(i64::try_from(*i).ok()?),
        Variant::UInt32(i) => Value::Int(i64::from(*i)),
        Variant::UInt16(i) => Value::Int(i64::from(*i)),
        Variant::Byte(i) => Value::Int(i64::from(*i)),
        Variant::Boolean(b) => Value::Bool(*b),
        Variant::String(s) => Value::Text(s.as_ref().to_string()),
        _ => return None,
    })
}

pub(crate) fn status_of(error: &WriteError) -> StatusCode {
    match error {
        WriteError::UnknownSignal(_) => StatusCode::BadNodeIdUnknown,
        WriteError::NotWritable { .. } => StatusCode::BadNotWritable,
        WriteError::NotANumber { .. } => StatusCode::BadTypeMismatch,
        WriteError::OutOfRange { .. } => StatusCode::BadOutOfRange,
    }
}

/// Builds the folder tree and one variable per signal; returns the variables' node ids in
/// `site.signals()` order.
pub(crate) fn build_address_space(
    site: &Site,
    manager: &SimpleNodeManager,
    index_of: &impl Fn(&str) -> Option<u16>,
    initial: &[Value],
) -> Result<Vec<NodeId>, SimError> {
    let site_ns = index_of(&site.namespace_uri).ok_or_else(|| SimError::AddressSpace {
        node: site.namespace_uri.clone(),
        reason: "the site's namespace is not registered on the server".into(),
    })?;
    let mut space = manager.address_space().write();
    let mut folders = BTreeSet::new();
    // Browse names are the ids (stable, what paths are built from); display names the names.
    let mut folder = |space: &mut opcua::server::address_space::AddressSpace,
                      path: String,
                      (browse, display): (&str, &str),
                      parent: &NodeId|
     -> Result<NodeId, SimError> {
        let id = NodeId::new(site_ns, path.clone());
        if !folders.contains(&path) {
            if !space.add_folder(&id, QualifiedName::new(site_ns, browse), display, parent) {
                return Err(SimError::AddressSpace {
                    node: format!("nsu={};s={path}", site.namespace_uri),
                    reason: "cannot add the folder: a node with this id exists".into(),
                });
            }
            folders.insert(path);
        }
        Ok(id)
    };

    let site_folder = folder(
        &mut space,
        site.id.clone(),
        (&site.id, &site.name),
        &NodeId::objects_folder_id(),
    )?;
    let mut nodes = Vec::with_capacity(site.signal_count());
    let mut values = initial.iter();
    for line in &site.lines {
        let area_name =
            site.areas
                .iter()
                .find(|a| a.id == line.area)
                .map_or(line.area.as_str(), |a| {
                    if a.name.is_empty() {
                        a.id.as_str()
                    } else {
                        a.name.as_str()
                    }
                });
        let area_folder = folder(
            &mut space,
            format!("{}/{}", site.id, line.area),
            (&line.area, area_name),
            &site_folder,
        )?;
        let line_folder = folder(
            &mut space,
            format!("{}/{}/{}", site.id, line.area, line.id),
            (&line.id, &line.name),
            &area_folder,
        )?;
        for equipment in &line.equipment {
            let equipment_folder = folder(
                &mut space,
                format!("{}/{}/{}/{}", site.id, line.area, line.id, equipment.id),
                (&equipment.id, &equipment.name),
                &line_folder,
            )?;
            for signal in &equipment.signals {
                let id = node_id(signal, index_of)?;
                let value = values.next().map(variant).unwrap_or(Variant::Empty);
                let display = if signal.description.is_empty() {
                    signal.id.as_str()
                } else {
                    signal.description.as_str()
                };
                let description = if signal.unit.is_empty() {
                    format!("{display} [{}]", signal.category)
                } else {
                    format!("{display} ({}) [{}]", signal.unit, signal.category)
                };
                let mut builder = VariableBuilder::new(
                    &id,
                    QualifiedName::new(id.namespace, signal.id.as_str()),
                    display,
                )
                .description(LocalizedText::from(description.as_str()))
                .data_type(data_type_id(signal.data_type))
                .value(value)
                .access_level(AccessLevel::CURRENT_READ)
                .user_access_level(AccessLevel::CURRENT_READ)
                .organized_by(&equipment_folder);
                if signal.id.ends_with("_sp") {
                    builder = builder.writable();
                }
                if !builder.insert(&mut *space) {
                    return Err(SimError::AddressSpace {
                        node: signal.node.to_string(),
                        reason: format!(
                            "cannot add the variable of {}/{}/{}: a node with this id exists",
                            line.id, equipment.id, signal.id
                        ),
                    });
                }
                nodes.push(id);
            }
        }
    }
    Ok(nodes)
}

/// The data value a tick publishes: the value with source and server time = wall clock, so
/// that freshness holds at any simulation speed.
pub(crate) fn data_value(value: &Value, now: DateTime) -> DataValue {
    if value.is_null() {
        // What a field device's server sends for a failed sensor: the status, its time, no
        // value. A null variant rather than no variant: async-opcua reads a variable whose
        // value is absent as Good, dropping the status.
        return DataValue {
            value: Some(Variant::Empty),
            status: Some(StatusCode::BadSensorFailure),
            source_timestamp: Some(now),
            server_timestamp: Some(now),
            ..Default::default()
        };
    }
    DataValue::new_at(variant(value), now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_taken_apart() {
        let e = Endpoint::parse("opc.tcp://127.0.0.1:48410/").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("127.0.0.1", 48410, "/")
        );
        let e = Endpoint::parse("opc.tcp://[::1]:4841/plant/ua").unwrap();
        assert_eq!(
            (e.bind_host(), e.port, e.path.as_str()),
            ("::1", 4841, "/plant/ua")
        );
        assert_eq!(e.url(), "opc.tcp://[::1]:4841/plant/ua");
        assert_eq!(Endpoint::parse("opc.tcp://plant").unwrap().port, 4840);
        assert!(Endpoint::parse("http://127.0.0.1:80/").is_err());
        assert!(Endpoint::parse("opc.tcp://127.0.0.1:99999/").is_err());
    }

    #[test]
    fn written_variants_become_model_values() {
        assert_eq!(value_of(&Variant::Float(2.5)), Some(Value::Float(2.5)));
        assert_eq!(value_of(&Variant::Int32(-3)), Some(Value::Int(-3)));
        assert_eq!(value_of(&Variant::UInt64(u64::MAX)), None);
        assert_eq!(variant(&Value::Int(7)), Variant::Int64(7));
    }
}
