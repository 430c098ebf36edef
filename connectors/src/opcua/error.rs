use opcua::types::StatusCode;

/// What went wrong talking to an OPC UA server, with the endpoint and node to look at.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("OPC UA source option `{key}`: {message}")]
    Options { key: &'static str, message: String },

    #[error("OPC UA client for {endpoint} cannot be set up: {message}")]
    Client { endpoint: String, message: String },

    #[error("cannot reach OPC UA server {endpoint}: {status} ({message})")]
    Unreachable {
        endpoint: String,
        status: String,
        message: String,
    },

    #[error(
        "OPC UA server {endpoint} offers no endpoint with that path and security {wanted}; it offers: {offered}"
    )]
    NoMatchingEndpoint {
        endpoint: String,
        wanted: String,
        offered: String,
    },

    #[error("user identity for {endpoint}: {message}")]
    Credentials { endpoint: String, message: String },

    #[error("OPC UA PKI folder {dir}: {message}")]
    Pki { dir: String, message: String },

    #[error("namespace `{uri}` of {node} is not served by {endpoint}; the server's namespaces are: {available}")]
    NamespaceUnknown {
        endpoint: String,
        node: String,
        uri: String,
        available: String,
    },

    #[error("{operation} of {node} on {endpoint} failed: {status}")]
    Node {
        endpoint: String,
        node: String,
        operation: &'static str,
        status: String,
    },

    #[error("{operation} on {endpoint} failed: {status} ({message})")]
    Service {
        endpoint: String,
        operation: &'static str,
        status: String,
        message: String,
    },

    #[error("value `{value}` cannot be written to {node}: {reason}")]
    Value {
        node: String,
        value: String,
        reason: String,
    },

    #[error("OPC UA session to {endpoint} ended for good: {status}")]
    SessionEnded { endpoint: String, status: String },
}

impl ConnectorError {
    pub(crate) fn service(
        endpoint: &str,
        operation: &'static str,
        e: &opcua::types::Error,
    ) -> Self {
        ConnectorError::Service {
            endpoint: endpoint.to_string(),
            operation,
            status: status_name(e.status()),
            message: e.to_string(),
        }
    }
}

/// The symbolic name of a status code with its flags, e.g. `BadNodeIdUnknown`.
pub(crate) fn status_name(code: StatusCode) -> String {
    code.to_string()
}
