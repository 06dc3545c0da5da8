// One alert: everything it holds, why it is in its state (the silence suppressing it, the
// clear or person that resolved it, who acknowledged it), its history and notes, and the
// actions a role may take on it. Shown beside the console, or alone at /alerts/{id}.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api/client";
import type { Alert, AlertEvent, HistoryPage } from "../api/types";
import { can } from "../auth";
import { Ago, Confirm, Page, SeverityBadge, StatusBadge, When, notify, useAction } from "../components";
import { alerts, put, version } from "../live/store";
import { linkTo, navigate } from "../router";
import { useValue } from "../state";

export function AlertPage({ id }: { id: number }) {
  return (
    <Page title={`Alert ${id}`}>
      <AlertDetail id={id} />
    </Page>
  );
}

/** Why the alert is as it is, in a sentence. */
function why(alert: Alert, history: AlertEvent[]): preact.ComponentChildren {
  switch (alert.status) {
    case "suppressed": {
      const event = [...history].reverse().find((e) => (e.kind === "suppressed" || e.kind === "created") && e.details.silence_id !== undefined);
      const silence = event?.details.silence_id as number | undefined;
      return silence !== undefined ? (
        <>
          Suppressed by{" "}
          <a href={`/silences/${silence}`} onClick={linkTo(`/silences/${silence}`)}>
            silence {silence}
          </a>
          : it is counted, but nobody is called for it.
        </>
      ) : (
        "Suppressed by a silence: it is counted, but nobody is called for it."
      );
    }
    case "acknowledged":
      return (
        <>
          Acknowledged by {alert.acknowledged_by} <Ago at={alert.acknowledged_at} />.
        </>
      );
    case "resolved": {
      const by = alert.resolved_by ?? "";
      const how = by.startsWith("clear:")
        ? `by a clearing event (${by.slice(6)})`
        : by === "system:expiry"
          ? "by expiry: not seen for its addon's expiry time"
          : `by ${by}`;
      return (
        <>
          Resolved {how} <Ago at={alert.resolved_at} />.
        </>
      );
    }
    default:
      return "Active: open, and not acknowledged.";
  }
}

