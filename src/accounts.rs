//! Who may use the web view: the user file, the first administrator (made from the command
//! line, never from the web), the demo's accounts, and TLS for the web view.

use std::{path::Path, sync::Arc};

use access::{LockoutPolicy, NewUser, Role, Scope, SessionPolicy, UserStore};
use anyhow::{bail, Context, Result};
use chrono::Utc;

use crate::cli::WebArgs;

/// Where the password of a user made on the command line comes from: never an argument
/// (it would sit in the shell history and the process list) and never a file in the repo.
pub(crate) const PASSWORD_ENV: &str = "PHARMATWIN_PASSWORD";
/// The demo accounts' password, when the person starting the demo wants to choose it.
pub(crate) const DEMO_PASSWORD_ENV: &str = "PHARMATWIN_DEMO_PASSWORD";

/// The web view's users and sessions, from the user file.
pub(crate) fn open(web: &WebArgs, users: &Path) -> Result<Arc<dashboards::Access>> {
    let store = UserStore::open(users, LockoutPolicy::default())?;
    if store.is_empty() {
        tracing::warn!(
            file = %users.display(),
            "no users: nobody can log in; create the first admin with `pharmatwin users create-admin`"
        );
    }
    let policy = SessionPolicy {
        lifetime: chrono::Duration::minutes((web.session_hours * 60.0).round() as i64),
        idle: chrono::Duration::minutes(web.idle_minutes as i64),
    };
    Ok(Arc::new(dashboards::Access::new(
        Arc::new(store),
        policy,
        web.tls_cert.is_some(),
    )))
}

/// The TLS configuration, when a certificate is given (with its key).
pub(crate) fn tls(web: &WebArgs) -> Result<Option<Arc<dashboards::TlsServerConfig>>> {
    match (&web.tls_cert, &web.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(
            dashboards::server_config(cert, key).context("--tls-cert/--tls-key")?,
        )),
        (None, None) => Ok(None),
        (Some(_), None) => bail!("--tls-cert needs --tls-key"),
        (None, Some(_)) => bail!("--tls-key needs --tls-cert"),
    }
}

fn password_from_env(var: &str) -> Result<String> {
    match std::env::var(var) {
        Ok(p) if !p.is_empty() => Ok(p),
        _ => bail!("set the password in the environment variable {var}"),
    }
}

/// Who did it, for the audit trail, when it is done on the command line.
fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

fn audit_beside(users: &Path, audit: Option<&Path>) -> Result<audit::AuditTrail> {
    let path = match audit {
        Some(p) => p.to_path_buf(),
        None => users
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("audit.jsonl"),
    };
    Ok(audit::AuditTrail::open(&path)?)
}

/// The first administrator. Refused once one exists: further users are made by an admin in
/// the web view, where it is audited under their name.
pub(crate) fn create_admin(
    file: &Path,
    name: &str,
    full_name: &str,
    audit_log: Option<&Path>,
) -> Result<()> {
    let store = UserStore::open(file, LockoutPolicy::default())?;
    if store.list().iter().any(|u| u.role == Role::Admin) {
        bail!(
            "{}: an admin exists already; make further users in the web view (or `users unlock`)",
            file.display()
        );
    }
    let trail = audit_beside(file, audit_log)?;
    let user = store.create(
        NewUser {
            name: name.into(),
            full_name: full_name.into(),
            role: Role::Admin,
            scope: Scope::all(),
            password: password_from_env(PASSWORD_ENV)?,
        },
        Utc::now(),
    )?;
    trail.append(audit::Entry {
        user: cli_actor(),
        action: "user.create".into(),
        target: format!("user/{}", user.name),
        details: serde_json::json!({ "new": user, "reason": "first administrator" }),
    })?;
    println!("admin `{name}` created in {}", file.display());
    Ok(())
}

pub(crate) fn unlock(
    file: &Path,
    name: &str,
    reason: &str,
    audit_log: Option<&Path>,
) -> Result<()> {
    let store = UserStore::open(file, LockoutPolicy::default())?;
    let trail = audit_beside(file, audit_log)?;
    let (before, after) = store.update(
        name,
        access::UserUpdate {
            unlock: true,
            ..Default::default()
        },
    )?;
    trail.append(audit::Entry {
        user: cli_actor(),
        action: "user.change".into(),
        target: format!("user/{name}"),
        details: serde_json::json!({ "old": before, "new": after, "reason": reason }),
    })?;
    println!("`{name}` unlocked");
    Ok(())
}

