//! Lists as the store serves them: `WHERE` clauses built at run time from the filters a caller
//! gave (alerts, silences, sessions, the audit log), so that only the conditions in use appear
//! in the text, each with its own placeholder; and the page size.

use chrono::{DateTime, Utc};

use super::{LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX};

/// A value bound to a dynamically built query.
pub(super) enum Bind {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

/// `SELECT {select} WHERE <the conditions given> {tail}`, numbering the placeholders: each `?`
/// of a condition becomes its bind's `$n` (all of them, so a condition may use its value
/// twice), each `?` of `tail` the next of `tail_binds`.
///
/// Only the conditions used, rather than one static text with `($1 IS NULL OR status = $1)`
/// terms: each combination then gets its own (cached) plan that can use the matching index,
/// which a generic plan over optional terms cannot.
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

/// A page size as the store serves it: 0 means [`LIST_LIMIT_DEFAULT`], and at most
/// [`LIST_LIMIT_MAX`].
pub(super) fn clamp_limit(limit: u32) -> u32 {
    match limit {
        0 => LIST_LIMIT_DEFAULT,
        n => n.min(LIST_LIMIT_MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order_and_shared_within_a_condition() {
        let (sql, binds) = build_query(
            "SELECT x FROM t",
            vec![
                ("a = ?", Bind::Int(1)),
                ("(b = ? OR c = ?)", Bind::Text("v".to_owned())),
            ],
            "ORDER BY id DESC LIMIT ?",
            vec![Bind::Int(50)],
        );
        assert_eq!(
            sql,
            "SELECT x FROM t WHERE a = $1 AND (b = $2 OR c = $2) ORDER BY id DESC LIMIT $3"
        );
        assert_eq!(binds.len(), 3);
        let (sql, _) = build_query(
            "SELECT x FROM t",
            vec![],
            "ORDER BY id LIMIT ?",
            vec![Bind::Int(5)],
        );
        assert_eq!(sql, "SELECT x FROM t ORDER BY id LIMIT $1");
    }

    #[test]
    fn page_sizes_are_clamped() {
        assert_eq!(clamp_limit(0), LIST_LIMIT_DEFAULT);
        assert_eq!(clamp_limit(7), 7);
        assert_eq!(clamp_limit(LIST_LIMIT_MAX + 1), LIST_LIMIT_MAX);
    }
}
