// Silences (maintenance windows): the list, and the editor that creates and changes them, with
// a live count of the open alerts its matchers would cover. The editor starts from an alert
// ("silence alerts like this"), from a console filter, or from ticked alerts.
import { useEffect, useState } from "preact/hooks";
import { api, problem } from "../api/client";
import { type Alert, DAYS, type Day, type Silence, type SilenceMatchers, type SilencePage, type SilencePreview, type SilenceSpec } from "../api/types";
import { can } from "../auth";
import { Ago, Confirm, Loading, Page, When, notify, useLoad } from "../components";
import { silenceMatchersOf } from "../filter";
import { alerts } from "../live/store";
import { linkTo, location, navigate } from "../router";
import { useValue } from "../state";

export function SilencesPage({ path }: { path: string }) {
  const loc = useValue(location);
  if (path === "/silences/new") return <SilenceEditor key={loc.query.toString()} />;
  const id = /^\/silences\/(\d+)$/.exec(path);
  if (id) return <SilenceEditor key={id[1]} id={Number(id[1])} />;
  return <SilenceList />;
}

function describe(m: SilenceMatchers): string {
  const parts = [
    m.addon ? `addon=${m.addon}` : null,
    m.alert_type ? `type=${m.alert_type}` : null,
    m.device ? `device=${m.device}` : null,
    ...Object.entries(m.fields ?? {}).map(([k, v]) => `${k}=${v}`),
  ];
  return parts.filter(Boolean).join(" ");
}

