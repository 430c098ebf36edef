//! Browsing a server's address space: the tree below a node along the hierarchical
//! references, with each variable's data type and current value — what a person needs to
//! write a site file for a server they have not seen before.
//!
//! Ids are given by namespace URI (`nsu=…;s=…`), as site files address nodes. The server's
//! own limits are kept: nodes per Browse and per Read call (`MaxNodesPerBrowse`,
//! `MaxNodesPerRead`) and the continuation points it can hold at once; references beyond
//! what it returns in one answer are fetched with BrowseNext.

use std::{
    collections::{HashMap, HashSet},
    fmt,
};

use opcua::types::{
    AttributeId, BrowseDescription, BrowseDirection, BrowseResultMask, ByteString, DataValue,
    ExpandedNodeId, Identifier, NodeClass, NodeId, ReadValueId, ReferenceDescription,
    ReferenceTypeId, StatusCode, TimestampsToReturn, VariableId, Variant,
};
use tracing::{debug, info_span, Instrument};

use model::{DataType, NodeAddress, NodeIdentifier, Security, Value};

use super::{
    client::{connect_once, namespace_index, read_limits, read_namespaces, OneShot},
    config::SourceOptions,
    convert::{node_id, variant_to_value},
    error::{status_name, ConnectorError},
};

/// OPC UA's own namespace (index 0 on every server).
pub const OPC_UA_NAMESPACE: &str = "http://opcfoundation.org/UA/";

/// Nodes per Browse or Read call when the server publishes no limit: small enough for any
/// server's message size, large enough that a few thousand variables take a few calls.
const DEFAULT_NODES_PER_CALL: usize = 500;

/// What to browse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowseRequest {
    /// Where to start; the Objects folder (`i=85`) when `None`.
    pub root: Option<NodeAddress>,
    /// Levels below the root to browse (0: the root alone).
    pub depth: u32,
    /// References asked per node in one answer (0: as many as the server will send); the
    /// rest come through continuation points.
    pub max_references_per_node: u32,
}

impl Default for BrowseRequest {
    fn default() -> Self {
        BrowseRequest {
            root: None,
            depth: 3,
            max_references_per_node: 0,
        }
    }
}

/// The tree found below the root; children in the order of their browse names.
#[derive(Debug, Clone)]
pub struct AddressTree {
    pub endpoint: String,
    /// The server's namespace array, index → URI.
    pub namespaces: Vec<String>,
    pub depth: u32,
    pub root: BrowsedNode,
}

/// A node's class, as OPC UA names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Object,
    Variable,
    Method,
    ObjectType,
    VariableType,
    ReferenceType,
    DataType,
    View,
    Unspecified,
}

impl From<NodeClass> for NodeKind {
    fn from(c: NodeClass) -> Self {
        match c {
            NodeClass::Object => NodeKind::Object,
            NodeClass::Variable => NodeKind::Variable,
            NodeClass::Method => NodeKind::Method,
            NodeClass::ObjectType => NodeKind::ObjectType,
            NodeClass::VariableType => NodeKind::VariableType,
            NodeClass::ReferenceType => NodeKind::ReferenceType,
            NodeClass::DataType => NodeKind::DataType,
            NodeClass::View => NodeKind::View,
            NodeClass::Unspecified => NodeKind::Unspecified,
        }
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a node's children are, or are not, in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expansion {
    /// Browsed: `children` is all it has.
    Browsed,
    /// At the depth limit: not browsed.
    DepthLimit,
    /// Already in the tree at another place (a node organised by two folders, or a loop):
    /// its children are shown there.
    Repeated,
    /// The server refused to browse it (the status).
    Failed(String),
}

/// One node of the tree.
#[derive(Debug, Clone)]
pub struct BrowsedNode {
    /// `nsu=<uri>;s=<id>` (or `i=`, `g=`, `b=`): the text form site files use.
    pub id: String,
    /// The same as a site file's address; `None` for GUID and opaque ids, which site files
    /// cannot name.
    pub address: Option<NodeAddress>,
    pub browse_name: String,
    pub display_name: String,
    pub kind: NodeKind,
    /// Reached through `HasProperty` (metadata of its parent, such as `EURange`) rather than
    /// as a component or an organised node.
    pub is_property: bool,
    /// A variable's data type and value; `None` for other nodes.
    pub variable: Option<VariableInfo>,
    pub children: Vec<BrowsedNode>,
    pub expansion: Expansion,
}

/// What was read of a variable.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableInfo {
    /// The data type's browse name (`Double`, `Int64`, …) or id when it has none.
    pub data_type: String,
    /// The site file's data type the connector would read it as.
    pub model_type: DataType,
    /// `-1` scalar, `1` one-dimensional array, … (OPC UA's ValueRank).
    pub value_rank: i32,
    /// The current value, as the connector would store it; `None` when the server sent none.
    pub value: Option<Value>,
    /// The value's status, e.g. `Good` or `BadSensorFailure`.
    pub status: String,
}

