//! `WHERE` clauses built at run time from the filters a caller gave, for the session list and
//! the audit log: only the conditions in use appear in the text, each with its own placeholder.

use chrono::{DateTime, Utc};

/// A value bound to a dynamically built query.
pub(super) enum Bind {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

/// `SELECT {select} WHERE <the conditions given> {tail}`, numbering the placeholders, like
/// the alert list (see `list_query` in `alerts/read.rs` for why not `($1 IS NULL OR …)`).
pub(super) fn build_query(
    select: &str,
    conditions: Vec<(&str, Bind)>,
    tail: &str,
    tail_binds: Vec<Bind>,
) -> (String, Vec<Bind>) {
    let mut sql = select.to_owned();
    let mut binds = Vec::new();
    for (i, (condition, bind)) in conditions.into_iter().enumerate() {
        binds.push(bind);
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        sql.push_str(&condition.replace('?', &format!("${}", binds.len())));
    }
    let mut tail = tail.to_owned();
    for bind in tail_binds {
        binds.push(bind);
        tail = tail.replacen('?', &format!("${}", binds.len()), 1);
    }
    sql.push(' ');
    sql.push_str(&tail);
    (sql, binds)
}

/// Binds `$binds` to `$query` in order.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                $crate::store::filter_query::Bind::Text(text) => query.bind(text),
                $crate::store::filter_query::Bind::Int(int) => query.bind(int),
                $crate::store::filter_query::Bind::Time(time) => query.bind(time),
            };
        }
        query
    }};
}
pub(super) use bind_all;
