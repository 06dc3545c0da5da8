//! Roles and what each may do: one table, [`Role::allows`], that the HTTP layer consults for
//! every route and nothing else duplicates.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::alert::UnknownVariant;

/// What a user or API key is allowed to do, as a whole. Assigned per user and per API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including users, API keys, sessions of others, signing keys and the audit
    /// log.
    Admin,
    /// Runs operations: acts on alerts, configures addons, manages poll targets.
    Operator,
    /// Reads everything an operator sees, changes nothing.
    Viewer,
    /// For integrations through API keys: reads, acts on alerts and ingests events, never
    /// administers.
    Service,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Viewer, Role::Service];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Service => "service",
        }
    }

    /// Whether this role may do `permission`: the one place where roles meet permissions.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Operator => matches!(
                permission,
                Read | ActOnAlerts | ManageSilences | ConfigureAddons | ManageTargets | ReadMetrics
            ),
            Role::Viewer => matches!(permission, Read | ReadMetrics),
            Role::Service => matches!(permission, Read | ActOnAlerts | IngestEvents | ReadMetrics),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Role, UnknownVariant> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownVariant {
                what: "role",
                value: s.to_owned(),
                expected: Role::ALL.map(Role::as_str).join(", "),
            })
    }
}

/// Something a route does that a role may or may not be allowed. Coarse on purpose: one per
/// kind of thing an operator reasons about, not one per route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Every read-only route outside administration: alerts, stats, addons, targets, credential
    /// listings (public fields only), unhandled traps, host keys.
    Read,
    /// Acknowledge, resolve and comment on alerts.
    ActOnAlerts,
    /// Create, change and expire silences: each hides every alert its matchers match, now and
    /// later, so it is an operator's decision, not an integration's.
    ManageSilences,
    /// Push events through the API the way webhook senders do.
    IngestEvents,
    /// Install, enable, disable and configure addons.
    ConfigureAddons,
    /// Create, change, delete and poll targets; forget pinned SSH host keys.
    ManageTargets,
    /// Poll credentials and SNMP trap communities and users: secrets, so administrators only.
    ManageCredentials,
    /// Create users, change roles, disable users, reset passwords.
    ManageUsers,
    /// Create, list and revoke API keys.
    ManageApiKeys,
    /// List and revoke anyone's sessions (everyone may list and end their own).
    ManageSessions,
    /// Read the audit log.
    ReadAudit,
    /// Rotate the token signing key and change runtime-wide settings.
    ManageSystem,
    /// Scrape `/metrics`: counters and gauges of the node, no alert content. Every role has
    /// it, so that a Prometheus server's API key can be the least one (`viewer`).
    ReadMetrics,
}

impl Permission {
    /// The name in API answers and the OpenAPI document, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::ActOnAlerts => "act_on_alerts",
            Permission::ManageSilences => "manage_silences",
            Permission::IngestEvents => "ingest_events",
            Permission::ConfigureAddons => "configure_addons",
            Permission::ManageTargets => "manage_targets",
            Permission::ManageCredentials => "manage_credentials",
            Permission::ManageUsers => "manage_users",
            Permission::ManageApiKeys => "manage_api_keys",
            Permission::ManageSessions => "manage_sessions",
            Permission::ReadAudit => "read_audit",
            Permission::ManageSystem => "manage_system",
            Permission::ReadMetrics => "read_metrics",
        }
    }

    pub const ALL: [Permission; 13] = [
        Permission::Read,
        Permission::ActOnAlerts,
        Permission::ManageSilences,
        Permission::IngestEvents,
        Permission::ConfigureAddons,
        Permission::ManageTargets,
        Permission::ManageCredentials,
        Permission::ManageUsers,
        Permission::ManageApiKeys,
        Permission::ManageSessions,
        Permission::ReadAudit,
        Permission::ManageSystem,
        Permission::ReadMetrics,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole table, written out: a change to [`Role::allows`] must change this too.
    #[test]
    fn permission_table() {
        use Permission::*;
        #[rustfmt::skip]
        let table: [(Permission, [bool; 4]); 13] = [
            //                      admin  operator viewer service
            (Read,              [true,  true,   true,  true ]),
            (ActOnAlerts,       [true,  true,   false, true ]),
            (ManageSilences,    [true,  true,   false, false]),
            (IngestEvents,      [true,  false,  false, true ]),
            (ConfigureAddons,   [true,  true,   false, false]),
            (ManageTargets,     [true,  true,   false, false]),
            (ManageCredentials, [true,  false,  false, false]),
            (ManageUsers,       [true,  false,  false, false]),
            (ManageApiKeys,     [true,  false,  false, false]),
            (ManageSessions,    [true,  false,  false, false]),
            (ReadAudit,         [true,  false,  false, false]),
            (ManageSystem,      [true,  false,  false, false]),
            (ReadMetrics,       [true,  true,   true,  true ]),
        ];
        assert_eq!(
            table.map(|(p, _)| p),
            Permission::ALL,
            "every permission is in the table, in order"
        );
        for (permission, allowed) in table {
            for (role, expected) in Role::ALL.into_iter().zip(allowed) {
                assert_eq!(role.allows(permission), expected, "{role} {permission:?}");
            }
        }
    }

    #[test]
    fn permission_names_are_their_serialization() {
        for permission in Permission::ALL {
            assert_eq!(
                serde_json::to_string(&permission).unwrap(),
                format!("\"{}\"", permission.as_str())
            );
        }
    }

    #[test]
    fn roles_parse_and_print() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{role}\""));
        }
        let err = "root".parse::<Role>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown role `root` (expected one of: admin, operator, viewer, service)"
        );
    }
}
