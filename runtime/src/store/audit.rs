//! The audit log: what an entry records ([`AuditRecord`], [`AuditOutcome`]), appending one,
//! and reading the log back ([`AuditEntry`], filtered by [`AuditFilter`]).
//!
//! The changes the other files here make (users, sessions, API keys, signing keys) write their
//! entry with `insert_audit!` in the transaction of the change, so the log cannot miss a change
//! that happened nor show one that was rolled back.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;

use super::filter_query::{Bind, bind_all, build_query, clamp_limit};
use super::{Context, Store, StoreError, parse_role, ts};
use crate::alert::UnknownVariant;
use crate::identity::{Actor, Role};

pub(super) const INSERT_AUDIT_SQL: &str = "INSERT INTO audit_log \
     (at, actor, role, source_ip, action, target, before_state, after_state, outcome) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Appends `$record` (an [`AuditRecord`]) to the audit log through `$executor`, usually the
/// transaction of the change it describes. A macro because the body must compile once per
/// backend, like `with_pool!`'s.
macro_rules! insert_audit {
    ($executor:expr, $record:expr, $at:expr, $op:expr) => {{
        let record: &$crate::store::AuditRecord = $record;
        let inserted = sqlx::query($crate::store::audit::INSERT_AUDIT_SQL)
            .bind($at)
            .bind(&record.actor)
            .bind(record.role.map($crate::identity::Role::as_str))
            .bind(record.source_ip.as_deref())
            .bind(&record.action)
            .bind(record.target.as_deref())
            .bind(record.before.as_ref().map(sqlx::types::Json))
            .bind(record.after.as_ref().map(sqlx::types::Json))
            .bind(record.outcome.as_str())
            .execute($executor)
            .await;
        $crate::store::Context::context(inserted, $op)?;
    }};
}
pub(super) use insert_audit;

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Success,
    /// Refused for bad credentials or tokens (a failed login, a reused refresh token).
    Failure,
    /// Refused for want of permission.
    Denied,
}

impl AuditOutcome {
    pub const ALL: [AuditOutcome; 3] = [
        AuditOutcome::Success,
        AuditOutcome::Failure,
        AuditOutcome::Denied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Failure => "failure",
            AuditOutcome::Denied => "denied",
        }
    }
}

impl FromStr for AuditOutcome {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<AuditOutcome, UnknownVariant> {
        AuditOutcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| UnknownVariant {
                what: "outcome",
                value: s.to_owned(),
                expected: AuditOutcome::ALL.map(AuditOutcome::as_str).join(", "),
            })
    }
}

/// An entry to append to the audit log. `before` and `after` describe the change; they must
/// never hold a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub actor: String,
    pub role: Option<Role>,
    pub source_ip: Option<String>,
    /// `noun.verb`, e.g. [`action::LOGIN`](crate::identity::action::LOGIN).
    pub action: String,
    /// What was acted on, e.g. `user:alice`, `key:ci-bot`, `session:<id>`.
    pub target: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub outcome: AuditOutcome,
}

impl AuditRecord {
    pub fn new(
        actor: &Actor,
        action: &str,
        target: Option<String>,
        outcome: AuditOutcome,
    ) -> AuditRecord {
        AuditRecord {
            actor: actor.name.clone(),
            role: actor.role,
            source_ip: actor.source_ip.map(|ip| ip.to_string()),
            action: action.to_owned(),
            target,
            before: None,
            after: None,
            outcome,
        }
    }

    pub fn before(mut self, before: Value) -> AuditRecord {
        self.before = Some(before);
        self
    }

    pub fn after(mut self, after: Value) -> AuditRecord {
        self.after = Some(after);
        self
    }
}

/// An entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub role: Option<Role>,
    pub source_ip: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub outcome: AuditOutcome,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    role: Option<String>,
    source_ip: Option<String>,
    action: String,
    target: Option<String>,
    before_state: Option<Json<Value>>,
    after_state: Option<Json<Value>>,
    outcome: String,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> Result<AuditEntry, StoreError> {
        let whose = format_args!("audit entry {}", row.id);
        Ok(AuditEntry {
            role: row.role.map(|r| parse_role(&r, whose)).transpose()?,
            outcome: row
                .outcome
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("{whose}: {e}")))?,
            id: row.id,
            at: row.at,
            actor: row.actor,
            source_ip: row.source_ip,
            action: row.action,
            target: row.target,
            before: row.before_state.map(|j| j.0),
            after: row.after_state.map(|j| j.0),
        })
    }
}

/// What [`Store::audit_log`] lists, newest first; `None` fields do not filter. Page with
/// `before_id` (the smallest id of the previous page). The limit is clamped to
/// 1..=[`super::LIST_LIMIT_MAX`], and 0 means [`super::LIST_LIMIT_DEFAULT`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub outcome: Option<AuditOutcome>,
    pub before_id: Option<i64>,
    pub limit: u32,
}

impl Store {
    /// Appends an entry to the audit log on its own (changes made here write theirs in their
    /// own transaction).
    pub async fn append_audit(
        &self,
        record: &AuditRecord,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "writing an audit entry";
        with_pool!(self, write, |pool| {
            insert_audit!(pool, record, ts(now), OP);
        });
        Ok(())
    }

    /// Audit entries matching `filter`, newest first.
    pub async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut conditions = Vec::new();
        if let Some(actor) = &filter.actor {
            conditions.push(("actor = ?", Bind::Text(actor.clone())));
        }
        if let Some(action) = &filter.action {
            conditions.push(("action = ?", Bind::Text(action.clone())));
        }
        if let Some(target) = &filter.target {
            conditions.push(("target = ?", Bind::Text(target.clone())));
        }
        if let Some(outcome) = filter.outcome {
            conditions.push(("outcome = ?", Bind::Text(outcome.as_str().to_owned())));
        }
        if let Some(before) = filter.before_id {
            conditions.push(("id < ?", Bind::Int(before)));
        }
        let (sql, binds) = build_query(
            "SELECT id, at, actor, role, source_ip, action, target, before_state, after_state, \
                 outcome FROM audit_log",
            conditions,
            "ORDER BY id DESC LIMIT ?",
            vec![Bind::Int(i64::from(clamp_limit(filter.limit)))],
        );
        let rows: Vec<AuditRow> = with_pool!(self, read, |pool| {
            bind_all!(sqlx::query_as(&sql), binds)
                .fetch_all(pool)
                .await
                .context("reading the audit log")?
        });
        rows.into_iter().map(AuditEntry::try_from).collect()
    }
}
