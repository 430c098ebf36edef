//! `pharmatwin browse`: prints an OPC UA server's address-space tree and drafts a site file
//! from it. The browsing is `connectors::opcua::browse`; this is the command's arguments,
//! its output and the draft.

use std::{
    collections::HashMap,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use connectors::opcua::{AddressTree, BrowseRequest, BrowsedNode, Expansion, NodeKind};
use model::{DataType, NodeAddress, Security, SecurityMode, SecurityPolicy, UserIdentity};

#[derive(Debug, clap::Args)]
pub(crate) struct BrowseArgs {
    /// The server, e.g. `opc.tcp://10.0.0.5:4840/` (with the path it advertises).
    #[arg(long)]
    endpoint: String,
    /// Where to start: `nsu=<namespace uri>;s=<id>`, `nsu=…;i=<n>`, or `i=<n>` in OPC UA's
    /// own namespace [default: the Objects folder, i=85].
    #[arg(long)]
    root: Option<String>,
    /// Levels below the root to browse.
    #[arg(long, default_value_t = 3)]
    depth: u32,
    /// References asked per node in one answer (0: as many as the server sends); the rest
    /// are fetched with BrowseNext.
    #[arg(long, default_value_t = 0)]
    max_references: u32,
    /// Also write a draft site file here: one signal per variable found, places from the
    /// folders above it, to be reviewed. An existing file is not overwritten.
    #[arg(long)]
    write_site: Option<PathBuf>,
    /// The draft's site id [default: the folder four levels above the variables, else
    /// `new-site`].
    #[arg(long)]
    site: Option<String>,
    /// Security policy, as in `[site.security]`.
    #[arg(long, default_value = "None", value_parser = [
        "None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss",
    ])]
    policy: String,
    /// `Sign` or `SignAndEncrypt` [default: SignAndEncrypt with a policy, else None].
    #[arg(long, value_parser = ["None", "Sign", "SignAndEncrypt"])]
    mode: Option<String>,
    /// Log in as this user, the password read from `--password-env`.
    #[arg(long, requires = "password_env", conflicts_with = "user_certificate")]
    user: Option<String>,
    /// The environment variable holding the user's password.
    #[arg(long, requires = "user")]
    password_env: Option<String>,
    /// Log in with this X.509 user certificate (DER or PEM)…
    #[arg(long, requires = "user_key")]
    user_certificate: Option<PathBuf>,
    /// …and its private key (PEM).
    #[arg(long, requires = "user_certificate")]
    user_key: Option<PathBuf>,
    /// The PKI folder (own certificate, trusted and rejected server certificates)
    /// [default with a security policy: pharmatwin-data/pki, as `run` uses].
    #[arg(long)]
    pki: Option<PathBuf>,
}

pub(crate) async fn run(args: BrowseArgs) -> Result<()> {
    if let Some(file) = &args.write_site {
        if file.exists() {
            bail!(
                "{} exists; the draft site file is not written over it",
                file.display()
            );
        }
    }
    let security = security(&args)?;
    let opts = connectors::SourceOptions {
        pki_dir: match (&args.pki, security.policy) {
            (Some(dir), _) => Some(dir.clone()),
            (None, SecurityPolicy::None) => None,
            (None, _) => Some(PathBuf::from("pharmatwin-data/pki")),
        },
        ..connectors::SourceOptions::default()
    };
    let request = BrowseRequest {
        root: args.root.as_deref().map(root_address).transpose()?,
        depth: args.depth,
        max_references_per_node: args.max_references,
    };
    // The connector's errors name the endpoint and the root already.
    let tree = connectors::opcua::browse(&args.endpoint, &security, &opts, &request).await?;
    print!("{tree}");
    let unbrowsed = tree
        .root
        .walk()
        .into_iter()
        .filter(|(_, n)| n.expansion == Expansion::DepthLimit && n.kind != NodeKind::Variable)
        .count();
    if unbrowsed > 0 {
        tracing::info!(
            "{unbrowsed} nodes marked … are below --depth {}: not browsed",
            tree.depth
        );
    }
    if let Some(file) = &args.write_site {
        let draft = SiteDraft::from_tree(&tree, args.site.as_deref(), &security)?;
        std::fs::write(file, draft.toml(&tree))
            .with_context(|| format!("cannot write {}", file.display()))?;
        tracing::info!(
            "wrote {}: site `{}`, {} signals on {} equipment in {} lines; review it (categories, \
             units, places), then `pharmatwin check --config {}`",
            file.display(),
            draft.site_id,
            draft.signal_count(),
            draft.lines.iter().map(|l| l.equipment.len()).sum::<usize>(),
            draft.lines.len(),
            file.display()
        );
        if unbrowsed > 0 {
            tracing::warn!(
                "{unbrowsed} nodes were not browsed (--depth {}); variables below them \
                 are not in the file",
                tree.depth
            );
        }
    }
    Ok(())
}

