//! `GET /metrics`: this node's counters, gauges and latency distributions for Prometheus.
//!
//! The counters are the ones `/api/v1/stats` and the addon list show, read at scrape time:
//! every numeric field of those sections becomes a family of its own,
//! `opsconductor_<section>_<field>`, with the field's documentation as its help text. A counter
//! added to a section therefore appears here without a second list to keep.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::{ApiError, AppState};
use crate::metrics::{self, Exposition, Family, Labels};
use crate::quarantine::QuarantineState;

/// Fields of the stats sections that are levels, not running totals.
const GAUGES: &[&str] = &["clients", "connections_open"];

pub(super) async fn scrape(State(state): State<AppState>) -> Result<Response, ApiError> {
    let by_status = state.store.count_alerts_by_status().await?;
    let open_by_severity = state.store.count_open_alerts_by_severity().await?;
    let mut out = Exposition::default();

    let mut build = Family::gauges(
        "opsconductor_build_info",
        "The running version and database kind; always 1.",
    );
    let database = state.store.kind().to_string();
    build.gauge(
        labels(&[
            ("version", env!("CARGO_PKG_VERSION")),
            ("database", database.as_str()),
        ]),
        1,
    );
    out.push(build);

    let traps = state.traps.counters.snapshot();
    sections(
        &mut out,
        "webhooks",
        &[(Vec::new(), state.webhook_counters.snapshot())],
    );
    sections(&mut out, "traps", &[(Vec::new(), traps)]);
    sections(&mut out, "writer", &[(Vec::new(), state.writer.stats())]);
    sections(&mut out, "events", &[(Vec::new(), state.events.stats())]);
    sections(&mut out, "http", &[(Vec::new(), state.http.snapshot())]);

    let addons = state.registry.enabled();
    let by_addon = |id: &str| labels(&[("addon", id)]);
    sections(
        &mut out,
        "addon",
        &addons
            .iter()
            .map(|a| (by_addon(a.id()), a.counters.snapshot()))
            .collect::<Vec<_>>(),
    );
    sections(
        &mut out,
        "sandbox",
        &addons
            .iter()
            .map(|a| (by_addon(a.id()), a.call_stats()))
            .collect::<Vec<_>>(),
    );

    let mut queues = Family::gauges(
        "opsconductor_queue_depth",
        "Work waiting now: `writer` jobs for the batching writer, `traps` decoded traps for the trap workers.",
    );
    // Every queued trap ends in exactly one of these four counters (inbound/trap.rs).
    let traps_done = traps.ingested + traps.unhandled + traps.addon_failed + traps.store_failed;
    queues
        .gauge(
            labels(&[("queue", "writer")]),
            state.writer.queue_depth() as i64,
        )
        .gauge(
            labels(&[("queue", "traps")]),
            traps.queued.saturating_sub(traps_done) as i64,
        );
    out.push(queues);
    let mut capacity = Family::gauges(
        "opsconductor_queue_capacity",
        "How much work each queue holds before callers wait (writer) or traps are dropped.",
    );
    capacity.gauge(
        labels(&[("queue", "writer")]),
        state.writer.queue_capacity() as i64,
    );
    out.push(capacity);

    let mut loaded = Family::gauges(
        "opsconductor_addons_loaded",
        "Addons enabled and running on this node.",
    );
    loaded.gauge(Vec::new(), addons.len() as i64);
    out.push(loaded);

    let mut quarantine = Family::gauges(
        "opsconductor_addon_quarantine",
        "1 for each addon's current quarantine state on this node (healthy, quarantined, probation).",
    );
    let now = std::time::Instant::now();
    for addon in &addons {
        let current = addon.quarantine.status(now).state;
        for state in [
            QuarantineState::Healthy,
            QuarantineState::Quarantined,
            QuarantineState::Probation,
        ] {
            let name = serde_json::to_value(state).expect("a state serialises");
            quarantine.gauge(
                labels(&[
                    ("addon", addon.id()),
                    ("state", name.as_str().unwrap_or_default()),
                ]),
                i64::from(state == current),
            );
        }
    }
    out.push(quarantine);

    let mut alerts = Family::gauges(
        "opsconductor_alerts",
        "Alerts in the database by status (all nodes' alerts: the database is shared).",
    );
    for (status, count) in by_status {
        alerts.gauge(labels(&[("status", status.as_str())]), count);
    }
    out.push(alerts);
    let mut open = Family::gauges(
        "opsconductor_open_alerts",
        "Alerts not resolved, by severity.",
    );
    for (severity, count) in open_by_severity {
        open.gauge(labels(&[("severity", severity.as_str())]), count);
    }
    out.push(open);

    let mut pools = Family::gauges(
        "opsconductor_database_connections",
        "Database connections of this node by pool, open and idle (open minus idle are in use).",
    );
    for (pool, open, idle) in state.store.pool_use() {
        pools
            .gauge(
                labels(&[("pool", pool), ("state", "open")]),
                i64::from(open),
            )
            .gauge(
                labels(&[("pool", pool), ("state", "idle")]),
                i64::from(idle),
            );
    }
    out.push(pools);

    let mut ingest = Family::seconds(
        "opsconductor_ingest_seconds",
        "From an event reaching its addon to its alerts committed, by source and addon.",
    );
    let mut calls = Family::seconds(
        "opsconductor_sandbox_call_seconds",
        "Wall time of each addon call in the sandbox, host imports included.",
    );
    let mut polls = Family::seconds(
        "opsconductor_poll_seconds",
        "Each poll of a target, I/O, parse and store included, by addon.",
    );
    for addon in &addons {
        let times = &addon.counters.ingest_time;
        for (source, histogram) in [
            ("webhook", &times.webhook),
            ("snmp_trap", &times.snmp_trap),
            ("poll", &times.poll),
        ] {
            ingest.duration(
                labels(&[("source", source), ("addon", addon.id())]),
                histogram,
            );
        }
        calls.duration(by_addon(addon.id()), addon.component.call_times());
        polls.duration(by_addon(addon.id()), &addon.counters.poll_time);
    }
    out.push(ingest);
    out.push(calls);
    out.push(polls);

    let mut batch = Family::sizes(
        "opsconductor_writer_batch_actions",
        "Alert actions per committed writer batch: how well concurrent events share a commit.",
    );
    batch.size(Vec::new(), state.writer.batch_sizes());
    out.push(batch);
    let mut commit = Family::seconds(
        "opsconductor_writer_commit_seconds",
        "How long each committed writer batch's transaction took.",
    );
    commit.duration(Vec::new(), state.writer.commit_times());
    out.push(commit);

    Ok(([(CONTENT_TYPE, metrics::CONTENT_TYPE)], out.render()).into_response())
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// One family per numeric field of `T`, `opsconductor_<section>_<field>`, with a sample for
/// each row's labels: a counter, or a gauge for the fields in [`GAUGES`]. Fields that are not
/// numbers (a timestamp) are left out.
fn sections<T: Serialize + JsonSchema>(out: &mut Exposition, section: &str, rows: &[(Labels, T)]) {
    let schema = schemars::schema_for!(T);
    let help_of = |field: &str| {
        schema
            .get("properties")
            .and_then(|p| p.get(field))
            .and_then(|p| p.get("description"))
            .and_then(Value::as_str)
            .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| format!("`{section}.{field}`, as `/api/v1/stats` shows it."))
    };
    let mut families: Vec<(String, Family)> = Vec::new();
    for (row_labels, row) in rows {
        let Ok(Value::Object(fields)) = serde_json::to_value(row) else {
            continue;
        };
        for (field, value) in fields {
            let Some(value) = value.as_u64() else {
                continue;
            };
            let family = match families.iter_mut().find(|(f, _)| *f == field) {
                Some((_, family)) => family,
                None => {
                    let name = format!("opsconductor_{section}_{field}");
                    let family = if GAUGES.contains(&field.as_str()) {
                        Family::gauges(name, help_of(&field))
                    } else {
                        Family::counters(name, help_of(&field))
                    };
                    families.push((field.clone(), family));
                    &mut families.last_mut().expect("just pushed").1
                }
            };
            if GAUGES.contains(&field.as_str()) {
                family.gauge(row_labels.clone(), value as i64);
            } else {
                family.counter(row_labels.clone(), value);
            }
        }
    }
    for (_, family) in families {
        out.push(family);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each name in [`GAUGES`] is a field of a section that `scrape` writes: a renamed field
    /// would otherwise turn a level into a counter without anyone noticing.
    #[test]
    fn every_gauge_is_a_stats_field() {
        let fields = |v: Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        let mut all = fields(serde_json::to_value(crate::bus::BusStats::default()).unwrap());
        all.extend(fields(
            serde_json::to_value(crate::http_server::HttpStats::default()).unwrap(),
        ));
        for gauge in GAUGES {
            assert!(all.iter().any(|f| f == gauge), "no stats field `{gauge}`");
        }
    }

    #[test]
    fn sections_name_each_field_and_keep_its_doc() {
        let mut out = Exposition::default();
        let stats = crate::writer::WriterStats {
            jobs: 4,
            ..Default::default()
        };
        sections(&mut out, "writer", &[(Vec::new(), stats)]);
        let text = out.render();
        assert!(
            text.contains("opsconductor_writer_jobs_total 4\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "# HELP opsconductor_writer_jobs Write requests (one per event) answered."
            ),
            "{text}"
        );
    }
}
