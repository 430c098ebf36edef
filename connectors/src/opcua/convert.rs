//! OPC UA values and timestamps to PharmaTwin's, and back for writes.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use opcua::types::{
    DataValue, DateTime as UaDateTime, Identifier, NodeId, StatusCode, UAString, Variant,
};

use model::{NodeAddress, NodeIdentifier, Quality, Sample, Tag, Value};

use super::error::status_name;

/// The site file's security policy as async-opcua's.
pub(crate) fn security_policy(p: model::SecurityPolicy) -> opcua::crypto::SecurityPolicy {
    use opcua::crypto::SecurityPolicy as Ua;
    match p {
        model::SecurityPolicy::None => Ua::None,
        model::SecurityPolicy::Basic256Sha256 => Ua::Basic256Sha256,
        model::SecurityPolicy::Aes128Sha256RsaOaep => Ua::Aes128Sha256RsaOaep,
        model::SecurityPolicy::Aes256Sha256RsaPss => Ua::Aes256Sha256RsaPss,
    }
}

/// The site file's message security mode as OPC UA's.
pub(crate) fn security_mode(m: model::SecurityMode) -> opcua::types::MessageSecurityMode {
    use opcua::types::MessageSecurityMode as Ua;
    match m {
        model::SecurityMode::None => Ua::None,
        model::SecurityMode::Sign => Ua::Sign,
        model::SecurityMode::SignAndEncrypt => Ua::SignAndEncrypt,
    }
}

/// The value a variant carries, or `None` when it carries none (`Empty`).
///
/// Numbers stay numbers (all integer widths become `Int`, a `UInt64` above `i64::MAX`
/// becomes text rather than a rounded float); everything else becomes text.
pub(crate) fn variant_to_value(v: &Variant) -> Option<Value> {
    Some(match v {
        Variant::Empty => return None,
        Variant::Boolean(b) => Value::Bool(*b),
        Variant::SByte(i) => Value::Int((*i).into()),
        Variant::Byte(i) => Value::Int((*i).into()),
        Variant::Int16(i) => Value::Int((*i).into()),
        Variant::UInt16(i) => Value::Int((*i).into()),
        Variant::Int32(i) => Value::Int((*i).into()),
        Variant::UInt32(i) => Value::Int((*i).into()),
        Variant::Int64(i) => Value::Int(*i),
        Variant::UInt64(u) => match i64::try_from(*u) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Text(u.to_string()),
        },
        Variant::Float(f) => Value::Float(widen(*f)),
        Variant::Double(f) => Value::Float(*f),
        Variant::String(s) => Value::Text(s.as_ref().to_string()),
        Variant::DateTime(t) => Value::Text(t.as_chrono().to_rfc3339()),
        Variant::LocalizedText(t) => Value::Text(t.text.as_ref().to_string()),
        Variant::ByteString(b) => Value::Text(b.as_base64()),
        Variant::StatusCode(c) => Value::Text(status_name(*c)),
        Variant::Variant(inner) => return variant_to_value(inner),
        Variant::Array(a) => {
            let items: Vec<String> = a
                .values
                .iter()
                .map(|v| {
                    variant_to_value(v)
                        .map(|x| x.to_string())
                        .unwrap_or_default()
                })
                .collect();
            Value::Text(format!("[{}]", items.join(", ")))
        }
        other => Value::Text(other.to_string()),
    })
}

/// An `f32` as the `f64` with the same shortest decimal form: a sensor's `0.1f32` is stored
/// as `0.1`, not as `0.10000000149011612`, which would only be float noise.
fn widen(f: f32) -> f64 {
    if f.is_finite() {
        f.to_string().parse().unwrap_or(f64::from(f))
    } else {
        f64::from(f)
    }
}