fn security(args: &BrowseArgs) -> Result<Security> {
    let policy = match args.policy.as_str() {
        "Basic256Sha256" => SecurityPolicy::Basic256Sha256,
        "Aes128_Sha256_RsaOaep" => SecurityPolicy::Aes128Sha256RsaOaep,
        "Aes256_Sha256_RsaPss" => SecurityPolicy::Aes256Sha256RsaPss,
        _ => SecurityPolicy::None,
    };
    let mode = match (args.mode.as_deref(), policy) {
        (Some("Sign"), _) => SecurityMode::Sign,
        (Some("SignAndEncrypt"), _) => SecurityMode::SignAndEncrypt,
        (Some(_), _) | (None, SecurityPolicy::None) => SecurityMode::None,
        (None, _) => SecurityMode::SignAndEncrypt,
    };
    if (policy == SecurityPolicy::None) != (mode == SecurityMode::None) {
        bail!("--policy {} cannot go with --mode {mode:?}", args.policy);
    }
    let user = match (
        &args.user,
        &args.password_env,
        &args.user_certificate,
        &args.user_key,
    ) {
        (Some(name), Some(password_env), _, _) => UserIdentity::Username {
            name: name.clone(),
            password_env: password_env.clone(),
        },
        (_, _, Some(certificate), Some(private_key)) => UserIdentity::X509 {
            certificate: certificate.clone(),
            private_key: private_key.clone(),
        },
        _ => UserIdentity::Anonymous,
    };
    Ok(Security {
        policy,
        mode,
        user,
        pki_dir: args.pki.clone(),
    })
}

/// `--root` as an address: `nsu=…` as site files write it, or a bare `i=`/`s=` id in OPC
/// UA's own namespace (where the standard folders are).
fn root_address(text: &str) -> Result<NodeAddress> {
    let full = if text.starts_with("i=") || text.starts_with("s=") {
        format!("nsu={};{text}", connectors::opcua::OPC_UA_NAMESPACE)
    } else {
        text.to_string()
    };
    full.parse()
        .map_err(|e: String| anyhow::anyhow!("--root: {e}"))
}

// ---- the draft site file ----------------------------------------------------------------

const UNASSIGNED_AREA: &str = "unassigned-area";
const UNASSIGNED_LINE: &str = "unassigned-line";
const UNASSIGNED_EQUIPMENT: &str = "unassigned-equipment";