impl BrowsedNode {
    /// Every node of the subtree, depth first, with its ancestors below this node.
    pub fn walk(&self) -> Vec<(Vec<&BrowsedNode>, &BrowsedNode)> {
        fn go<'a>(
            node: &'a BrowsedNode,
            path: &mut Vec<&'a BrowsedNode>,
            out: &mut Vec<(Vec<&'a BrowsedNode>, &'a BrowsedNode)>,
        ) {
            for child in &node.children {
                out.push((path.clone(), child));
                path.push(child);
                go(child, path, out);
                path.pop();
            }
        }
        let mut out = Vec::new();
        go(self, &mut Vec::new(), &mut out);
        out
    }
}

impl fmt::Display for AddressTree {
    /// One node a line, indented two spaces a level:
    /// `browse name [Class] id "Display name"  DataType = value`; `…` marks nodes the depth
    /// limit left unbrowsed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn line(f: &mut fmt::Formatter<'_>, n: &BrowsedNode, level: usize) -> fmt::Result {
            write!(
                f,
                "{:indent$}{} [{}] {}",
                "",
                n.browse_name,
                n.kind,
                n.id,
                indent = level * 2
            )?;
            if !n.display_name.is_empty() && n.display_name != n.browse_name {
                write!(f, " {:?}", n.display_name)?;
            }
            if let Some(v) = &n.variable {
                write!(f, "  {}", v.data_type)?;
                if v.value_rank > 0 {
                    write!(f, "[]")?;
                }
                match &v.value {
                    Some(value) if v.status == "Good" => write!(f, " = {}", shown(value))?,
                    Some(value) => write!(f, " = {} ({})", shown(value), v.status)?,
                    None if v.status == "Good" => write!(f, " = (null)")?,
                    None => write!(f, " = ({})", v.status)?,
                }
            }
            match &n.expansion {
                Expansion::Browsed => {}
                Expansion::DepthLimit if n.kind != NodeKind::Variable => write!(f, "  …")?,
                Expansion::DepthLimit => {}
                Expansion::Repeated => write!(f, "  (shown above)")?,
                Expansion::Failed(status) => write!(f, "  (not browsable: {status})")?,
            }
            writeln!(f)?;
            n.children
                .iter()
                .try_for_each(|child| line(f, child, level + 1))
        }
        line(f, &self.root, 0)
    }
}

