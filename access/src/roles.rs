//! Roles, what each may do, and the sites (and lines) a user is scoped to.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Operator,
    Maintenance,
    Quality,
    Hq,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Operator,
        Role::Maintenance,
        Role::Quality,
        Role::Hq,
        Role::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Maintenance => "maintenance",
            Role::Quality => "quality",
            Role::Hq => "hq",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }

    /// The one table of who may do what; every check on the server goes through it.
    pub fn grants(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Operator => matches!(p, View | AcknowledgeAlert),
            Role::Maintenance => matches!(
                p,
                View | AcknowledgeAlert | ManageWorkOrders | RecordMaintenance
            ),
            Role::Quality => matches!(p, View | AcknowledgeAlert | AcceptQuality | ViewAudit),
            // HQ compares the plants; it does not act on their alerts.
            Role::Hq => matches!(p, View | ViewDiagnostics),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    View,
    ViewDiagnostics,
    AcknowledgeAlert,
    ManageWorkOrders,
    RecordMaintenance,
    AcceptQuality,
    ViewAudit,
    ManageUsers,
    ChangeSettings,
    /// Start and stop training scenarios on the simulated plants (training mode only).
    RunTraining,
}

impl Permission {
    pub const ALL: [Permission; 10] = [
        Permission::View,
        Permission::ViewDiagnostics,
        Permission::AcknowledgeAlert,
        Permission::ManageWorkOrders,
        Permission::RecordMaintenance,
        Permission::AcceptQuality,
        Permission::ViewAudit,
        Permission::ManageUsers,
        Permission::ChangeSettings,
        Permission::RunTraining,
    ];
}

/// The sites a user works for, and optionally only some of their lines.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Scope {
    /// Site ids; `*` is every site.
    pub sites: Vec<String>,
    /// `site/line`; empty is every line of those sites.
    #[serde(default)]
    pub lines: Vec<String>,
}

impl Scope {
    pub fn all() -> Scope {
        Scope {
            sites: vec!["*".into()],
            lines: Vec::new(),
        }
    }

    pub fn every_site(&self) -> bool {
        self.sites.iter().any(|s| s == "*") && self.lines.is_empty()
    }

    pub fn allows_site(&self, site: &str) -> bool {
        self.sites.iter().any(|s| s == "*" || s == site)
    }

    /// A line of an allowed site, and one of the listed lines if any are listed for that
    /// site.
    pub fn allows_line(&self, site: &str, line: &str) -> bool {
        if !self.allows_site(site) {
            return false;
        }
        let mut listed = self
            .lines
            .iter()
            .filter_map(|l| l.split_once('/'))
            .filter(|(s, _)| *s == site)
            .peekable();
        listed.peek().is_none() || listed.any(|(_, l)| l == line)
    }

    /// Whether the user sees the whole of `site` (no line restriction on it).
    pub fn whole_site(&self, site: &str) -> bool {
        self.allows_site(site)
            && !self
                .lines
                .iter()
                .any(|l| l.split_once('/').is_some_and(|(s, _)| s == site))
    }
}

/// What an electronic signature means (Part 11.50(a)(3)): shown with the printed name and
/// time wherever the signed record is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Meaning {
    Reviewed,
    Approved,
    Performed,
    Verified,
    Responsible,
}

impl Meaning {
    pub fn name(self) -> &'static str {
        match self {
            Meaning::Reviewed => "reviewed",
            Meaning::Approved => "approved",
            Meaning::Performed => "performed",
            Meaning::Verified => "verified",
            Meaning::Responsible => "responsible",
        }
    }
}
