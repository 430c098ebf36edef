//! The connector's PKI folder, as an administrator handles it: `own/` (the application
//! instance certificate, made on the first start), `private/` (its key),
//! `trusted/` (server certificates accepted) and `rejected/` (server certificates refused,
//! put there by the connector for someone to judge).

use std::path::{Path, PathBuf};

use opcua::crypto::CertificateStore;

use super::error::ConnectorError;

/// Trusts a server certificate: `what` is a certificate file (DER or PEM), or the hex
/// thumbprint (SHA-1, any case) of one in `rejected/`. The certificate is written to
/// `trusted/` under the name the OPC UA stack looks it up by, and removed from `rejected/`
/// (the stack refuses a certificate that is still there). Returns the trusted file.
pub fn trust_certificate(pki: &Path, what: &str) -> Result<PathBuf, ConnectorError> {
    let err = |message: String| ConnectorError::Pki {
        dir: pki.display().to_string(),
        message,
    };
    let given = Path::new(what);
    let source = if given.is_file() {
        given.to_path_buf()
    } else {
        let wanted = what.trim().to_ascii_lowercase().replace(':', "");
        rejected_certificates(pki)?
            .into_iter()
            .find(|(_, thumbprint)| *thumbprint == wanted)
            .map(|(file, _)| file)
            .ok_or_else(|| {
                err(format!(
                    "`{what}` is neither a certificate file nor the thumbprint of a certificate in rejected/"
                ))
            })?
    };
    let cert = CertificateStore::read_cert(&source).map_err(err)?;
    let der = cert
        .to_der()
        .map_err(|e| err(format!("{}: {e}", source.display())))?;
    let name = CertificateStore::cert_file_name(&cert);
    let trusted = pki.join("trusted");
    std::fs::create_dir_all(&trusted)
        .map_err(|e| err(format!("cannot create {}: {e}", trusted.display())))?;
    let target = trusted.join(&name);
    std::fs::write(&target, der)
        .map_err(|e| err(format!("cannot write {}: {e}", target.display())))?;
    // No longer refused: under the store's name, or whatever name it was put there with.
    let rejected_dir = pki.join("rejected");
    for rejected in [rejected_dir.join(&name), source.clone()] {
        if rejected.parent() == Some(rejected_dir.as_path()) && rejected.exists() {
            std::fs::remove_file(&rejected)
                .map_err(|e| err(format!("cannot remove {}: {e}", rejected.display())))?;
        }
    }
    Ok(target)
}

/// The certificates in `rejected/` with their thumbprints (lowercase hex).
pub fn rejected_certificates(pki: &Path) -> Result<Vec<(PathBuf, String)>, ConnectorError> {
    let dir = pki.join("rejected");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ConnectorError::Pki {
                dir: pki.display().to_string(),
                message: format!("cannot read {}: {e}", dir.display()),
            })
        }
    };
    let mut found: Vec<(PathBuf, String)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|path| {
            // A file that is not a certificate is somebody else's business: skip it.
            let cert = CertificateStore::read_cert(&path).ok()?;
            Some((path, cert.thumbprint().as_hex_string()))
        })
        .collect();
    found.sort();
    Ok(found)
}