/// The variant to write for `value`, shaped like the node's current value `like` (servers
/// reject a write whose type differs from the variable's data type). Refuses conversions
/// that would change the value: a fraction into an integer, an out-of-range integer.
pub(crate) fn value_to_variant(value: &Value, like: Option<&Variant>) -> Result<Variant, String> {
    fn int<T: TryFrom<i64>>(value: &Value, type_name: &str) -> Result<T, String> {
        let i = match value {
            Value::Int(i) => *i,
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => *f as i64,
            Value::Float(f) => return Err(format!("{f} is not a whole number ({type_name})")),
            Value::Bool(_) | Value::Text(_) | Value::Null => {
                return Err(format!("the node holds a {type_name}"));
            }
        };
        T::try_from(i).map_err(|_| format!("{i} is out of range for {type_name}"))
    }
    let number = |type_name: &str| {
        value
            .as_f64()
            .filter(|_| !matches!(value, Value::Bool(_)))
            .ok_or_else(|| format!("the node holds a {type_name}"))
    };
    Ok(match like {
        Some(Variant::Boolean(_)) => match value {
            Value::Bool(b) => Variant::Boolean(*b),
            _ => return Err("the node holds a Boolean".into()),
        },
        Some(Variant::SByte(_)) => Variant::SByte(int(value, "SByte")?),
        Some(Variant::Byte(_)) => Variant::Byte(int(value, "Byte")?),
        Some(Variant::Int16(_)) => Variant::Int16(int(value, "Int16")?),
        Some(Variant::UInt16(_)) => Variant::UInt16(int(value, "UInt16")?),
        Some(Variant::Int32(_)) => Variant::Int32(int(value, "Int32")?),
        Some(Variant::UInt32(_)) => Variant::UInt32(int(value, "UInt32")?),
        Some(Variant::Int64(_)) => Variant::Int64(int(value, "Int64")?),
        Some(Variant::UInt64(_)) => Variant::UInt64(int(value, "UInt64")?),
        Some(Variant::Float(_)) => Variant::Float(number("Float")? as f32),
        Some(Variant::Double(_)) => Variant::Double(number("Double")?),
        Some(Variant::String(_)) => Variant::String(UAString::from(value.to_string())),
        Some(Variant::DateTime(_)) => {
            let text = value.as_text().ok_or("the node holds a DateTime")?;
            let t = DateTime::parse_from_rfc3339(text)
                .map_err(|e| format!("`{text}` is not an RFC 3339 time: {e}"))?;
            Variant::DateTime(Box::new(UaDateTime::from(t.with_timezone(&Utc))))
        }
        // No current value to imitate (or an exotic type): the natural mapping.
        _ => match value {
            Value::Bool(b) => Variant::Boolean(*b),
            Value::Int(i) => Variant::Int64(*i),
            Value::Float(f) => Variant::Double(*f),
            Value::Text(s) => Variant::String(UAString::from(s.as_str())),
            Value::Null => Variant::Empty,
        },
    })
}

/// An OPC UA time as chrono time; `None` for the null time (the OPC UA way of saying
/// "absent") and for times that cannot be keyed in nanoseconds (before 1677 or after 2262).
pub(crate) fn ua_time(t: Option<&UaDateTime>) -> Option<DateTime<Utc>> {
    let t = t?;
    if t.is_null() {
        return None;
    }
    let c = t.as_chrono();
    c.timestamp_nanos_opt().map(|_| c)
}

/// A notification to a sample. The source time is the time of record; when the server did
/// not send one, the server time stands in, then the receive time. Quality travels whole,
/// and a status without a value becomes [`Value::Null`]: never an invented or old value.
pub(crate) fn to_sample(tag: &Arc<Tag>, dv: DataValue, received: DateTime<Utc>) -> Sample {
    let status = dv.status.unwrap_or(StatusCode::Good);
    let server_ts = ua_time(dv.server_timestamp.as_ref());
    let source_ts = ua_time(dv.source_timestamp.as_ref())
        .or(server_ts)
        .unwrap_or(received);
    Sample {
        tag: tag.clone(),
        value: dv
            .value
            .as_ref()
            .and_then(variant_to_value)
            .unwrap_or(Value::Null),
        quality: Quality(status.bits()),
        source_ts,
        server_ts,
        received_ts: received,
        backfilled: false,
    }
}

/// The node id of `node` given its namespace's index on this server.
pub(crate) fn node_id(node: &NodeAddress, namespace: u16) -> NodeId {
    match &node.identifier {
        NodeIdentifier::Numeric(i) => NodeId::new(namespace, *i),
        NodeIdentifier::String(s) => {
            NodeId::new(namespace, Identifier::String(UAString::from(s.as_str())))
        }
    }
}
