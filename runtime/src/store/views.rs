//! Saved console views: a name and the console's URL query, per owner, optionally shared with
//! everyone. The store keeps the query as text; the dashboard reads it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Context, Store, StoreError, ts};

/// Longest view name and query, in bytes (a query is a URL's query string).
pub const MAX_VIEW_NAME_LEN: usize = 100;
pub const MAX_VIEW_QUERY_LEN: usize = 2048;
/// Views one owner may keep: a console's menu, not a database.
pub const MAX_VIEWS_PER_OWNER: i64 = 200;

const VIEW_COLUMNS: &str = "id, owner, name, query, shared, created_at";

/// A saved view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, schemars::JsonSchema)]
pub struct SavedView {
    pub id: i64,
    /// Who saved it: `user:<name>` or `key:<name>`.
    pub owner: String,
    pub name: String,
    /// The console's URL query string (`q=...&group=device`).
    pub query: String,
    /// Listed to everyone, not only its owner.
    pub shared: bool,
    pub created_at: DateTime<Utc>,
}

/// A view to save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewView {
    pub name: String,
    pub query: String,
    pub shared: bool,
}

impl NewView {
    fn check(mut self) -> Result<NewView, StoreError> {
        self.name = self.name.trim().to_owned();
        if self.name.is_empty() || self.name.len() > MAX_VIEW_NAME_LEN {
            return Err(StoreError::Invalid(format!(
                "view field `name`: must be 1 to {MAX_VIEW_NAME_LEN} bytes"
            )));
        }
        if self.query.len() > MAX_VIEW_QUERY_LEN {
            return Err(StoreError::Invalid(format!(
                "view field `query`: is longer than {MAX_VIEW_QUERY_LEN} bytes"
            )));
        }
        Ok(self)
    }
}

impl Store {
    /// `owner`'s views and everyone's shared ones, by name.
    pub async fn list_views(&self, owner: &str) -> Result<Vec<SavedView>, StoreError> {
        let sql = format!(
            "SELECT {VIEW_COLUMNS} FROM saved_views WHERE owner = $1 OR shared = $2 \
             ORDER BY name, id"
        );
        Ok(with_pool!(self, read, |pool| {
            sqlx::query_as(&sql)
                .bind(owner)
                .bind(true)
                .fetch_all(pool)
                .await
                .context("listing saved views")?
        }))
    }

    /// Saves a view for `owner`. [`StoreError::Conflict`] when `owner` has one of that name
    /// already (or [`MAX_VIEWS_PER_OWNER`]); [`StoreError::Invalid`] names a bad field.
    pub async fn create_view(
        &self,
        owner: &str,
        view: NewView,
        now: DateTime<Utc>,
    ) -> Result<SavedView, StoreError> {
        const OP: &str = "saving a view";
        let view = view.check()?;
        let sql = format!(
            "INSERT INTO saved_views (owner, name, query, shared, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner, name) DO NOTHING \
             RETURNING {VIEW_COLUMNS}"
        );
        let at = ts(now);
        let row: Option<SavedView> = with_pool!(self, write, |pool| {
            let mut tx = super::begin_write(pool).await.context(OP)?;
            let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM saved_views WHERE owner = $1")
                .bind(owner)
                .fetch_one(&mut *tx)
                .await
                .context(OP)?;
            if held >= MAX_VIEWS_PER_OWNER {
                return Err(StoreError::Conflict(format!(
                    "{owner} has {held} saved views already; delete one first"
                )));
            }
            let row = sqlx::query_as(&sql)
                .bind(owner)
                .bind(&view.name)
                .bind(&view.query)
                .bind(view.shared)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await
                .context(OP)?;
            tx.commit().await.context(OP)?;
            row
        });
        row.ok_or_else(|| {
            StoreError::Conflict(format!("a view named `{}` exists already", view.name))
        })
    }

    /// Deletes view `id` if `owner` saved it; [`StoreError::NotFound`] otherwise (someone
    /// else's view is not theirs to delete, shared or not).
    pub async fn delete_view(&self, owner: &str, id: i64) -> Result<(), StoreError> {
        let deleted = with_pool!(self, write, |pool| {
            sqlx::query("DELETE FROM saved_views WHERE id = $1 AND owner = $2")
                .bind(id)
                .bind(owner)
                .execute(pool)
                .await
                .context("deleting a view")?
                .rows_affected()
        });
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
