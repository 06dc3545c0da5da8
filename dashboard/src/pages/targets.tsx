// Poll targets: status, last poll and its error, next due, "poll now"; adding and editing with
// a credential picker; pinned SSH host keys and "forget key".
import { useEffect, useState } from "preact/hooks";
import { api, problem } from "../api/client";
import type { AddonView, CredentialSummary as Credential, PinnedHostKey as HostKey, Schedule, Target } from "../api/types";
import { can } from "../auth";
import { Ago, Confirm, Dialog, Loading, Page, notify, useLoad } from "../components";







/** While a poll asked for now is pending, how often the list is read again. */
const PENDING_REFRESH_MS = 1000;
const REFRESH_MS = 10_000;

/** The user a credential signs in as, if it has one (its public fields only). */
function credentialUser(c: Credential): string {
  const p = (c.public ?? {}) as Record<string, unknown>;
  const user = p.username ?? p.user;
  return user ? `, ${String(user)}` : "";
}

function scheduleText(s: Schedule): string {
  return "interval_seconds" in s ? `every ${s.interval_seconds}s` : `cron ${s.cron}`;
}

export function TargetsPage(_: { path: string }) {
  // Targets polled now, with their poll count when asked: done once it has grown.
  const [pending, setPending] = useState<Map<number, number>>(new Map());
  const [n, setN] = useState(0);
  const { data: targets, error } = useLoad(() => api<Target[]>("GET", "/api/v1/targets"), [n]);
  const [editing, setEditing] = useState<Target | "new" | null>(null);
  const [removing, setRemoving] = useState<Target | null>(null);
  const mayManage = can("manage_targets");

  // Re-read often while a poll asked for now has not reported, and now and then otherwise.
  useEffect(() => {
    const t = setTimeout(() => setN((x) => x + 1), pending.size > 0 ? PENDING_REFRESH_MS : REFRESH_MS);
    return () => clearTimeout(t);
  }, [n, pending.size]);
  useEffect(() => {
    if (!targets || pending.size === 0) return;
    const done = targets.filter((t) => pending.has(t.id) && t.status.polls_total > pending.get(t.id)!);
    if (done.length > 0) {
      setPending((p) => {
        const next = new Map(p);
        for (const t of done) next.delete(t.id);
        return next;
      });
    }
  }, [targets]);

  const pollNow = async (t: Target) => {
    try {
      await api("POST", `/api/v1/targets/${t.id}/poll`);
      setPending((p) => new Map(p).set(t.id, t.status.polls_total));
      notify("ok", `${t.name}: polled at the next scheduler tick`);
      setN((x) => x + 1);
    } catch (e) {
      notify("error", problem(e));
    }
  };
  const toggle = async (t: Target) => {
    try {
      await api("POST", `/api/v1/targets/${t.id}/${t.enabled ? "disable" : "enable"}`);
      setN((x) => x + 1);
    } catch (e) {
      notify("error", problem(e));
    }
  };
  return (
    <Page
      title="Targets"
      actions={
        mayManage ? (
          <button type="button" class="primary" onClick={() => setEditing("new")}>
            Add target
          </button>
        ) : null
      }
    >
      {!targets ? (
        <Loading error={error} />
      ) : targets.length === 0 ? (
        <p class="muted">No poll targets yet.</p>
      ) : (
        <table class="table">
          <thead>
            <tr>
              <th>Target</th>
              <th>Addon · schedule</th>
              <th>Last poll</th>
              <th>Next due</th>
              <th>Polls</th>
              <th>
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {targets.map((t) => (
              <tr key={t.id} data-testid="target-row" data-target-name={t.name} class={t.enabled ? "" : "disabled"}>
                <td>
                  <strong>{t.name}</strong>
                  <div class="muted mono">{t.address}</div>
                  {t.credentials ? <div class="muted">credential {t.credentials}</div> : null}
                </td>
                <td>
                  {t.addon_id}
                  <div class="muted">
                    {scheduleText(t.schedule)}
                    {t.enabled ? "" : " · disabled"}
                  </div>
                </td>
                <td data-testid="target-last-poll">
                  {t.status.last_poll_status ? <span class={`poll poll-${t.status.last_poll_status}`}>{t.status.last_poll_status}</span> : <span class="muted">never</span>}{" "}
                  <Ago at={t.status.last_poll_at} />
                  {t.status.last_poll_duration_ms !== null ? <span class="muted"> in {t.status.last_poll_duration_ms} ms</span> : null}
                  {t.status.last_poll_error ? <div class="error small">{t.status.last_poll_error}</div> : null}
                  {pending.has(t.id) ? <div class="muted">poll requested…</div> : null}
                </td>
                <td>{t.status.lease_owner ? <span>polling on {t.status.lease_owner}</span> : t.status.next_due_at ? <time dateTime={t.status.next_due_at}>{new Date(t.status.next_due_at).toLocaleString()}</time> : "—"}</td>
                <td class="num">
                  {t.status.polls_total}
                  {t.status.poll_failures > 0 ? <span class="muted"> ({t.status.poll_failures} failed)</span> : null}
                </td>
                <td class="row-actions">
                  {mayManage ? (
                    <>
                      <button type="button" data-testid="target-poll-now" onClick={() => pollNow(t)}>
                        Poll now
                      </button>
                      <button type="button" onClick={() => setEditing(t)}>
                        Edit
                      </button>
                      <button type="button" onClick={() => toggle(t)}>
                        {t.enabled ? "Disable" : "Enable"}
                      </button>
                      <button type="button" class="danger" onClick={() => setRemoving(t)}>
                        Delete
                      </button>
                    </>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <HostKeys />
      {editing ? (
        <TargetForm
          target={editing === "new" ? null : editing}
          onClose={(saved) => {
            setEditing(null);
            if (saved) setN((x) => x + 1);
          }}
        />
      ) : null}
      {removing ? (
        <Confirm
          title={`Delete the target ${removing.name}?`}
          okLabel="Delete"
          danger
          onCancel={() => setRemoving(null)}
          onOk={async () => {
            const t = removing;
            setRemoving(null);
            try {
              await api("DELETE", `/api/v1/targets/${t.id}`);
              setN((x) => x + 1);
            } catch (e) {
              notify("error", problem(e));
            }
          }}
        >
          <p>Its polls stop; its alerts stay.</p>
        </Confirm>
      ) : null}
    </Page>
  );
}

function TargetForm({ target, onClose }: { target: Target | null; onClose: (saved: boolean) => void }) {
  const { data: addons } = useLoad(() => api<AddonView[]>("GET", "/api/v1/addons"), []);
  const { data: credentials } = useLoad(() => api<Credential[]>("GET", "/api/v1/credentials"), []);
  const [name, setName] = useState(target?.name ?? "");
  const [address, setAddress] = useState(target?.address ?? "");
  const [addon, setAddon] = useState(target?.addon_id ?? "");
  const [kind, setKind] = useState<"interval" | "cron">(target && "cron" in target.schedule ? "cron" : "interval");
  const [interval, setInterval] = useState(target && "interval_seconds" in target.schedule ? String(target.schedule.interval_seconds) : "60");
  const [cron, setCron] = useState(target && "cron" in target.schedule ? target.schedule.cron : "*/5 * * * *");
  const [credential, setCredential] = useState(target?.credentials ?? "");
  const [config, setConfig] = useState(JSON.stringify(target?.config ?? {}, null, 2));
  const [enabled, setEnabled] = useState(target?.enabled ?? true);
  const [error, setError] = useState<string | null>(null);
  const pollers = (addons ?? []).filter((a) => a.methods.some((m) => m.endsWith("poll")));
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    let parsed: unknown;
    try {
      parsed = JSON.parse(config || "{}");
    } catch (err) {
      setError(`Config is not JSON: ${problem(err)}`);
      return;
    }
    const body = {
      name,
      address,
      addon_id: addon,
      schedule: kind === "interval" ? { interval_seconds: Number(interval) } : { cron },
      enabled,
      config: parsed,
      credentials: credential || null,
    };
    try {
      await api(target ? "PUT" : "POST", target ? `/api/v1/targets/${target.id}` : "/api/v1/targets", body);
      notify("ok", `Target ${name} saved`);
      onClose(true);
    } catch (err) {
      setError(problem(err));
    }
  };
  return (
    <Dialog title={target ? `Edit ${target.name}` : "Add a target"} onClose={() => onClose(false)} wide>
      <form class="dialog-body form" onSubmit={submit}>
        <div class="grid2">
          <label>
            Name
            <input required pattern="[A-Za-z0-9._-]+" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            Address (host, host:port, or a base URL)
            <input required value={address} onInput={(e) => setAddress((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            Addon
            <select required value={addon} onChange={(e) => setAddon((e.target as HTMLSelectElement).value)}>
              <option value="">choose…</option>
              {pollers.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.id}
                  {a.enabled ? "" : " (disabled)"}
                </option>
              ))}
            </select>
          </label>
          <label>
            Credential
            <select value={credential} onChange={(e) => setCredential((e.target as HTMLSelectElement).value)}>
              <option value="">none</option>
              {(credentials ?? []).map((c) => (
                <option key={c.name} value={c.name}>
                  {c.name} ({c.kind}
                  {credentialUser(c)})
                </option>
              ))}
            </select>
          </label>
          <label>
            Schedule
            <select value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value as typeof kind)}>
              <option value="interval">every N seconds</option>
              <option value="cron">cron (UTC)</option>
            </select>
          </label>
          {kind === "interval" ? (
            <label>
              Seconds
              <input type="number" min={1} required value={interval} onInput={(e) => setInterval((e.target as HTMLInputElement).value)} />
            </label>
          ) : (
            <label>
              Cron expression
              <input required value={cron} onInput={(e) => setCron((e.target as HTMLInputElement).value)} />
            </label>
          )}
        </div>
        <label>
          Config for the addon (JSON; never secrets — those go in credentials)
          <textarea class="mono" rows={5} value={config} onInput={(e) => setConfig((e.target as HTMLTextAreaElement).value)} />
        </label>
        <label>
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled((e.target as HTMLInputElement).checked)} /> Enabled
        </label>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
        <footer class="dialog-foot">
          <button type="button" onClick={() => onClose(false)}>
            Cancel
          </button>
          <button type="submit" class="primary">
            Save
          </button>
        </footer>
      </form>
    </Dialog>
  );
}

function HostKeys() {
  const { data, error, reload } = useLoad(() => api<HostKey[]>("GET", "/api/v1/ssh-host-keys"), []);
  const [forgetting, setForgetting] = useState<HostKey | null>(null);
  return (
    <section>
      <h2>Pinned SSH host keys</h2>
      {!data ? (
        <Loading error={error} />
      ) : data.length === 0 ? (
        <p class="muted">None yet: keys are pinned at the first poll of an SSH target.</p>
      ) : (
        <table class="table">
          <thead>
            <tr>
              <th>Endpoint</th>
              <th>Key</th>
              <th>First seen</th>
              <th>Last seen</th>
              <th>
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {data.map((k) => (
              <tr key={k.endpoint}>
                <td class="mono">{k.endpoint}</td>
                <td class="mono">
                  {k.key_type} {k.fingerprint}
                </td>
                <td>
                  <Ago at={k.first_seen_at} />
                </td>
                <td>
                  <Ago at={k.last_seen_at} />
                </td>
                <td class="row-actions">
                  {can("manage_targets") ? (
                    <button type="button" onClick={() => setForgetting(k)}>
                      Forget key
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {forgetting ? (
        <Confirm
          title={`Forget the key of ${forgetting.endpoint}?`}
          okLabel="Forget"
          danger
          onCancel={() => setForgetting(null)}
          onOk={async () => {
            const k = forgetting;
            setForgetting(null);
            try {
              await api("DELETE", `/api/v1/ssh-host-keys/${encodeURIComponent(k.endpoint)}`);
              notify("ok", `Forgot ${k.endpoint}'s key; the next poll pins what it presents`);
              reload();
            } catch (e) {
              notify("error", problem(e));
            }
          }}
        >
          <p>Only after an intended key change: the next poll trusts whatever key the host presents.</p>
        </Confirm>
      ) : null}
    </section>
  );
}