export function AlertDetail({ id, onClose }: { id: number; onClose?: () => void }) {
  useValue(version);
  const live = alerts.get(id)?.alert ?? null;
  const [loaded, setLoaded] = useState<HistoryPage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState("");
  const [confirmResolve, setConfirmResolve] = useState(false);
  const [busy, run] = useAction();
  const [n, setN] = useState(0);

  // The history, and the alert as stored (it may be resolved, and so not in the live model).
  // Read again when the live alert changes, so that new entries appear.
  const liveKey = live ? `${live.status}/${live.occurrence_count}/${live.last_seen_at}` : "";
  useEffect(() => {
    let current = true;
    api<HistoryPage>("GET", `/api/v1/alerts/${id}/history?limit=200`).then(
      (page) => current && (setLoaded(page), setError(null)),
      (e) => current && setError(e.message),
    );
    return () => {
      current = false;
    };
  }, [id, liveKey, n]);

  const alert = live ?? loaded?.alert ?? null;
  if (!alert) {
    return <div class="detail">{error ? <p class="error">{error}</p> : <p class="muted">Loading…</p>}</div>;
  }
  const history = loaded?.items ?? [];
  const act = (action: "acknowledge" | "unacknowledge" | "resolve") =>
    run(async () => {
      const changed = await api<Alert>("POST", `/api/v1/alerts/${id}/${action}`, {});
      put(changed);
      setN((x) => x + 1);
      notify("ok", `Alert ${id}: ${changed.status}`);
    });
  const addNote = (e: Event) => {
    e.preventDefault();
    if (!note.trim()) return;
    void run(async () => {
      await api("POST", `/api/v1/alerts/${id}/notes`, { text: note.trim() });
      setNote("");
      setN((x) => x + 1);
    });
  };
  const mayAct = can("act_on_alerts");
  const open = alert.status !== "resolved";
  const notes = history.filter((e) => e.kind === "note");
  return (
    <section class="detail" data-testid="alert-detail" aria-label={`Alert ${id}`}>
      <header class="detail-head">
        <SeverityBadge severity={alert.severity} />
        <span data-testid="alert-status" class={`status status-${alert.status}`}>
          {alert.status}
        </span>
        <h2>{alert.title}</h2>
        {onClose ? (
          <button type="button" class="icon" aria-label="Close the detail" onClick={onClose}>
            ×
          </button>
        ) : null}
      </header>
      <p class="why">{why(alert, history)}</p>
      {mayAct && open ? (
        <div class="actions" role="group" aria-label="Actions">
          {alert.status === "acknowledged" ? (
            <button type="button" data-testid="action-unacknowledge" disabled={busy} onClick={() => act("unacknowledge")}>
              Unacknowledge
            </button>
          ) : (
            <button type="button" class="primary" data-testid="action-acknowledge" disabled={busy} onClick={() => act("acknowledge")}>
              Acknowledge
            </button>
          )}
          <button type="button" data-testid="action-resolve" disabled={busy} onClick={() => setConfirmResolve(true)}>
            Resolve
          </button>
          {can("manage_silences") ? (
            <button type="button" data-testid="action-silence-like-this" onClick={() => navigate(`/silences/new?alert=${id}`)}>
              Silence alerts like this…
            </button>
          ) : null}
        </div>
      ) : null}
      {alert.message ? <pre class="message">{alert.message}</pre> : null}
      <dl class="facts">
        <dt>Device</dt>
        <dd>{[alert.device_name, alert.device_ip].filter(Boolean).join(" · ") || "—"}</dd>
        <dt>Addon</dt>
        <dd>
          <a href={`/addons/${alert.addon_id}`} onClick={linkTo(`/addons/${alert.addon_id}`)}>
            {alert.addon_id}
          </a>
        </dd>
        <dt>Type</dt>
        <dd>{alert.alert_type}</dd>
        <dt>Category</dt>
        <dd>{alert.category}</dd>
        <dt>Occurrences</dt>
        <dd>{alert.occurrence_count}</dd>
        <dt>First seen</dt>
        <dd>
          <When at={alert.first_seen_at} /> (<Ago at={alert.first_seen_at} />)
        </dd>
        <dt>Last seen</dt>
        <dd>
          <When at={alert.last_seen_at} /> (<Ago at={alert.last_seen_at} />)
        </dd>
        <dt>Occurred</dt>
        <dd>
          <When at={alert.occurred_at} />
        </dd>
        <dt>Id</dt>
        <dd>
          <a href={`/alerts/${id}`} onClick={linkTo(`/alerts/${id}`)}>
            {id}
          </a>{" "}
          <span class="muted mono" title="fingerprint">
            {alert.fingerprint.slice(0, 12)}
          </span>
        </dd>
      </dl>
      <h3>Fields</h3>
      {Object.keys(alert.fields).length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <table class="fields">
          <tbody>
            {Object.entries(alert.fields).map(([k, v]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td class="mono">{v}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Notes</h3>
      {notes.length === 0 ? <p class="muted">No notes yet.</p> : null}
      {notes.map((e) => (
        <blockquote key={e.id ?? e.at} class="note">
          <p>{e.note}</p>
          <footer class="muted">
            {e.actor}, <Ago at={e.at} />
          </footer>
        </blockquote>
      ))}
      {mayAct ? (
        <form class="note-form" onSubmit={addNote}>
          <label class="sr-only" for={`note-${id}`}>
            Add a note
          </label>
          <textarea id={`note-${id}`} data-testid="note-text" rows={2} maxLength={4096} placeholder="Add a note for whoever looks next…" value={note} onInput={(e) => setNote((e.target as HTMLTextAreaElement).value)} />
          <button type="submit" data-testid="note-add" disabled={busy || !note.trim()}>
            Add note
          </button>
        </form>
      ) : null}
      <h3>History</h3>
      {error ? <p class="error">{error}</p> : null}
      <ol class="history">
        {history.map((e, i) => (
          <li key={e.id ?? `d${i}`} data-testid="history-entry">
            <span class={`event event-${e.kind}`}>{e.kind}</span> by <span class="mono">{e.actor}</span> <Ago at={e.at} />
            {e.note && e.kind !== "note" ? <span class="muted"> — {e.note}</span> : null}
            {e.details.silence_id !== undefined ? (
              <span class="muted">
                {" "}
                (silence{" "}
                <a href={`/silences/${String(e.details.silence_id)}`} onClick={linkTo(`/silences/${String(e.details.silence_id)}`)}>
                  {String(e.details.silence_id)}
                </a>
                )
              </span>
            ) : null}
          </li>
        ))}
      </ol>
      {confirmResolve ? (
        <Confirm
          title="Resolve this alert?"
          okLabel="Resolve"
          danger
          onCancel={() => setConfirmResolve(false)}
          onOk={() => {
            setConfirmResolve(false);
            void act("resolve");
          }}
        >
          <p>
            <StatusBadge status={alert.status} /> {alert.title}
          </p>
          <p class="muted">Its next occurrence opens a new alert.</p>
        </Confirm>
      ) : null}
    </section>
  );
}