#[derive(Debug)]
struct SiteDraft {
    site_id: String,
    site_name: String,
    namespace_uri: String,
    security: Security,
    areas: Vec<(String, String)>,
    lines: Vec<LineDraft>,
    /// Variables not written, with why.
    skipped: Vec<(String, &'static str)>,
}

#[derive(Debug)]
struct LineDraft {
    id: String,
    name: String,
    area: String,
    equipment: Vec<EquipmentDraft>,
}

#[derive(Debug)]
struct EquipmentDraft {
    id: String,
    name: String,
    signals: Vec<SignalDraft>,
}

#[derive(Debug)]
struct SignalDraft {
    id: String,
    description: String,
    data_type: DataType,
    node: NodeAddress,
}

/// A place taken from a folder: its id (the browse name made a site-file identifier) and
/// its name (the display name).
fn place(node: &BrowsedNode, fallback: &str) -> (String, String) {
    let id = identifier(&node.browse_name);
    let name = if node.display_name.is_empty() {
        node.browse_name.clone()
    } else {
        node.display_name.clone()
    };
    (if id.is_empty() { fallback.into() } else { id }, name)
}

impl SiteDraft {
    /// One signal per variable below the root (not OPC UA's own, not a property of another
    /// node), placed by the folders above it: equipment the nearest, then line, area, site.
    fn from_tree(tree: &AddressTree, site: Option<&str>, security: &Security) -> Result<Self> {
        let mut draft = SiteDraft {
            site_id: String::new(),
            site_name: String::new(),
            namespace_uri: String::new(),
            security: security.clone(),
            areas: Vec::new(),
            lines: Vec::new(),
            skipped: Vec::new(),
        };
        let mut site_folders: Vec<(String, String)> = Vec::new();
        let mut namespaces: HashMap<String, usize> = HashMap::new();
        for (ancestors, node) in tree.root.walk() {
            if node.kind != NodeKind::Variable || node.expansion == Expansion::Repeated {
                continue;
            }
            let Some(address) = &node.address else {
                draft.skipped.push((
                    node.id.clone(),
                    "a GUID or opaque node id, which site files cannot name",
                ));
                continue;
            };
            if address.namespace_uri == connectors::opcua::OPC_UA_NAMESPACE {
                continue;
            }
            if node.is_property {
                draft
                    .skipped
                    .push((node.id.clone(), "a property of the node above it"));
                continue;
            }
            let above = |n: usize| ancestors.len().checked_sub(n).map(|i| ancestors[i]);
            let (eq_id, eq_name) = above(1).map_or_else(
                || (UNASSIGNED_EQUIPMENT.into(), "Unassigned equipment".into()),
                |n| place(n, UNASSIGNED_EQUIPMENT),
            );
            let (line_id, line_name) = above(2).map_or_else(
                || (UNASSIGNED_LINE.into(), "Unassigned line".into()),
                |n| place(n, UNASSIGNED_LINE),
            );
            let (area_id, area_name) = above(3).map_or_else(
                || (UNASSIGNED_AREA.into(), "Unassigned area".into()),
                |n| place(n, UNASSIGNED_AREA),
            );
            if let Some(folder) = above(4) {
                let site = place(folder, "new-site");
                if !site_folders.contains(&site) {
                    site_folders.push(site);
                }
            }
            *namespaces.entry(address.namespace_uri.clone()).or_default() += 1;
            if !draft.areas.iter().any(|(id, _)| *id == area_id) {
                draft.areas.push((area_id.clone(), area_name));
            }
            let line = match draft.lines.iter().position(|l| l.id == line_id) {
                Some(i) => &mut draft.lines[i],
                None => {
                    draft.lines.push(LineDraft {
                        id: line_id,
                        name: line_name,
                        area: area_id,
                        equipment: Vec::new(),
                    });
                    draft.lines.last_mut().expect("just pushed")
                }
            };
            let equipment = match line.equipment.iter().position(|e| e.id == eq_id) {
                Some(i) => &mut line.equipment[i],
                None => {
                    line.equipment.push(EquipmentDraft {
                        id: eq_id,
                        name: eq_name,
                        signals: Vec::new(),
                    });
                    line.equipment.last_mut().expect("just pushed")
                }
            };
            let base = match identifier(&node.browse_name) {
                id if id.is_empty() => "signal".to_string(),
                id => id,
            };
            let mut id = base.clone();
            let mut n = 1;
            while equipment.signals.iter().any(|s| s.id == id) {
                n += 1;
                id = format!("{base}_{n}");
            }
            equipment.signals.push(SignalDraft {
                id,
                description: if node.display_name.is_empty() {
                    node.browse_name.clone()
                } else {
                    node.display_name.clone()
                },
                data_type: node
                    .variable
                    .as_ref()
                    .map_or(DataType::String, |v| v.model_type),
                node: address.clone(),
            });
        }
        if draft.lines.is_empty() {
            bail!(
                "no variable outside OPC UA's own namespace within --depth {} of {}: nothing \
                 to write (browse deeper, or from another --root)",
                tree.depth,
                tree.root.id
            );
        }
        (draft.site_id, draft.site_name) = match (site, site_folders.as_slice()) {
            (Some(id), _) => {
                let clean = identifier(id);
                if clean != id {
                    bail!(
                        "--site `{id}`: use lowercase letters, digits, `-` or `_` (e.g. `{clean}`)"
                    );
                }
                (id.to_string(), id.to_string())
            }
            (None, [only]) => only.clone(),
            (None, _) => ("new-site".into(), "New site".into()),
        };
        draft.namespace_uri = namespaces
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
            .map(|(uri, _)| uri)
            .expect("a signal was placed");
        Ok(draft)
    }

    fn signal_count(&self) -> usize {
        self.lines
            .iter()
            .flat_map(|l| &l.equipment)
            .map(|e| e.signals.len())
            .sum()
    }