function SilenceList() {
  const [state, setState] = useState<"" | "active" | "pending" | "expired">("");
  const { data, error, reload } = useLoad(() => api<SilencePage>("GET", `/api/v1/silences?limit=500${state ? `&state=${state}` : ""}`), [state]);
  const [expiring, setExpiring] = useState<Silence | null>(null);
  const [deleting, setDeleting] = useState<Silence | null>(null);
  const mayAct = can("manage_silences");
  const remove = async (s: Silence) => {
    setDeleting(null);
    try {
      await api("DELETE", `/api/v1/silences/${s.id}`);
      notify("ok", `Silence ${s.id} deleted`);
      reload();
    } catch (e) {
      notify("error", problem(e));
    }
  };
  const expire = async (s: Silence) => {
    setExpiring(null);
    try {
      // Ends now; one that has not started yet is moved to have ended now too (a silence must
      // end after it starts).
      const now = Date.now();
      const starts = Date.parse(s.starts_at) < now ? s.starts_at : new Date(now - 1000).toISOString();
      const spec: SilenceSpec = { matchers: s.matchers, starts_at: starts, ends_at: new Date(now).toISOString(), recurrence: s.recurrence ?? null, comment: s.comment };
      await api("PUT", `/api/v1/silences/${s.id}`, spec);
      notify("ok", `Silence ${s.id} expired`);
      reload();
    } catch (e) {
      notify("error", problem(e));
    }
  };
  return (
    <Page
      title="Silences"
      actions={
        mayAct ? (
          <a class="button primary" href="/silences/new" onClick={linkTo("/silences/new")}>
            New silence
          </a>
        ) : null
      }
    >
      <div class="toolbar-row">
        <label class="inline">
          Show
          <select value={state} onChange={(e) => setState((e.target as HTMLSelectElement).value as typeof state)}>
            <option value="">all</option>
            <option value="active">active</option>
            <option value="pending">pending</option>
            <option value="expired">expired</option>
          </select>
        </label>
      </div>
      {!data ? (
        <Loading error={error} />
      ) : data.items.length === 0 ? (
        <p class="muted">No silences{state ? ` ${state}` : ""}.</p>
      ) : (
        <table class="table">
          <thead>
            <tr>
              <th>State</th>
              <th>Matchers</th>
              <th>Window</th>
              <th>Comment</th>
              <th>By</th>
              <th>
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {data.items.map((s) => (
              <tr key={s.id} data-testid="silence-row" data-silence-id={s.id}>
                <td>
                  <span class={`state state-${s.state}`}>{s.state}</span>
                  {s.state === "active" ? <div class={s.in_force ? "small" : "muted small"}>{s.in_force ? "in force now" : "outside its hours now"}</div> : null}
                </td>
                <td class="mono">
                  <a href={`/silences/${s.id}`} onClick={linkTo(`/silences/${s.id}`)}>
                    {describe(s.matchers)}
                  </a>
                </td>
                <td>
                  <When at={s.starts_at} /> → <When at={s.ends_at} />
                  {s.recurrence ? (
                    <div class="muted">
                      {s.recurrence.days.join(", ")} {s.recurrence.start}–{s.recurrence.end} UTC
                    </div>
                  ) : null}
                </td>
                <td>{s.comment}</td>
                <td>
                  {s.created_by}
                  <div class="muted">
                    <Ago at={s.created_at} />
                  </div>
                </td>
                <td class="row-actions">
                  {mayAct && s.state !== "expired" ? (
                    <button type="button" onClick={() => setExpiring(s)}>
                      Expire
                    </button>
                  ) : null}
                  {mayAct ? (
                    <button type="button" class="danger" aria-label={`Delete silence ${s.id}`} onClick={() => setDeleting(s)}>
                      Delete
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {expiring ? (
        <Confirm title="Expire this silence now?" okLabel="Expire" danger onCancel={() => setExpiring(null)} onOk={() => void expire(expiring)}>
          <p class="mono">{describe(expiring.matchers)}</p>
          <p class="muted">Alerts it suppressed become active at their next occurrence.</p>
        </Confirm>
      ) : null}
      {deleting ? (
        <Confirm title="Delete this silence?" okLabel="Delete" danger onCancel={() => setDeleting(null)} onOk={() => void remove(deleting)}>
          <p class="mono">{describe(deleting.matchers)}</p>
          <p class="muted">It leaves the list for good; expiring it instead keeps it on record.</p>
        </Confirm>
      ) : null}
    </Page>
  );
}

interface Form {
  addon: string;
  device: string;
  alertType: string;
  fields: [string, string][];
  startsAt: string;
  endsAt: string;
  recurring: boolean;
  days: Day[];
  from: string;
  to: string;
  comment: string;
}

/** `<input type="datetime-local">` speaks local time without a zone. */
function localInput(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function blank(): Form {
  const now = new Date();
  return {
    addon: "",
    device: "",
    alertType: "",
    fields: [],
    startsAt: localInput(now),
    endsAt: localInput(new Date(now.getTime() + 2 * 3600_000)),
    recurring: false,
    days: ["sat", "sun"],
    from: "22:00",
    to: "06:00",
    comment: "",
  };
}

/** Fields that name what an alert is about, rather than what it says: silenced by default. */
const IDENTITY_FIELDS = /^(alertname|instance|job|ifIndex|ifName|interface|mount|service|host|sensor|check|namespace|pod|container)$/;

/** The editor filled in from an alert: what identifies the problem, not what it says. */
function fromAlert(a: Alert): { form: Form; note: string } {
  const form = blank();
  form.addon = a.addon_id;
  form.alertType = a.alert_type;
  form.device = a.device_ip ?? a.device_name ?? "";
  form.fields = Object.entries(a.fields).filter(([k]) => IDENTITY_FIELDS.test(k));
  return { form, note: `From alert ${a.id}: ${a.title}` };
}

function fromQuery(query: URLSearchParams): { form: Form; note: string | null } {
  const form = blank();
  const alertId = query.get("alert");
  if (alertId) {
    const a = alerts.get(Number(alertId))?.alert;
    // Not in the model yet (a reload of this page): the editor reads it itself.
    if (a) return fromAlert(a);
    return { form, note: null };
  }
  const q = query.get("q");
  if (q !== null) {
    try {
      const m = silenceMatchersOf(q);
      form.addon = m.addon ?? "";
      form.device = m.device ?? "";
      form.alertType = m.alert_type ?? "";
      form.fields = Object.entries(m.fields);
      return {
        form,
        note:
          m.left.length > 0
            ? `From the filter ${q}. A silence matches exact values of addon, device, alert type and fields only, so these terms are not carried over (the silence is wider than the filter): ${m.left.join(" ")}`
            : `From the filter ${q}`,
      };
    } catch {
      return { form, note: null };
    }
  }
  const ids = query.get("ids");
  if (ids) {
    const picked = ids
      .split(",")
      .map((i) => alerts.get(Number(i))?.alert)
      .filter((a) => a !== undefined);
    if (picked.length > 0) {
      const same = <T,>(f: (a: (typeof picked)[0]) => T) => (picked.every((a) => f(a) === f(picked[0])) ? f(picked[0]) : undefined);
      form.addon = same((a) => a.addon_id) ?? "";
      form.alertType = same((a) => a.alert_type) ?? "";
      form.device = (same((a) => a.device_ip ?? a.device_name ?? "") as string | undefined) ?? "";
      form.fields = Object.entries(picked[0].fields).filter(([k, v]) => picked.every((a) => a.fields[k] === v));
      return { form, note: `From ${picked.length} ticked alerts: what they all share.` };
    }
  }
  return { form, note: null };
}

function formOf(s: Silence): Form {
  return {
    addon: s.matchers.addon ?? "",
    device: s.matchers.device ?? "",
    alertType: s.matchers.alert_type ?? "",
    fields: Object.entries(s.matchers.fields ?? {}),
    startsAt: localInput(new Date(s.starts_at)),
    endsAt: localInput(new Date(s.ends_at)),
    recurring: !!s.recurrence,
    days: s.recurrence?.days ?? ["sat", "sun"],
    from: s.recurrence?.start ?? "22:00",
    to: s.recurrence?.end ?? "06:00",
    comment: s.comment,
  };
}

function specOf(f: Form): SilenceSpec {
  return {
    matchers: {
      addon: f.addon.trim() || null,
      device: f.device.trim() || null,
      alert_type: f.alertType.trim() || null,
      fields: Object.fromEntries(f.fields.filter(([k]) => k.trim() !== "").map(([k, v]) => [k.trim(), v])),
    },
    starts_at: new Date(f.startsAt).toISOString(),
    ends_at: new Date(f.endsAt).toISOString(),
    recurrence: f.recurring ? { days: f.days, start: f.from, end: f.to } : null,
    comment: f.comment,
  };
}

function SilenceEditor({ id }: { id?: number }) {
  const loc = useValue(location);
  const initial = id === undefined ? fromQuery(loc.query) : null;
  const [form, setForm] = useState<Form>(initial?.form ?? blank());
  const [note, setNote] = useState<string | null>(initial?.note ?? null);
  const [loaded, setLoaded] = useState<Silence | null>(null);
  const [preview, setPreview] = useState<SilencePreview | null>(null);
  const [previewError, setPreviewError] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const mayAct = can("manage_silences");

  useEffect(() => {
    const alertId = loc.query.get("alert");
    // Filled from the model at the first render already; else the alert may have reached the
    // model since (the snapshot landing between render and effect), or the editor reads it.
    if (id !== undefined || !alertId || initial?.note) return;
    const fill = (a: Alert) => {
      const filled = fromAlert(a);
      setForm(filled.form);
      setNote(filled.note);
    };
    const known = alerts.get(Number(alertId))?.alert;
    if (known) {
      fill(known);
      return;
    }
    api<Alert>("GET", `/api/v1/alerts/${alertId}`).then(fill, (e) => setError(problem(e)));
  }, [id]);

  useEffect(() => {
    if (id === undefined) return;
    api<Silence>("GET", `/api/v1/silences/${id}`).then(
      (s) => {
        setLoaded(s);
        setForm(formOf(s));
      },
      (e) => setError(problem(e)),
    );
  }, [id]);

  // The preview follows the matchers, a moment after the last change.
  const matcherKey = JSON.stringify([form.addon, form.device, form.alertType, form.fields]);
  useEffect(() => {
    const t = setTimeout(() => {
      api<SilencePreview>("POST", "/api/v1/silences/preview", { matchers: specOf(form).matchers }).then(
        (p) => {
          setPreview(p);
          setPreviewError(null);
        },
        (e) => {
          setPreview(null);
          setPreviewError(problem(e));
        },
      );
    }, 300);
    return () => clearTimeout(t);
  }, [matcherKey]);

  const set = <K extends keyof Form>(k: K, v: Form[K]) => setForm((f) => ({ ...f, [k]: v }));
  const duration = (hours: number) => {
    const start = new Date(form.startsAt);
    set("endsAt", localInput(new Date(start.getTime() + hours * 3600_000)));
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const saved = await api<Silence>(id === undefined ? "POST" : "PUT", id === undefined ? "/api/v1/silences" : `/api/v1/silences/${id}`, specOf(form));
      notify("ok", `Silence ${saved.id} saved: ${describe(saved.matchers)}`);
      navigate("/silences");
    } catch (err) {
      setError(problem(err));
    } finally {
      setBusy(false);
    }
  };
  const readOnly = !mayAct;
  return (
    <Page title={id === undefined ? "New silence" : `Silence ${id}`}>
      {note ? <p class="muted">{note}</p> : null}
      {loaded ? (
        <p class="muted">
          Created by {loaded.created_by} <Ago at={loaded.created_at} />; {loaded.state}
          {loaded.in_force ? ", in force now" : ""}.
        </p>
      ) : null}
      <form class="form silence-form" onSubmit={submit}>
        <fieldset disabled={readOnly}>
          <legend>Matches alerts with (all of)</legend>
          <div class="grid2">
            <label>
              Addon
              <input value={form.addon} placeholder="any" onInput={(e) => set("addon", (e.target as HTMLInputElement).value)} />
            </label>
            <label>
              Alert type
              <input value={form.alertType} placeholder="any" onInput={(e) => set("alertType", (e.target as HTMLInputElement).value)} />
            </label>
            <label>
              Device (IP or name)
              <input value={form.device} placeholder="any" onInput={(e) => set("device", (e.target as HTMLInputElement).value)} />
            </label>
          </div>
          <p class="muted">Fields, exactly:</p>
          {form.fields.map(([k, v], i) => (
            <div class="field-row" key={i}>
              <input aria-label="Field name" value={k} onInput={(e) => set("fields", form.fields.map((f, j) => (j === i ? [(e.target as HTMLInputElement).value, f[1]] : f)))} />
              <span>=</span>
              <input aria-label="Field value" value={v} onInput={(e) => set("fields", form.fields.map((f, j) => (j === i ? [f[0], (e.target as HTMLInputElement).value] : f)))} />
              {readOnly ? null : (
                <button type="button" class="icon" aria-label={`Remove the field ${k}`} onClick={() => set("fields", form.fields.filter((_, j) => j !== i))}>
                  ×
                </button>
              )}
            </div>
          ))}
          {readOnly ? null : (
            <button type="button" onClick={() => set("fields", [...form.fields, ["", ""]])}>
              Add a field
            </button>
          )}
          <p class="preview" aria-live="polite">
            {previewError ? (
              <span class="error">{previewError}</span>
            ) : preview ? (
              <>
                Matches <strong data-testid="silence-preview-count">{preview.matching}</strong> open alert{preview.matching === 1 ? "" : "s"} now
                {preview.alerts.length > 0 ? ": " + preview.alerts.slice(0, 3).map((a) => a.title).join("; ") + (preview.matching > 3 ? "; …" : "") : "."}
              </>
            ) : (
              <span class="muted">Counting…</span>
            )}
          </p>
        </fieldset>
        <fieldset disabled={readOnly}>
          <legend>When</legend>
          <div class="grid2">
            <label>
              Starts
              <input type="datetime-local" data-testid="silence-starts-at" required value={form.startsAt} onInput={(e) => set("startsAt", (e.target as HTMLInputElement).value)} />
            </label>
            <label>
              Ends
              <input type="datetime-local" data-testid="silence-ends-at" required value={form.endsAt} onInput={(e) => set("endsAt", (e.target as HTMLInputElement).value)} />
            </label>
            <label>
              Duration
              <select
                data-testid="silence-duration"
                value=""
                onChange={(e) => {
                  const h = Number((e.target as HTMLSelectElement).value);
                  if (h > 0) duration(h);
                }}
              >
                <option value="">set the end…</option>
                <option value="1">1 hour</option>
                <option value="4">4 hours</option>
                <option value="24">1 day</option>
                <option value="168">1 week</option>
              </select>
            </label>
          </div>
          <label>
            <input type="checkbox" checked={form.recurring} onChange={(e) => set("recurring", (e.target as HTMLInputElement).checked)} /> Only in a weekly window (UTC), e.g. a
            maintenance night
          </label>
          {form.recurring ? (
            <div class="recurrence">
              <div role="group" aria-label="Days">
                {DAYS.map((d) => (
                  <label key={d} class="inline">
                    <input type="checkbox" checked={form.days.includes(d)} onChange={(e) => set("days", (e.target as HTMLInputElement).checked ? [...form.days, d] : form.days.filter((x) => x !== d))} /> {d}
                  </label>
                ))}
              </div>
              <label class="inline">
                from <input type="time" value={form.from} onInput={(e) => set("from", (e.target as HTMLInputElement).value)} />
              </label>
              <label class="inline">
                to <input type="time" value={form.to} onInput={(e) => set("to", (e.target as HTMLInputElement).value)} /> UTC
              </label>
            </div>
          ) : null}
        </fieldset>
        <fieldset disabled={readOnly}>
          <label>
            Why (required: whoever finds alerts suppressed needs to know)
            <textarea data-testid="silence-comment" required rows={2} maxLength={1024} value={form.comment} onInput={(e) => set("comment", (e.target as HTMLTextAreaElement).value)} />
          </label>
        </fieldset>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
        <div class="actions">
          <a class="button" href="/silences" onClick={linkTo("/silences")}>
            {readOnly ? "Back" : "Cancel"}
          </a>
          {readOnly ? null : (
            <button type="submit" class="primary" data-testid="silence-save" disabled={busy}>
              {id === undefined ? "Create silence" : "Save changes"}
            </button>
          )}
        </div>
      </form>
    </Page>
  );
}