/// A value for one line of the tree: text quoted, long text cut.
fn shown(value: &Value) -> String {
    const MOST: usize = 80;
    let text = match value {
        Value::Text(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if text.chars().count() > MOST {
        format!("{}…", text.chars().take(MOST).collect::<String>())
    } else {
        text
    }
}

/// Browses `endpoint` as `request` says, over a session secured as `security` says (PKI
/// folder from `security`, else `opts`).
pub async fn browse(
    endpoint: &str,
    security: &Security,
    opts: &SourceOptions,
    request: &BrowseRequest,
) -> Result<AddressTree, ConnectorError> {
    let span = info_span!("opcua_browse", endpoint);
    async {
        let conn = connect_once(endpoint, opts, security).await?;
        let result = Browser::new(&conn, request).await;
        let tree = match result {
            Ok(mut browser) => browser.run(request).await,
            Err(e) => Err(e),
        };
        conn.close().await;
        tree
    }
    .instrument(span)
    .await
}

/// A node found, before the tree is built.
struct Found {
    node: NodeId,
    browse_name: String,
    display_name: String,
    kind: NodeKind,
    is_property: bool,
    children: Vec<usize>,
    expansion: Expansion,
}

struct Browser<'a> {
    conn: &'a OneShot,
    namespaces: Vec<String>,
    nodes_per_browse: usize,
    nodes_per_read: usize,
    found: Vec<Found>,
}

impl<'a> Browser<'a> {
    async fn new(conn: &'a OneShot, request: &BrowseRequest) -> Result<Self, ConnectorError> {
        let namespaces = read_namespaces(&conn.session, &conn.endpoint).await?;
        let limits = read_limits(
            &conn.session,
            &[
                VariableId::Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse,
                VariableId::Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
                VariableId::Server_ServerCapabilities_MaxBrowseContinuationPoints,
            ],
        )
        .await;
        let limit = |i: usize| limits.get(i).copied().flatten().map(|n| n as usize);
        // Each node browsed in one call may leave a continuation point on the server, so a
        // call browses no more nodes than the server can hold points for.
        let nodes_per_browse = [limit(0), limit(2)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(DEFAULT_NODES_PER_CALL);
        let nodes_per_read = limit(1).unwrap_or(DEFAULT_NODES_PER_CALL);
        debug!(
            nodes_per_browse,
            nodes_per_read,
            max_references = request.max_references_per_node,
            "browse limits"
        );
        Ok(Browser {
            conn,
            namespaces,
            nodes_per_browse,
            nodes_per_read,
            found: Vec::new(),
        })
    }

    fn endpoint(&self) -> &str {
        &self.conn.endpoint
    }

    async fn run(&mut self, request: &BrowseRequest) -> Result<AddressTree, ConnectorError> {
        let (root, root_text) = match &request.root {
            Some(address) => {
                let ns =
                    namespace_index(&self.namespaces, &address.namespace_uri).ok_or_else(|| {
                        ConnectorError::NamespaceUnknown {
                            endpoint: self.endpoint().to_string(),
                            node: address.to_string(),
                            uri: address.namespace_uri.clone(),
                            available: self.namespaces.join(", "),
                        }
                    })?;
                (node_id(address, ns), address.to_string())
            }
            None => {
                let id = NodeId::objects_folder_id();
                let text = self.text_id(&id);
                (id, text)
            }
        };
        self.read_root(root.clone(), &root_text).await?;
        let mut seen: HashSet<NodeId> = HashSet::from([root]);
        let mut level = vec![0usize];
        for _ in 0..request.depth {
            if level.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for chunk in level.chunks(self.nodes_per_browse.max(1)) {
                let ids: Vec<NodeId> = chunk.iter().map(|&i| self.found[i].node.clone()).collect();
                let answers = self
                    .browse_nodes(&ids, request.max_references_per_node)
                    .await?;
                for (&parent, answer) in chunk.iter().zip(answers) {
                    let references = match answer {
                        Ok(references) => references,
                        Err(status) => {
                            self.found[parent].expansion = Expansion::Failed(status_name(status));
                            continue;
                        }
                    };
                    for r in references {
                        let Some(child) = self.local_node(&r.node_id) else {
                            // On another server: not ours to browse.
                            continue;
                        };
                        let repeated = !seen.insert(child.clone());
                        let index = self.found.len();
                        self.found.push(Found {
                            node: child,
                            browse_name: r.browse_name.name.as_ref().to_string(),
                            display_name: r.display_name.text.as_ref().to_string(),
                            kind: r.node_class.into(),
                            is_property: r.reference_type_id == ReferenceTypeId::HasProperty,
                            children: Vec::new(),
                            expansion: if repeated {
                                Expansion::Repeated
                            } else {
                                Expansion::DepthLimit
                            },
                        });
                        self.found[parent].children.push(index);
                        if !repeated {
                            next.push(index);
                        }
                    }
                    self.found[parent].expansion = Expansion::Browsed;
                }
            }
            level = next;
        }
        let variables = self.read_variables().await?;
        Ok(AddressTree {
            endpoint: self.endpoint().to_string(),
            namespaces: self.namespaces.clone(),
            depth: request.depth,
            root: self.build(0, &variables),
        })
    }

    /// Reads the root's class and names; an unknown root is an error naming it.
    async fn read_root(&mut self, root: NodeId, text: &str) -> Result<(), ConnectorError> {
        let reads: Vec<ReadValueId> = [
            AttributeId::NodeClass,
            AttributeId::BrowseName,
            AttributeId::DisplayName,
        ]
        .into_iter()
        .map(|a| ReadValueId::new(root.clone(), a))
        .collect();
        let values = self
            .conn
            .session
            .read(&reads, TimestampsToReturn::Neither, 0.0)
            .await
            .map_err(|e| ConnectorError::service(self.endpoint(), "reading the root node", &e))?;
        let status = values.first().map_or(StatusCode::BadUnexpectedError, |dv| {
            dv.status.unwrap_or(StatusCode::Good)
        });
        let kind = match values.first().and_then(|dv| dv.value.as_ref()) {
            Some(Variant::Int32(c)) if status.is_good() => NodeClass::try_from(*c)
                .map(NodeKind::from)
                .unwrap_or(NodeKind::Unspecified),
            _ => {
                return Err(ConnectorError::Node {
                    endpoint: self.endpoint().to_string(),
                    node: text.to_string(),
                    operation: "browse",
                    status: status_name(status),
                })
            }
        };
        let text_of = |i: usize| match values.get(i).and_then(|dv| dv.value.as_ref()) {
            Some(Variant::QualifiedName(q)) => q.name.as_ref().to_string(),
            Some(Variant::LocalizedText(t)) => t.text.as_ref().to_string(),
            _ => String::new(),
        };
        self.found.push(Found {
            node: root,
            browse_name: text_of(1),
            display_name: text_of(2),
            kind,
            is_property: false,
            children: Vec::new(),
            expansion: Expansion::DepthLimit,
        });
        Ok(())
    }

    /// The forward hierarchical references of each node: all of them, following
    /// continuation points; a node the server will not browse has its status instead.
    async fn browse_nodes(
        &self,
        nodes: &[NodeId],
        max_references: u32,
    ) -> Result<Vec<Result<Vec<ReferenceDescription>, StatusCode>>, ConnectorError> {
        let service =
            |e: opcua::types::Error| ConnectorError::service(self.endpoint(), "browse", &e);
        let mut answers: Vec<Result<Vec<ReferenceDescription>, StatusCode>> =
            vec![Ok(Vec::new()); nodes.len()];
        let mut to_browse: Vec<usize> = (0..nodes.len()).collect();
        let mut rounds_without_points = 0;
        while !to_browse.is_empty() {
            let descriptions: Vec<BrowseDescription> = to_browse
                .iter()
                .map(|&i| BrowseDescription {
                    node_id: nodes[i].clone(),
                    browse_direction: BrowseDirection::Forward,
                    reference_type_id: ReferenceTypeId::HierarchicalReferences.into(),
                    include_subtypes: true,
                    node_class_mask: 0,
                    result_mask: BrowseResultMask::All as u32,
                })
                .collect();
            let results = self
                .conn
                .session
                .browse(&descriptions, max_references, None)
                .await
                .map_err(service)?;
            let mut pending: Vec<(usize, ByteString)> = Vec::new();
            let mut again = Vec::new();
            for (&i, result) in to_browse.iter().zip(results) {
                self.take(&mut answers[i], result, i, &mut pending, &mut again);
            }
            while !pending.is_empty() {
                let points: Vec<ByteString> = pending.iter().map(|(_, p)| p.clone()).collect();
                let results = self
                    .conn
                    .session
                    .browse_next(false, &points)
                    .await
                    .map_err(service)?;
                let mut still = Vec::new();
                for ((i, _), result) in pending.iter().zip(results) {
                    self.take(&mut answers[*i], result, *i, &mut still, &mut again);
                }
                pending = still;
            }
            // Nodes refused for want of continuation points are browsed again once the
            // others' points are released; a server that never has one gives up after a
            // few rounds rather than looping.
            if !again.is_empty() {
                rounds_without_points += 1;
                if rounds_without_points > 3 {
                    for &i in &again {
                        answers[i] = Err(StatusCode::BadNoContinuationPoints);
                    }
                    again.clear();
                }
            }
            to_browse = again;
        }
        Ok(answers)
    }

    fn take(
        &self,
        answer: &mut Result<Vec<ReferenceDescription>, StatusCode>,
        result: opcua::types::BrowseResult,
        i: usize,
        pending: &mut Vec<(usize, ByteString)>,
        again: &mut Vec<usize>,
    ) {
        if result.status_code == StatusCode::BadNoContinuationPoints {
            again.push(i);
            return;
        }
        if !result.status_code.is_good() {
            *answer = Err(result.status_code);
            return;
        }
        if let Ok(references) = answer {
            references.extend(result.references.unwrap_or_default());
        }
        if !result.continuation_point.is_null_or_empty() {
            pending.push((i, result.continuation_point));
        }
    }

    /// Data type, value rank and value of every variable found, read in batches of the
    /// server's MaxNodesPerRead; then the data types' names.
    async fn read_variables(&self) -> Result<HashMap<NodeId, VariableInfo>, ConnectorError> {
        let mut variables: Vec<&NodeId> = Vec::new();
        let mut unique = HashSet::new();
        for f in &self.found {
            if f.kind == NodeKind::Variable && unique.insert(&f.node) {
                variables.push(&f.node);
            }
        }
        const ATTRIBUTES: [AttributeId; 3] = [
            AttributeId::Value,
            AttributeId::DataType,
            AttributeId::ValueRank,
        ];
        let per_call = (self.nodes_per_read / ATTRIBUTES.len()).max(1);
        let mut read: Vec<(&NodeId, Vec<DataValue>)> = Vec::with_capacity(variables.len());
        for chunk in variables.chunks(per_call) {
            let reads: Vec<ReadValueId> = chunk
                .iter()
                .flat_map(|n| ATTRIBUTES.map(|a| ReadValueId::new((*n).clone(), a)))
                .collect();
            let values = self.read(&reads).await?;
            let mut values = values.into_iter();
            for n in chunk {
                read.push((*n, values.by_ref().take(ATTRIBUTES.len()).collect()));
            }
        }
        let data_type = |values: &[DataValue]| match values.get(1).and_then(|dv| dv.value.as_ref())
        {
            Some(Variant::NodeId(id)) => Some((**id).clone()),
            _ => None,
        };
        let mut types: Vec<NodeId> = read
            .iter()
            .filter_map(|(_, values)| data_type(values))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        types.sort_by_key(|id| id.to_string());
        let mut type_names: HashMap<NodeId, String> = HashMap::new();
        for chunk in types.chunks(self.nodes_per_read.max(1)) {
            let reads: Vec<ReadValueId> = chunk
                .iter()
                .map(|id| ReadValueId::new(id.clone(), AttributeId::BrowseName))
                .collect();
            for (id, dv) in chunk.iter().zip(self.read(&reads).await?) {
                if let Some(Variant::QualifiedName(q)) = dv.value {
                    type_names.insert(id.clone(), q.name.as_ref().to_string());
                }
            }
        }
        Ok(read
            .into_iter()
            .map(|(node, values)| {
                let type_id = data_type(&values);
                let value_dv = values.first();
                let variant = value_dv.and_then(|dv| dv.value.as_ref());
                let value_rank = match values.get(2).and_then(|dv| dv.value.as_ref()) {
                    Some(Variant::Int32(r)) => *r,
                    _ => -1,
                };
                let info = VariableInfo {
                    data_type: match &type_id {
                        Some(id) => type_names
                            .get(id)
                            .cloned()
                            .unwrap_or_else(|| self.text_id(id)),
                        None => "?".into(),
                    },
                    model_type: model_type(type_id.as_ref(), value_rank, variant),
                    value_rank,
                    value: variant.and_then(variant_to_value),
                    status: status_name(
                        value_dv
                            .and_then(|dv| dv.status)
                            .unwrap_or(StatusCode::BadNoData),
                    ),
                };
                (node.clone(), info)
            })
            .collect())
    }

    async fn read(&self, reads: &[ReadValueId]) -> Result<Vec<DataValue>, ConnectorError> {
        let values = self
            .conn
            .session
            .read(reads, TimestampsToReturn::Neither, 0.0)
            .await
            .map_err(|e| ConnectorError::service(self.endpoint(), "read", &e))?;
        if values.len() != reads.len() {
            return Err(ConnectorError::Service {
                endpoint: self.endpoint().to_string(),
                operation: "read",
                status: "BadUnknownResponse".into(),
                message: format!("{} results for {} nodes", values.len(), reads.len()),
            });
        }
        Ok(values)
    }

    /// A reference's target as a node id of this server; `None` when it is on another.
    fn local_node(&self, target: &ExpandedNodeId) -> Option<NodeId> {
        if target.server_index != 0 {
            return None;
        }
        let mut id = target.node_id.clone();
        if !target.namespace_uri.is_null() {
            id.namespace = namespace_index(&self.namespaces, target.namespace_uri.as_ref())?;
        }
        Some(id)
    }

    /// `nsu=<uri>;<identifier>`; a namespace index the server does not list stays `ns=`.
    fn text_id(&self, id: &NodeId) -> String {
        match self.namespaces.get(usize::from(id.namespace)) {
            Some(uri) => format!("nsu={uri};{}", id.identifier),
            None => id.to_string(),
        }
    }

    fn address(&self, id: &NodeId) -> Option<NodeAddress> {
        let namespace_uri = self.namespaces.get(usize::from(id.namespace))?.clone();
        let identifier = match &id.identifier {
            Identifier::Numeric(n) => NodeIdentifier::Numeric(*n),
            Identifier::String(s) if !s.is_empty() => NodeIdentifier::String(s.as_ref().into()),
            _ => return None,
        };
        Some(NodeAddress {
            namespace_uri,
            identifier,
        })
    }

    fn build(&self, index: usize, variables: &HashMap<NodeId, VariableInfo>) -> BrowsedNode {
        let f = &self.found[index];
        let mut children: Vec<BrowsedNode> = f
            .children
            .iter()
            .map(|&c| self.build(c, variables))
            .collect();
        // Servers answer in any order (async-opcua's differs from one call to the next): by
        // name, the same server prints the same tree.
        children.sort_by(|a, b| (&a.browse_name, &a.id).cmp(&(&b.browse_name, &b.id)));
        BrowsedNode {
            id: self.text_id(&f.node),
            address: self.address(&f.node),
            browse_name: f.browse_name.clone(),
            display_name: f.display_name.clone(),
            kind: f.kind,
            is_property: f.is_property,
            variable: (f.kind == NodeKind::Variable)
                .then(|| variables.get(&f.node).cloned())
                .flatten(),
            children,
            expansion: f.expansion.clone(),
        }
    }
}

/// The site file's data type of a variable: from its OPC UA data type when that is one of
/// the built-in scalars, else from the value it holds. Arrays, dates and structures are read
/// as text by the connector.
fn model_type(data_type: Option<&NodeId>, value_rank: i32, value: Option<&Variant>) -> DataType {
    if value_rank > 0 || matches!(value, Some(Variant::Array(_))) {
        return DataType::String;
    }
    if let Some(NodeId {
        namespace: 0,
        identifier: Identifier::Numeric(n),
    }) = data_type
    {
        // Boolean 1; SByte … UInt64 2–9, Integer 27, UInteger 28; Float 10, Double 11,
        // Number 26; String 12.
        match *n {
            1 => return DataType::Bool,
            2..=9 | 27 | 28 => return DataType::Int,
            10 | 11 | 26 => return DataType::Double,
            12 => return DataType::String,
            _ => {}
        }
    }
    match value {
        Some(Variant::Boolean(_)) => DataType::Bool,
        Some(
            Variant::SByte(_)
            | Variant::Byte(_)
            | Variant::Int16(_)
            | Variant::UInt16(_)
            | Variant::Int32(_)
            | Variant::UInt32(_)
            | Variant::Int64(_)
            | Variant::UInt64(_),
        ) => DataType::Int,
        Some(Variant::Float(_) | Variant::Double(_)) => DataType::Double,
        _ => DataType::String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_types_map_to_the_site_file_types() {
        let ns0 = |n: u32| NodeId::new(0, n);
        assert_eq!(model_type(Some(&ns0(11)), -1, None), DataType::Double);
        assert_eq!(model_type(Some(&ns0(8)), -1, None), DataType::Int);
        assert_eq!(model_type(Some(&ns0(1)), -1, None), DataType::Bool);
        assert_eq!(model_type(Some(&ns0(12)), -1, None), DataType::String);
        // An abstract type says nothing: the value does.
        assert_eq!(
            model_type(Some(&ns0(24)), -1, Some(&Variant::Int32(3))),
            DataType::Int
        );
        assert_eq!(model_type(Some(&ns0(11)), 1, None), DataType::String);
        assert_eq!(model_type(Some(&ns0(13)), -1, None), DataType::String);
    }

    #[test]
    fn long_values_are_cut_and_text_quoted() {
        assert_eq!(shown(&Value::Text("EXECUTE".into())), "\"EXECUTE\"");
        assert_eq!(shown(&Value::Float(2.5)), "2.5");
        assert!(shown(&Value::Text("x".repeat(500))).ends_with('…'));
    }
}