/// Trusts a server certificate for the connectors, recorded as a trust decision in the audit
/// trail (who, which certificate, why) before it takes effect.
pub(crate) fn trust(
    pki: &Path,
    certificate: &str,
    reason: &str,
    audit_log: Option<&Path>,
) -> Result<()> {
    anyhow::ensure!(
        !reason.trim().is_empty(),
        "--reason: say why this server is trusted"
    );
    let trail = audit_beside(pki, audit_log)?;
    let refused = connectors::rejected_certificates(pki)?;
    let thumbprint = refused
        .iter()
        .find(|(file, t)| {
            t.as_str() == certificate.trim().to_ascii_lowercase().replace(':', "")
                || file.as_path() == Path::new(certificate)
        })
        .map(|(_, t)| t.clone());
    // Recorded before it takes effect, so only what can take effect is recorded.
    anyhow::ensure!(
        thumbprint.is_some() || Path::new(certificate).is_file(),
        "no refused certificate `{certificate}` in {} (see `pharmatwin pki list`)",
        pki.join("rejected").display()
    );
    trail.append(audit::Entry {
        user: cli_actor(),
        action: "certificate.trust".into(),
        target: format!("pki/{}", thumbprint.as_deref().unwrap_or(certificate)),
        details: serde_json::json!({ "pki": pki.display().to_string(), "certificate": certificate, "reason": reason }),
    })?;
    let trusted = connectors::trust_certificate(pki, certificate)?;
    println!("trusted: {}", trusted.display());
    Ok(())
}

pub(crate) fn list(file: &Path) -> Result<()> {
    let store = UserStore::open(file, LockoutPolicy::default())?;
    for u in store.list() {
        let lines = if u.scope.lines.is_empty() {
            String::new()
        } else {
            format!(" lines {}", u.scope.lines.join(","))
        };
        let state = match (u.disabled, u.locked_until) {
            (true, _) => " (disabled)".to_string(),
            (false, Some(t)) if t > Utc::now() => format!(" (locked until {t})"),
            _ => String::new(),
        };
        println!(
            "{}\t{}\t{}\tsites {}{lines}{state}",
            u.name,
            u.role.name(),
            u.full_name,
            u.scope.sites.join(",")
        );
    }
    Ok(())
}

/// The demo's accounts, made on its first start: one administrator, HQ and quality for
/// every site, and an operator and a maintenance technician per site. Their password is
/// `$PHARMATWIN_DEMO_PASSWORD`, or a random one written (owner-only) beside the data —
/// never to the log.
pub(crate) fn seed_demo(users: &Path, data_dir: &Path, sites: &[String]) -> Result<()> {
    let store = UserStore::open(users, LockoutPolicy::default())?;
    if !store.is_empty() {
        return Ok(());
    }
    let password = match std::env::var(DEMO_PASSWORD_ENV) {
        Ok(p) if !p.is_empty() => p,
        _ => access::random_hex(8)?,
    };
    let mut accounts = vec![
        (
            "admin".to_string(),
            "Demo Administrator 演示管理员".to_string(),
            Role::Admin,
            Scope::all(),
        ),
        ("hq".into(), "Zhang Wei 张伟".into(), Role::Hq, Scope::all()),
        (
            "quality".into(),
            "Chen Jing 陈静".into(),
            Role::Quality,
            Scope::all(),
        ),
    ];
    for site in sites {
        let only = Scope {
            sites: vec![site.clone()],
            lines: vec![],
        };
        accounts.push((
            format!("op.{site}"),
            format!("Operator {site}"),
            Role::Operator,
            only.clone(),
        ));
        accounts.push((
            format!("maint.{site}"),
            format!("Technician {site}"),
            Role::Maintenance,
            only,
        ));
    }
    let trail = audit::AuditTrail::open(&data_dir.join("audit.jsonl"))?;
    let mut made = Vec::new();
    for (name, full_name, role, scope) in accounts {
        let user = store.create(
            NewUser {
                name,
                full_name,
                role,
                scope,
                password: password.clone(),
            },
            Utc::now(),
        )?;
        trail.append(audit::Entry {
            user: "demo".into(),
            action: "user.create".into(),
            target: format!("user/{}", user.name),
            details: serde_json::json!({ "new": user, "reason": "demo account" }),
        })?;
        made.push(user.name);
    }
    let note = data_dir.join("demo-accounts.txt");
    let text = format!(
        "PharmaTwin demo accounts (password for all: {password})\n{}\n",
        made.join("\n")
    );
    write_private(&note, &text)?;
    println!("PharmaTwin demo accounts: {}", note.display());
    Ok(())
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