    fn toml(&self, tree: &AddressTree) -> String {
        let mut t = String::new();
        let q = toml_string;
        // Writing to a String cannot fail.
        let _ = writeln!(
            t,
            "# Site file drafted by `pharmatwin browse` from {} ({}, depth {}) at {}.\n\
             # REVIEW BEFORE USE: every signal's category is a placeholder (`machine`) and its\n\
             # unit is empty. Places come from the folders above each variable: equipment the\n\
             # folder holding it, then line, area and site; `unassigned-…` marks a place the\n\
             # folder path did not give. Check the result with `pharmatwin check --config FILE`.\n",
            tree.endpoint,
            tree.root.id,
            tree.depth,
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
        );
        let _ = writeln!(
            t,
            "[site]\nid = {}\nname = {}\nnamespace_uri = {}\nendpoint = {}",
            q(&self.site_id),
            q(&self.site_name),
            q(&self.namespace_uri),
            q(&tree.endpoint)
        );
        if self.security != Security::default() {
            let s = &self.security;
            let policy = match s.policy {
                SecurityPolicy::None => "None",
                SecurityPolicy::Basic256Sha256 => "Basic256Sha256",
                SecurityPolicy::Aes128Sha256RsaOaep => "Aes128_Sha256_RsaOaep",
                SecurityPolicy::Aes256Sha256RsaPss => "Aes256_Sha256_RsaPss",
            };
            let _ = writeln!(
                t,
                "\n[site.security]\npolicy = {}\nmode = {}",
                q(policy),
                q(&format!("{:?}", s.mode))
            );
            match &s.user {
                UserIdentity::Anonymous => {}
                UserIdentity::Username { name, password_env } => {
                    let _ = writeln!(
                        t,
                        "user = {{ kind = \"username\", name = {}, password_env = {} }}",
                        q(name),
                        q(password_env)
                    );
                }
                UserIdentity::X509 {
                    certificate,
                    private_key,
                } => {
                    let _ = writeln!(
                        t,
                        "user = {{ kind = \"x509\", certificate = {}, private_key = {} }}",
                        q(&absolute(certificate)),
                        q(&absolute(private_key))
                    );
                }
            }
            if let Some(dir) = &s.pki_dir {
                let _ = writeln!(t, "pki_dir = {}", q(&absolute(dir)));
            }
        }
        for (id, name) in &self.areas {
            let _ = writeln!(t, "\n[[areas]]\nid = {}\nname = {}", q(id), q(name));
        }
        for line in &self.lines {
            let _ = writeln!(
                t,
                "\n[[lines]]\nid = {}\nname = {}\narea = {}",
                q(&line.id),
                q(&line.name),
                q(&line.area)
            );
            for e in &line.equipment {
                let _ = writeln!(
                    t,
                    "\n[[lines.equipment]]\nid = {}\nname = {}",
                    q(&e.id),
                    q(&e.name)
                );
                for s in &e.signals {
                    let data_type = match s.data_type {
                        DataType::Double => "double",
                        DataType::Int => "int",
                        DataType::Bool => "bool",
                        DataType::String => "string",
                    };
                    let _ = writeln!(
                        t,
                        "\n[[lines.equipment.signals]]\nid = {}\ndescription = {}\n\
                         category = \"machine\"\nunit = \"\"\ndata_type = \"{data_type}\"\nnode = {}",
                        q(&s.id),
                        q(&s.description),
                        q(&s.node.to_string())
                    );
                }
            }
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(t, "\n# Variables not written:");
            for (id, why) in &self.skipped {
                let _ = writeln!(t, "# - {id}: {why}");
            }
        }
        t
    }
}

/// A TOML basic string. A JSON string is one (same quotes and escapes) except that TOML
/// also wants DEL escaped.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s)
        .expect("a string serialises")
        .replace('\u{7f}', "\\u007F")
}

/// The draft is read from wherever it is moved to: paths in it are absolute.
fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// A browse name as a site-file identifier (lowercase letters, digits, `-`, `_`):
/// `DoorOpen` → `door_open`, `Line 1` → `line_1`; empty when nothing of it is ASCII.
fn identifier(name: &str) -> String {
    let mut out = String::new();
    let mut previous: Option<char> = None;
    for c in name.chars() {
        if c.is_ascii_uppercase() && previous.is_some_and(|p| p.is_ascii_lowercase()) {
            out.push('_');
        }
        match c {
            'a'..='z' | '0'..='9' | '-' | '_' => out.push(c),
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            _ if !out.ends_with('_') && !out.is_empty() => out.push('_'),
            _ => {}
        }
        previous = Some(c);
    }
    out.trim_matches('_').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browse_names_become_identifiers() {
        assert_eq!(identifier("DoorOpen"), "door_open");
        assert_eq!(identifier("press-01"), "press-01");
        assert_eq!(identifier("Line 1.Oven"), "line_1_oven");
        assert_eq!(identifier("温度"), "");
        assert_eq!(identifier("PV_Temp °C"), "pv_temp_c");
    }

    #[test]
    fn toml_strings_escape_what_toml_needs() {
        assert_eq!(toml_string("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(toml_string("x\u{7f}"), r#""x\u007F""#);
    }

    #[test]
    fn root_takes_namespace_zero_ids_bare() {
        let a = root_address("i=85").unwrap();
        assert_eq!(a.to_string(), "nsu=http://opcfoundation.org/UA/;i=85");
        assert!(root_address("ns=2;s=x").is_err());
    }
}
