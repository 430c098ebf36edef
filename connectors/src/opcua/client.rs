//! Sessions to an OPC UA server: building the client, connecting, resolving namespace URIs,
//! reading server limits, and the one-shot [`read_value`] / [`write_value`].

use std::{path::PathBuf, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use opcua::{
    client::{
        transport::Connector, Client, ClientBuilder, ClientEndpoint, IdentityToken, Session,
        SessionEventLoop,
    },
    crypto::{CertificateStore, SecurityPolicy},
    types::{
        AttributeId, DataValue, NodeId, NumericRange, ReadValueId, StatusCode, TimestampsToReturn,
        UAString, VariableId, Variant, WriteValue,
    },
};
use tracing::{debug, info_span, Instrument};

use model::{NodeAddress, Quality, Security, UserIdentity, Value};

use super::{
    config::SourceOptions,
    convert::{
        node_id, security_mode, security_policy, ua_time, value_to_variant, variant_to_value,
    },
    error::{status_name, ConnectorError},
};

/// How long a one-shot read or write may take to connect before giving up.
const ONE_SHOT_CONNECT: Duration = Duration::from_secs(10);
/// How long closing a session may take; a server that went away cannot answer at all.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether the session keeps reconnecting by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retries {
    Forever,
    None,
}

pub(crate) fn build_client(
    opts: &SourceOptions,
    security: &Security,
    endpoint: &str,
    retries: Retries,
) -> Result<Client, ConnectorError> {
    // Every source builds two clients on the same PKI folder at start: unserialised, one
    // writes the new certificate while another, seeing the key still missing, fails to
    // write its own and is left without any (seen with three secured sites in the demo).
    static MAKING_CERTIFICATE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = MAKING_CERTIFICATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    ClientBuilder::new()
        // Declared so that the builder does not warn about a config without endpoints;
        // sessions are made from the server's own endpoint description.
        .endpoint("site", ClientEndpoint::new(endpoint))
        .default_endpoint("site")
        .application_name("PharmaTwin connector")
        .application_uri("urn:pharmatwin:connector")
        .product_uri("urn:pharmatwin")
        .pki_dir(pki_dir(opts, security))
        // The application instance certificate is made on the first start and kept in the
        // PKI folder (servers trust it by its thumbprint, so it must not change). Unsecured
        // sessions do not use it, but without one the stack logs three errors per connect,
        // which an operator cannot tell from real ones; the key costs 0.3 s once.
        .create_sample_keypair(true)
        // Unknown server certificates go to `rejected/` for an administrator to judge.
        .trust_server_certs(false)
        .verify_server_certs(true)
        .session_retry_limit(match retries {
            Retries::Forever => -1,
            Retries::None => 0,
        })
        .session_retry_initial(opts.reconnect_initial())
        .session_retry_max(opts.reconnect_max())
        .request_timeout(opts.request_timeout())
        .max_array_length(opts.max_array_length)
        .max_message_size(opts.max_message_size)
        .max_chunk_count(opts.max_chunk_count)
        // Subscriptions are rebuilt by the source itself after a new session: the library's
        // recreation reuses the old namespace indexes and ignores per-item failures.
        .recreate_subscriptions(false)
        .client()
        .map_err(|problems| ConnectorError::Client {
            endpoint: endpoint.to_string(),
            message: problems.join("; "),
        })
}

/// The PKI folder of a site's sessions: the site file's, else the source options'.
pub(crate) fn pki_dir(opts: &SourceOptions, security: &Security) -> PathBuf {
    security.pki_dir.clone().unwrap_or_else(|| opts.pki_dir())
}

