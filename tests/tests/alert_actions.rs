//! Alert actions, alert history and silences over real HTTP, on SQLite and PostgreSQL: an
//! operator acknowledges, un-acknowledges, annotates and resolves alerts one by one and in bulk,
//! and reads who did what; the list's time-range and text filters; silences created through the
//! API (and, as from another node, straight in the database) make alerts arrive `suppressed`,
//! and alerts come back `active` with their first occurrence after the silence is gone. Every
//! refusal has the API's error shape and names the field or parameter.

use std::time::{SystemTime, UNIX_EPOCH};

use opsconductor::silence::SilenceSpec;
use opsconductor_tests::{Db, TestRuntime, both_databases, bundle};
use serde_json::{Value, json};

/// An Alertmanager notification with one entry per `(alertname, instance)`, all in `status`.
fn notification(status: &str, alerts: &[(&str, &str)]) -> Vec<u8> {
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|(name, instance)| {
            json!({
                "status": status,
                "labels": { "alertname": name, "instance": instance, "severity": "critical" },
                "annotations": { "summary": format!("{name} on {instance}"),
                                 "description": "Disk /var is 97% FULL" },
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "version": "4", "status": status, "alerts": alerts })).unwrap()
}

/// Posts a notification and returns the outcome of each entry (`created`, `updated`, ...).
async fn post(rt: &TestRuntime, status: &str, alerts: &[(&str, &str)]) -> Vec<String> {
    let (code, answer) = rt
        .post_webhook("alertmanager", notification(status, alerts))
        .await;
    assert_eq!(code, 200, "{answer}");
    answer["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["outcome"].as_str().unwrap().to_owned())
        .collect()
}

/// Sends `body` (raw text, or none) and returns status and parsed answer.
async fn call(rt: &TestRuntime, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let mut request = rt
        .http
        .request(method.parse().unwrap(), rt.url(path))
        .header("content-type", "application/json");
    if let Some(body) = body {
        request = request.body(body.to_owned());
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The message of a refusal, after checking its status and code.
fn refusal(answer: &(u16, Value), status: u16, code: &str) -> String {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    answer.1["error"]["message"].as_str().unwrap().to_owned()
}

/// The open alert of `alertname`.
async fn open_alert(rt: &TestRuntime, alertname: &str) -> Value {
    rt.alerts("?addon=alertmanager")
        .await
        .into_iter()
        .find(|a| a["alert_type"] == alertname && a["status"] != "resolved")
        .unwrap_or_else(|| panic!("no open {alertname} alert"))
}

/// The kinds of an alert's history entries, oldest first (all pages).
async fn history_kinds(rt: &TestRuntime, id: &Value) -> Vec<String> {
    let (status, page) = rt.get_json(&format!("/api/v1/alerts/{id}/history")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["next_after"], Value::Null);
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn operators_act_on_alerts(db: Db) {
    let rt = TestRuntime::start(db, &[bundle("alertmanager")]).await;
    assert_eq!(
        post(&rt, "firing", &[("DiskFull", "10.0.0.1:9100")]).await,
        ["created"]
    );
    let alert = open_alert(&rt, "DiskFull").await;
    let id = &alert["id"];
    assert_eq!(alert["status"], "active");

    // Acknowledge with a note, then again: the second one is told who has it.
    let (status, acked) = rt
        .send_json(
            "POST",
            &format!("/api/v1/alerts/{id}/acknowledge"),
            &json!({"note": "on it"}),
        )
        .await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["status"], "acknowledged");
    assert_eq!(acked["acknowledged_by"], rt.admin_actor.as_str());
    let again = call(
        &rt,
        "POST",
        &format!("/api/v1/alerts/{id}/acknowledge"),
        None,
    )
    .await;
    assert_eq!(
        refusal(&again, 409, "conflict"),
        format!("alert {id} is already acknowledged by {}", rt.admin_actor)
    );
    // A new occurrence leaves the acknowledgement alone.
    assert_eq!(
        post(&rt, "firing", &[("DiskFull", "10.0.0.1:9100")]).await,
        ["updated"]
    );
    assert_eq!(open_alert(&rt, "DiskFull").await["status"], "acknowledged");

    let (status, unacked) = call(
        &rt,
        "POST",
        &format!("/api/v1/alerts/{id}/unacknowledge"),
        None,
    )
    .await;
    assert_eq!((status, &unacked["status"]), (200, &json!("active")));
    assert_eq!(unacked["acknowledged_by"], Value::Null);
    let again = call(
        &rt,
        "POST",
        &format!("/api/v1/alerts/{id}/unacknowledge"),
        None,
    )
    .await;
    assert!(refusal(&again, 409, "conflict").contains("not acknowledged"));

    let (status, note) = rt
        .send_json(
            "POST",
            &format!("/api/v1/alerts/{id}/notes"),
            &json!({"text": "vendor ticket 4711"}),
        )
        .await;
    assert_eq!(status, 201, "{note}");
    assert_eq!(
        (
            &note["kind"],
            &note["actor"],
            &note["note"],
            &note["alert_id"]
        ),
        (
            &json!("note"),
            &json!(rt.admin_actor),
            &json!("vendor ticket 4711"),
            id
        )
    );

    let (status, resolved) = rt
        .send_json(
            "POST",
            &format!("/api/v1/alerts/{id}/resolve"),
            &json!({"note": "disk replaced"}),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolved_by"], rt.admin_actor.as_str());
    for action in ["resolve", "acknowledge", "unacknowledge"] {
        let answer = call(&rt, "POST", &format!("/api/v1/alerts/{id}/{action}"), None).await;
        assert!(
            refusal(&answer, 409, "conflict").contains("resolved"),
            "{action}"
        );
    }

    // Who did what, oldest first; occurrences are counted on the alert, not listed.
    let (status, page) = rt.get_json(&format!("/api/v1/alerts/{id}/history")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["alert"]["occurrence_count"], 2);
    let entries: Vec<(&str, &str, &Value)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                &e["note"],
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("created", "addon:alertmanager", &Value::Null),
            ("acknowledged", rt.admin_actor.as_str(), &json!("on it")),
            ("unacknowledged", rt.admin_actor.as_str(), &Value::Null),
            (
                "note",
                rt.admin_actor.as_str(),
                &json!("vendor ticket 4711")
            ),
            ("resolved", rt.admin_actor.as_str(), &json!("disk replaced")),
        ]
    );
    // The same, two at a time.
    let mut kinds = Vec::new();
    let mut path = format!("/api/v1/alerts/{id}/history?limit=2");
    loop {
        let (status, page) = rt.get_json(&path).await;
        assert_eq!(status, 200, "{page}");
        assert!(page["items"].as_array().unwrap().len() <= 2);
        kinds.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["kind"].as_str().unwrap().to_owned()),
        );
        match page["next_after"].as_i64() {
            Some(after) => path = format!("/api/v1/alerts/{id}/history?limit=2&after={after}"),
            None => break,
        }
    }
    assert_eq!(
        kinds,
        [
            "created",
            "acknowledged",
            "unacknowledged",
            "note",
            "resolved"
        ]
    );

    // Refusals name what is wrong: (method, path, body, status, code, message).
    type Case<'a> = (&'a str, String, Option<&'a str>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/api/v1/alerts/999999/acknowledge".into(),
            None,
            404,
            "not_found",
            "no alert with id 999999",
        ),
        (
            "POST",
            "/api/v1/alerts/abc/resolve".into(),
            None,
            400,
            "bad_id",
            "alert id `abc` is not a number",
        ),
        (
            "GET",
            "/api/v1/alerts/999999/history".into(),
            None,
            404,
            "not_found",
            "no alert with id 999999",
        ),
        (
            "POST",
            format!("/api/v1/alerts/{id}/notes"),
            Some(r#"{"text": "   "}"#),
            422,
            "invalid",
            "note field `text`: must not be empty",
        ),
        (
            "POST",
            format!("/api/v1/alerts/{id}/notes"),
            Some(r#"{"note": "x"}"#),
            422,
            "invalid",
            "note: unknown field `note`",
        ),
        (
            "POST",
            format!("/api/v1/alerts/{id}/notes"),
            Some("not json"),
            400,
            "bad_body",
            "note body is not valid JSON",
        ),
        (
            "POST",
            format!("/api/v1/alerts/{id}/acknowledge"),
            Some(r#"{"note": 5}"#),
            422,
            "invalid",
            "action field `note`: invalid type",
        ),
        (
            "GET",
            format!("/api/v1/alerts/{id}/history?limit=0"),
            None,
            400,
            "bad_query",
            "query parameter `limit`",
        ),
    ];
    for (method, path, body, status, code, message) in cases {
        let answer = call(&rt, method, &path, body).await;
        let got = refusal(&answer, status, code);
        assert!(got.starts_with(message), "{method} {path}: {got}");
    }
    rt.stop().await;
}
both_databases!(operators_act_on_alerts_e2e, operators_act_on_alerts);

async fn bulk_actions(db: Db) {
    let rt = TestRuntime::start(db, &[bundle("alertmanager")]).await;
    let names = ["A", "B", "C", "D"];
    let entries: Vec<(&str, &str)> = names.iter().map(|n| (*n, "10.0.0.2:9100")).collect();
    post(&rt, "firing", &entries).await;
    let mut ids = Vec::new();
    for name in names {
        ids.push(open_alert(&rt, name).await["id"].as_i64().unwrap());
    }
    call(
        &rt,
        "POST",
        &format!("/api/v1/alerts/{}/acknowledge", ids[1]),
        None,
    )
    .await;
    post(&rt, "resolved", &[("C", "10.0.0.2:9100")]).await;

    let (status, answer) = rt
        .send_json(
            "POST",
            "/api/v1/alerts/bulk",
            &json!({"ids": [ids[0], ids[1], ids[2], 999_999, ids[3]], "action": "acknowledge",
               "note": "maintenance crew"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["succeeded"].as_u64(), answer["failed"].as_u64()),
        (Some(2), Some(3))
    );
    let results = answer["results"].as_array().unwrap();
    let outcome = |i: usize| {
        let r = &results[i];
        (
            r["id"].as_i64().unwrap(),
            r["ok"].as_bool().unwrap(),
            r["alert"]["status"].as_str().unwrap_or("").to_owned(),
            r["error"]["code"].as_str().unwrap_or("").to_owned(),
        )
    };
    assert_eq!(outcome(0), (ids[0], true, "acknowledged".into(), "".into()));
    assert_eq!(outcome(1), (ids[1], false, "".into(), "conflict".into()));
    assert_eq!(outcome(2), (ids[2], false, "".into(), "conflict".into()));
    assert_eq!(outcome(3), (999_999, false, "".into(), "not_found".into()));
    assert_eq!(outcome(4), (ids[3], true, "acknowledged".into(), "".into()));
    assert_eq!(
        results[2]["error"]["message"],
        format!("alert {} is resolved", ids[2])
    );
    assert_eq!(
        history_kinds(&rt, &json!(ids[0])).await,
        ["created", "acknowledged"]
    );

    let (status, answer) = rt
        .send_json(
            "POST",
            "/api/v1/alerts/bulk",
            &json!({"ids": ids, "action": "note", "note": "post-mortem on Friday"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["succeeded"], 4, "notes go on resolved alerts too");

    let too_many: Vec<i64> = (1..=1001).collect();
    let cases = [
        (
            json!({"ids": [], "action": "resolve"}),
            "bulk action field `ids`: must name 1 to 1000 alerts",
        ),
        (
            json!({"ids": too_many, "action": "resolve"}),
            "bulk action field `ids`: must name 1 to 1000 alerts",
        ),
        (
            json!({"ids": [ids[0], ids[1], ids[0]], "action": "resolve"}),
            "bulk action field `ids`: alert",
        ),
        (
            json!({"ids": [ids[0]], "action": "note"}),
            "bulk action field `note`: is required",
        ),
        (
            json!({"ids": [ids[0]], "action": "snooze"}),
            "bulk action field `action`: unknown variant `snooze`",
        ),
        (
            json!({"ids": ["x"], "action": "resolve"}),
            "bulk action field `ids[0]`: invalid type",
        ),
        (
            json!({"action": "resolve"}),
            "bulk action: give either `ids` or `filter` (exactly one of them)",
        ),
        (
            json!({"ids": [ids[0]], "action": "resolve", "note": ""}),
            "bulk action field `note`: must not be empty",
        ),
    ];
    for (body, message) in cases {
        let answer = rt.send_json("POST", "/api/v1/alerts/bulk", &body).await;
        let got = refusal(&answer, 422, "invalid");
        assert!(got.starts_with(message), "{body}: {got}");
    }
    // Nothing was resolved by the refused requests.
    assert_eq!(open_alert(&rt, "A").await["status"], "acknowledged");
    rt.stop().await;
}
both_databases!(bulk_actions_e2e, bulk_actions);

async fn list_filters(db: Db) {
    let rt = TestRuntime::start(db, &[bundle("alertmanager")]).await;
    post(
        &rt,
        "firing",
        &[("LinkDown", "10.0.0.3:9100"), ("HighLoad", "10.0.0.4:9100")],
    )
    .await;
    let types = |alerts: Vec<Value>| {
        let mut t: Vec<String> = alerts
            .iter()
            .map(|a| a["alert_type"].as_str().unwrap().to_owned())
            .collect();
        t.sort();
        t
    };
    // Both were last seen when the notification arrived; `since` includes that instant and
    // `until` excludes it.
    let seen = open_alert(&rt, "LinkDown").await["last_seen_at"]
        .as_str()
        .unwrap()
        .replace('+', "%2B");
    assert_eq!(
        types(rt.alerts(&format!("?since={seen}")).await),
        ["HighLoad", "LinkDown"]
    );
    assert!(rt.alerts(&format!("?until={seen}")).await.is_empty());
    assert!(rt.alerts("?since=2100-01-01T00:00:00Z").await.is_empty());
    assert_eq!(
        types(
            rt.alerts("?since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00Z")
                .await
        ),
        ["HighLoad", "LinkDown"]
    );
    // Title ("LinkDown on 10.0.0.3:9100") or message, ignoring case.
    assert_eq!(types(rt.alerts("?q=linkdown").await), ["LinkDown"]);
    assert_eq!(
        types(rt.alerts("?q=97%25%20FULL").await),
        ["HighLoad", "LinkDown"]
    );
    assert_eq!(
        types(rt.alerts("?q=10.0.0.4&status=active").await),
        ["HighLoad"]
    );
    assert!(rt.alerts("?q=nowhere").await.is_empty());
    assert_eq!(
        types(rt.alerts("?q=").await).len(),
        2,
        "an empty search is no search"
    );

    let cases = [
        (
            "?since=yesterday",
            "query parameter `since`: `yesterday` is not an RFC 3339 time",
        ),
        ("?until=2025-13-01T00:00:00Z", "query parameter `until`"),
        (
            "?since=2025-03-02T00:00:00Z&until=2025-03-01T00:00:00Z",
            "query parameter `until`: must be after `since`",
        ),
        (
            "?status=sleeping",
            "query parameter `status`: unknown status `sleeping`",
        ),
        ("?severity=dire", "query parameter `severity`"),
        (
            "?limit=1001",
            "query parameter `limit`: must be between 1 and 1000",
        ),
    ];
    for (query, message) in cases {
        let answer = rt.get_json(&format!("/api/v1/alerts{query}")).await;
        let got = refusal(&answer, 400, "bad_query");
        assert!(got.starts_with(message), "{query}: {got}");
    }
    let long = "x".repeat(300);
    let answer = rt.get_json(&format!("/api/v1/alerts?q={long}")).await;
    assert!(refusal(&answer, 400, "bad_query").contains("`q`"));
    rt.stop().await;
}
both_databases!(list_filters_e2e, list_filters);

/// A silence body matching the alertmanager addon and `alertname`, in force for this century.
fn silence_body(alertname: &str) -> Value {
    json!({
        "matchers": { "addon": "alertmanager", "alert_type": alertname },
        "starts_at": "2000-01-01T00:00:00Z",
        "ends_at": "2100-01-01T00:00:00Z",
        "comment": "storage migration",
    })
}

/// The time of day in UTC, `HH:MM`, `hours` from now.
fn time_of_day_in(hours: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let minute = (now + hours * 3600).rem_euclid(86_400) / 60;
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

async fn silences_suppress_alerts(db: Db) {
    let rt = TestRuntime::start(db, &[bundle("alertmanager")]).await;
    let (status, silence) = rt
        .send_json("POST", "/api/v1/silences", &silence_body("DiskFull"))
        .await;
    assert_eq!(status, 201, "{silence}");
    let silence_id = silence["id"].as_i64().unwrap();
    assert_eq!(
        (
            &silence["state"],
            &silence["in_force"],
            &silence["created_by"]
        ),
        (&json!("active"), &json!(true), &json!(rt.admin_actor))
    );
    assert_eq!(silence["matchers"]["alert_type"], "DiskFull");
    let (status, got) = rt.get_json(&format!("/api/v1/silences/{silence_id}")).await;
    assert_eq!((status, &got), (200, &silence));

    // Raised under the silence: stored, deduplicated and counted, but suppressed; another
    // alert type from the same notification is not.
    let outcomes = post(
        &rt,
        "firing",
        &[("DiskFull", "10.0.0.5:9100"), ("LinkDown", "10.0.0.5:9100")],
    )
    .await;
    assert_eq!(outcomes, ["created", "created"]);
    post(&rt, "firing", &[("DiskFull", "10.0.0.5:9100")]).await;
    let disk = open_alert(&rt, "DiskFull").await;
    assert_eq!(
        (&disk["status"], &disk["occurrence_count"]),
        (&json!("suppressed"), &json!(2))
    );
    assert_eq!(open_alert(&rt, "LinkDown").await["status"], "active");
    assert_eq!(rt.alerts("?status=suppressed").await.len(), 1);
    let (_, page) = rt
        .get_json(&format!("/api/v1/alerts/{}/history", disk["id"]))
        .await;
    assert_eq!(
        page["items"][0]["details"],
        json!({"status": "suppressed", "silence_id": silence_id})
    );

    // Narrowed to another device by PUT: the next occurrence here is active again.
    let mut narrowed = silence_body("DiskFull");
    narrowed["matchers"]["device"] = json!("10.0.0.99");
    let (status, updated) = rt
        .send_json("PUT", &format!("/api/v1/silences/{silence_id}"), &narrowed)
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["matchers"]["device"], "10.0.0.99");
    assert_eq!(
        open_alert(&rt, "DiskFull").await["status"],
        "suppressed",
        "until it recurs"
    );
    post(&rt, "firing", &[("DiskFull", "10.0.0.5:9100")]).await;
    let disk = open_alert(&rt, "DiskFull").await;
    assert_eq!(
        (&disk["status"], &disk["occurrence_count"]),
        (&json!("active"), &json!(3))
    );
    assert_eq!(
        history_kinds(&rt, &disk["id"]).await,
        ["created", "unsuppressed"]
    );

    // Deleted: gone from the list and from matching.
    let (status, _) = call(
        &rt,
        "DELETE",
        &format!("/api/v1/silences/{silence_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let answer = rt.get_json(&format!("/api/v1/silences/{silence_id}")).await;
    refusal(&answer, 404, "not_found");
    let answer = call(
        &rt,
        "DELETE",
        &format!("/api/v1/silences/{silence_id}"),
        None,
    )
    .await;
    refusal(&answer, 404, "not_found");

    // A recurring silence is in force only inside its daily window (every day here, so
    // the test does not depend on the weekday it runs on).
    let every_day = json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
    let mut later_window = silence_body("Later");
    later_window["recurrence"] = json!({
        "days": every_day, "start": time_of_day_in(2), "end": time_of_day_in(3),
    });
    let (status, later) = rt
        .send_json("POST", "/api/v1/silences", &later_window)
        .await;
    assert_eq!(status, 201, "{later}");
    assert_eq!(
        (&later["state"], &later["in_force"]),
        (&json!("active"), &json!(false))
    );
    let mut this_window = silence_body("Now");
    this_window["recurrence"] = json!({
        "days": every_day, "start": time_of_day_in(-1), "end": time_of_day_in(1),
    });
    let (status, current) = rt.send_json("POST", "/api/v1/silences", &this_window).await;
    assert_eq!(status, 201, "{current}");
    assert_eq!(current["in_force"], true);
    post(
        &rt,
        "firing",
        &[("Later", "10.0.0.6:9100"), ("Now", "10.0.0.6:9100")],
    )
    .await;
    assert_eq!(open_alert(&rt, "Later").await["status"], "active");
    assert_eq!(open_alert(&rt, "Now").await["status"], "suppressed");

    // Lists: newest first, by state, in pages.
    let (status, list) = rt.get_json("/api/v1/silences").await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert_eq!(ids, [&current["id"], &later["id"]]);
    let (_, page) = rt.get_json("/api/v1/silences?limit=1").await;
    assert_eq!(page["next_before"], current["id"]);
    let (_, page) = rt
        .get_json(&format!(
            "/api/v1/silences?limit=1&before={}",
            current["id"]
        ))
        .await;
    assert_eq!(page["items"][0]["id"], later["id"]);
    let (_, expired) = rt.get_json("/api/v1/silences?state=expired").await;
    assert_eq!(expired["items"], json!([]));
    rt.stop().await;
}
both_databases!(silences_suppress_alerts_e2e, silences_suppress_alerts);

async fn silences_are_validated(db: Db) {
    let rt = TestRuntime::start(db, &[bundle("alertmanager")]).await;
    type Edit = fn(&mut Value);
    let cases: &[(Edit, &str)] = &[
        (
            |s| s["matchers"] = json!({}),
            "silence field `matchers`: needs at least one of",
        ),
        (
            |s| s["matchers"]["addon"] = json!("nagios"),
            "silence field `matchers.addon`: no addon `nagios` is installed",
        ),
        (
            |s| s["matchers"]["host"] = json!("x"),
            "silence field `matchers`: unknown field `host`",
        ),
        (
            |s| s["matchers"]["device"] = json!(" "),
            "silence field `matchers.device`: must not be empty",
        ),
        (
            |s| s["matchers"]["fields"] = json!({"job": 5}),
            "silence field `matchers.fields.job`: invalid type",
        ),
        (
            |s| s["ends_at"] = s["starts_at"].clone(),
            "silence field `ends_at`: must be after `starts_at`",
        ),
        (
            |s| s["starts_at"] = json!("tomorrow"),
            "silence field `starts_at`:",
        ),
        (
            |s| s["comment"] = json!(""),
            "silence field `comment`: must say why",
        ),
        (
            |s| {
                s.as_object_mut().unwrap().remove("comment");
            },
            "silence: missing field `comment`",
        ),
        (
            |s| s["recurrence"] = json!({"days": ["sat"], "start": "25:00", "end": "02:00"}),
            "silence field `recurrence.start`: `25:00` is not a time of day",
        ),
        (
            |s| s["recurrence"] = json!({"days": ["caturday"], "start": "22:00", "end": "02:00"}),
            "silence field `recurrence.days[0]`: unknown variant `caturday`",
        ),
        (
            |s| s["recurrence"] = json!({"days": [], "start": "22:00", "end": "02:00"}),
            "silence field `recurrence.days`: must name at least one day",
        ),
        (
            |s| s["recurrence"] = json!({"days": ["sat"], "start": "22:00", "end": "22:00"}),
            "silence field `recurrence.end`: must differ from `start`",
        ),
    ];
    for (edit, message) in cases {
        let mut body = silence_body("DiskFull");
        edit(&mut body);
        let answer = rt.send_json("POST", "/api/v1/silences", &body).await;
        let got = refusal(&answer, 422, "invalid");
        assert!(got.starts_with(message), "{body}: {got}");
    }
    let answer = call(&rt, "POST", "/api/v1/silences", Some("{")).await;
    assert!(refusal(&answer, 400, "bad_body").starts_with("silence body is not valid JSON"));
    let answer = rt
        .send_json("PUT", "/api/v1/silences/424242", &silence_body("X"))
        .await;
    assert_eq!(
        refusal(&answer, 404, "not_found"),
        "no silence with id 424242"
    );
    let answer = rt.get_json("/api/v1/silences/nope").await;
    assert_eq!(
        refusal(&answer, 400, "bad_id"),
        "silence id `nope` is not a number"
    );
    let answer = rt.get_json("/api/v1/silences?state=snoozed").await;
    assert!(refusal(&answer, 400, "bad_query").starts_with("query parameter `state`"));
    // A refused update changes nothing.
    let (_, created) = rt
        .send_json("POST", "/api/v1/silences", &silence_body("X"))
        .await;
    let mut bad = silence_body("Y");
    bad["comment"] = json!("");
    let answer = rt
        .send_json("PUT", &format!("/api/v1/silences/{}", created["id"]), &bad)
        .await;
    refusal(&answer, 422, "invalid");
    let (_, got) = rt
        .get_json(&format!("/api/v1/silences/{}", created["id"]))
        .await;
    assert_eq!(got["matchers"]["alert_type"], "X");
    assert!(rt.alerts("").await.is_empty());
    rt.stop().await;
}
both_databases!(silences_are_validated_e2e, silences_are_validated);

/// A silence written to the database by someone else (another node, the CLI) reaches this
/// node's writer through the silence generation, without a restart.
async fn silences_made_elsewhere_are_picked_up(db: Db) {
    let rt = TestRuntime::start(db, &[bundle("alertmanager")]).await;
    let elsewhere = opsconductor::server::connect_store(&rt.config)
        .await
        .unwrap();
    let spec: SilenceSpec = serde_json::from_value(json!({
        "matchers": { "device": "10.0.0.7" },
        "starts_at": "2000-01-01T00:00:00Z",
        "ends_at": "2100-01-01T00:00:00Z",
        "comment": "rack move",
    }))
    .unwrap();
    let silence = elsewhere
        .create_silence(spec, "user:cli", chrono::Utc::now())
        .await
        .unwrap();
    rt.wait_for("the writer to load the silence", 30, async |rt| {
        let held = rt.server.state().writer.silences().current();
        held.iter().any(|s| s.id == silence.id).then_some(())
    })
    .await;
    post(&rt, "firing", &[("DiskFull", "10.0.0.7:9100")]).await;
    assert_eq!(open_alert(&rt, "DiskFull").await["status"], "suppressed");

    elsewhere
        .delete_silence(silence.id, chrono::Utc::now())
        .await
        .unwrap();
    rt.wait_for("the writer to drop the silence", 30, async |rt| {
        rt.server
            .state()
            .writer
            .silences()
            .current()
            .is_empty()
            .then_some(())
    })
    .await;
    post(&rt, "firing", &[("DiskFull", "10.0.0.7:9100")]).await;
    assert_eq!(open_alert(&rt, "DiskFull").await["status"], "active");
    elsewhere.close().await;
    rt.stop().await;
}
both_databases!(
    silences_made_elsewhere_are_picked_up_e2e,
    silences_made_elsewhere_are_picked_up
);