/// The user token of `security`, read now: the password from its environment variable, the
/// X.509 user certificate and key from their files.
pub(crate) fn identity(
    security: &Security,
    endpoint: &str,
) -> Result<IdentityToken, ConnectorError> {
    let credentials = |message: String| ConnectorError::Credentials {
        endpoint: endpoint.to_string(),
        message,
    };
    Ok(match &security.user {
        UserIdentity::Anonymous => IdentityToken::Anonymous,
        UserIdentity::Username { name, password_env } => {
            let password = std::env::var(password_env).map_err(|_| {
                credentials(format!(
                    "the password of user `{name}` is read from the environment variable \
                     `{password_env}`, which is not set"
                ))
            })?;
            IdentityToken::new_user_name(name.clone(), password)
        }
        UserIdentity::X509 {
            certificate,
            private_key,
        } => {
            let cert = CertificateStore::read_cert(certificate).map_err(|e| {
                credentials(format!("user certificate {}: {e}", certificate.display()))
            })?;
            let key = CertificateStore::read_pkey(private_key).map_err(|e| {
                credentials(format!(
                    "private key of the user certificate {}: {e}",
                    private_key.display()
                ))
            })?;
            IdentityToken::new_x509(cert, key)
        }
    })
}

/// Asks the server for its endpoints (through `discovery`, a client without retries: with
/// unlimited session retries GetEndpoints itself retries forever and never reports) and
/// prepares a session of `client` on the endpoint matching `endpoint` (same path, the
/// configured security policy and mode) logged in as `security.user`. Nothing is connected
/// until the session's event loop runs.
pub(crate) async fn prepare_session(
    discovery: &Client,
    client: &Client,
    endpoint: &str,
    security: &Security,
    timeout: Duration,
) -> Result<(Arc<Session>, SessionEventLoop<impl Connector + 'static>), ConnectorError> {
    let unreachable = |status: StatusCode, message: String| ConnectorError::Unreachable {
        endpoint: endpoint.to_string(),
        status: status_name(status),
        message,
    };
    let offered = tokio::time::timeout(timeout, discovery.get_server_endpoints_from_url(endpoint))
        .await
        .map_err(|_| unreachable(StatusCode::BadTimeout, "no answer to GetEndpoints".into()))?
        .map_err(|e| unreachable(e.status(), e.to_string()))?;
    let policy = security_policy(security.policy);
    let mode = security_mode(security.mode);
    let Some(mut matching) = Client::find_matching_endpoint(&offered, endpoint, policy, mode)
    else {
        let offered = offered
            .iter()
            .map(|e| {
                format!(
                    "{} ({}, {})",
                    e.endpoint_url,
                    SecurityPolicy::from_uri(e.security_policy_uri.as_ref()).to_str(),
                    e.security_mode
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ConnectorError::NoMatchingEndpoint {
            endpoint: endpoint.to_string(),
            wanted: format!("{}, {mode}", policy.to_str()),
            offered,
        });
    };
    // The server's description (its certificate, token policy ids) with the configured
    // address: the one it advertises keeps its own port, wrong behind a port mapping or a
    // proxy.
    matching.endpoint_url = UAString::from(endpoint);
    let token = identity(security, endpoint)?;
    client
        .session_builder()
        .connect_to_endpoint_directly(matching)
        .and_then(|b| {
            b.user_identity_token(token)
                .build(client.certificate_store().clone())
        })
        .map_err(|e| ConnectorError::Client {
            endpoint: endpoint.to_string(),
            message: e.to_string(),
        })
}

/// The server's namespace array: index → URI.
pub(crate) async fn read_namespaces(
    session: &Session,
    endpoint: &str,
) -> Result<Vec<String>, ConnectorError> {
    let id: NodeId = VariableId::Server_NamespaceArray.into();
    let results = session
        .read(&[ReadValueId::from(id)], TimestampsToReturn::Neither, 0.0)
        .await
        .map_err(|e| ConnectorError::service(endpoint, "reading the namespace array", &e))?;
    match results.into_iter().next().and_then(|dv| dv.value) {
        Some(Variant::Array(a)) => Ok(a
            .values
            .iter()
            .map(|v| match v {
                Variant::String(s) => s.as_ref().to_string(),
                _ => String::new(),
            })
            .collect()),
        other => Err(ConnectorError::Service {
            endpoint: endpoint.to_string(),
            operation: "reading the namespace array",
            status: "BadTypeMismatch".into(),
            message: format!("expected an array of strings, got {other:?}"),
        }),
    }
}

pub(crate) fn namespace_index(namespaces: &[String], uri: &str) -> Option<u16> {
    namespaces
        .iter()
        .position(|n| n == uri)
        .and_then(|i| u16::try_from(i).ok())
}

/// The server's limits on monitored items (per CreateMonitoredItems call, per subscription),
/// where it publishes them. Absent or unreadable means unknown, never an error.
pub(crate) async fn read_item_limits(session: &Session) -> (Option<u32>, Option<u32>) {
    match read_limits(
        session,
        &[
            VariableId::Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
            VariableId::Server_ServerCapabilities_MaxMonitoredItemsPerSubscription,
        ],
    )
    .await[..]
    {
        [per_call, per_subscription] => (per_call, per_subscription),
        _ => (None, None),
    }
}

/// Server limits published as unsigned numbers under `ServerCapabilities`, in the order
/// asked. Absent, unreadable or 0 (OPC UA's "no limit") is `None`, never an error.
pub(crate) async fn read_limits(session: &Session, limits: &[VariableId]) -> Vec<Option<u32>> {
    let nodes: Vec<ReadValueId> = limits
        .iter()
        .map(|v| ReadValueId::from(NodeId::from(*v)))
        .collect();
    let read = |dv: Option<&DataValue>| -> Option<u32> {
        let dv = dv?;
        if dv.status.is_some_and(|s| !s.is_good()) {
            return None;
        }
        match dv.value.as_ref()? {
            Variant::UInt32(n) => Some(*n),
            Variant::UInt16(n) => Some((*n).into()),
            Variant::Int32(n) => u32::try_from(*n).ok(),
            _ => None,
        }
        .filter(|n| *n > 0)
    };
    match session.read(&nodes, TimestampsToReturn::Neither, 0.0).await {
        Ok(values) => (0..limits.len()).map(|i| read(values.get(i))).collect(),
        Err(e) => {
            debug!(error = %e, "server limits unreadable; using defaults");
            vec![None; limits.len()]
        }
    }
}

/// A connected session for one request, closed again by [`OneShot::close`].
pub(crate) struct OneShot {
    pub(crate) session: Arc<Session>,
    driver: tokio::task::JoinHandle<StatusCode>,
    pub(crate) endpoint: String,
}

/// A session for one request, secured as `security` says (the command line's one-shot
/// reads and writes use the defaults: no security, anonymous).
pub(crate) async fn connect_once(
    endpoint: &str,
    opts: &SourceOptions,
    security: &Security,
) -> Result<OneShot, ConnectorError> {
    let client = build_client(opts, security, endpoint, Retries::None)?;
    let (session, event_loop) =
        prepare_session(&client, &client, endpoint, security, opts.request_timeout()).await?;
    let mut driver = event_loop.spawn();
    let connected = tokio::time::timeout(ONE_SHOT_CONNECT, async {
        tokio::select! {
            ok = session.wait_for_connection() => if ok { Ok(()) } else { Err(StatusCode::BadNotConnected) },
            // Without retries the event loop ends when the first attempt fails.
            code = &mut driver => Err(code.unwrap_or(StatusCode::BadUnexpectedError)),
        }
    })
    .await;
    let failure = match connected {
        Ok(Ok(())) => None,
        Ok(Err(code)) => Some(code),
        Err(_) => Some(StatusCode::BadTimeout),
    };
    if let Some(code) = failure {
        driver.abort();
        return Err(ConnectorError::Unreachable {
            endpoint: endpoint.to_string(),
            status: status_name(code),
            message: "no session could be opened".into(),
        });
    }
    Ok(OneShot {
        session,
        driver,
        endpoint: endpoint.to_string(),
    })
}

impl OneShot {
    pub(crate) async fn node(&self, node: &NodeAddress) -> Result<NodeId, ConnectorError> {
        let namespaces = read_namespaces(&self.session, &self.endpoint).await?;
        let ns = namespace_index(&namespaces, &node.namespace_uri).ok_or_else(|| {
            ConnectorError::NamespaceUnknown {
                endpoint: self.endpoint.clone(),
                node: node.to_string(),
                uri: node.namespace_uri.clone(),
                available: namespaces.join(", "),
            }
        })?;
        Ok(node_id(node, ns))
    }

    async fn read(&self, node: &NodeAddress) -> Result<DataValue, ConnectorError> {
        let id = self.node(node).await?;
        let values = self
            .session
            .read(&[ReadValueId::from(id)], TimestampsToReturn::Both, 0.0)
            .await
            .map_err(|e| ConnectorError::service(&self.endpoint, "read", &e))?;
        values
            .into_iter()
            .next()
            .ok_or_else(|| ConnectorError::Node {
                endpoint: self.endpoint.clone(),
                node: node.to_string(),
                operation: "read",
                status: "BadUnknownResponse (no result)".into(),
            })
    }

    pub(crate) async fn close(self) {
        let closed = tokio::time::timeout(CLOSE_TIMEOUT, self.session.disconnect()).await;
        if !matches!(closed, Ok(Ok(()))) {
            debug!(endpoint = %self.endpoint, "session did not close cleanly");
        }
        self.driver.abort();
    }
}

/// Reads the current value of one node: value, quality and source time (server time, then
/// receive time, when the server sends none). A status without a value is an error naming it.
pub async fn read_value(
    endpoint: &str,
    node: &NodeAddress,
) -> Result<(Value, Quality, DateTime<Utc>), ConnectorError> {
    let span = info_span!("opcua_read", endpoint, node = %node);
    async {
        let conn = connect_once(endpoint, &SourceOptions::default(), &Security::default()).await?;
        let result = conn.read(node).await;
        conn.close().await;
        let dv = result?;
        let received = Utc::now();
        let status = dv.status.unwrap_or(StatusCode::Good);
        let value = dv
            .value
            .as_ref()
            .and_then(variant_to_value)
            .ok_or_else(|| ConnectorError::Node {
                endpoint: endpoint.to_string(),
                node: node.to_string(),
                operation: "read",
                status: status_name(status),
            })?;
        let ts = ua_time(dv.source_timestamp.as_ref())
            .or_else(|| ua_time(dv.server_timestamp.as_ref()))
            .unwrap_or(received);
        Ok((value, Quality(status.bits()), ts))
    }
    .instrument(span)
    .await
}

/// Writes `value` to one node. The value is shaped like the node's current value (a `3`
/// goes to an Int32 node as Int32), and refused if that would change it.
pub async fn write_value(
    endpoint: &str,
    node: &NodeAddress,
    value: &Value,
) -> Result<(), ConnectorError> {
    let span = info_span!("opcua_write", endpoint, node = %node, value = %value);
    async {
        let conn = connect_once(endpoint, &SourceOptions::default(), &Security::default()).await?;
        let result = write_on(&conn, node, value).await;
        conn.close().await;
        result
    }
    .instrument(span)
    .await
}

async fn write_on(conn: &OneShot, node: &NodeAddress, value: &Value) -> Result<(), ConnectorError> {
    let current = conn.read(node).await?;
    let variant = value_to_variant(value, current.value.as_ref()).map_err(|reason| {
        ConnectorError::Value {
            node: node.to_string(),
            value: value.to_string(),
            reason,
        }
    })?;
    let id = conn.node(node).await?;
    let write = WriteValue {
        node_id: id,
        attribute_id: AttributeId::Value as u32,
        index_range: NumericRange::None,
        value: DataValue::value_only(variant),
    };
    let results = conn
        .session
        .write(&[write])
        .await
        .map_err(|e| ConnectorError::service(&conn.endpoint, "write", &e))?;
    match results.first() {
        Some(code) if code.is_good() => Ok(()),
        other => Err(ConnectorError::Node {
            endpoint: conn.endpoint.clone(),
            node: node.to_string(),
            operation: "write",
            status: other.map_or("BadUnknownResponse (no result)".into(), |c| status_name(*c)),
        }),
    }
}
