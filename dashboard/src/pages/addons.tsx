// Addons: each one's live health (events per minute, time since its last event, parse failures,
// guest time, denied I/O), status, version and WIT world; enabling and disabling; webhook
// authentication; installing a bundle file with its signature, fixture results and capability
// difference to accept; rolling back; releasing a quarantined addon.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, problem } from "../api/client";
import type { AddonDetail, AddonView, PublicSettings as Settings } from "../api/types";
import { can } from "../auth";
import { Ago, Confirm, Loading, Page, notify, useLoad } from "../components";
import { addonStatus } from "../live/socket";
import { linkTo } from "../router";
import { useValue } from "../state";
import { worldLabel } from "../worlds";

/** How often the addon screen re-reads the counters: rates need two readings. */
const REFRESH_MS = 5000;

interface Sample {
  at: number;
  events: number;
}

export function AddonsPage({ path }: { path: string }) {
  const id = /^\/addons\/([^/]+)$/.exec(path);
  return id ? <AddonDetailPage id={decodeURIComponent(id[1])} /> : <AddonList />;
}

function useAddons() {
  const [list, setList] = useState<AddonView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const samples = useRef(new Map<string, Sample[]>());
  const status = useValue(addonStatus);
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    const load = () =>
      api<AddonView[]>("GET", "/api/v1/addons").then(
        (l) => {
          if (!live) return;
          const now = Date.now();
          for (const a of l) {
            const s = samples.current.get(a.id) ?? [];
            s.push({ at: now, events: a.ingest?.events ?? 0 });
            // A minute of readings: the rate is over what they span.
            while (s.length > 1 && now - s[0].at > 65_000) s.shift();
            samples.current.set(a.id, s);
          }
          setList(l);
          setError(null);
        },
        (e) => live && setError(problem(e)),
      );
    void load();
    const t = setInterval(load, REFRESH_MS);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [status, n]);
  const perMinute = (id: string): number | null => {
    const s = samples.current.get(id);
    if (!s || s.length < 2) return null;
    const span = (s[s.length - 1].at - s[0].at) / 60_000;
    return span > 0 ? (s[s.length - 1].events - s[0].events) / span : null;
  };
  return { list, error, perMinute, reload: () => setN((x) => x + 1) };
}

function health(a: AddonView): { text: string; kind: "ok" | "warn" | "bad" | "off" } {
  if (!a.enabled) return { text: "disabled", kind: "off" };
  if (!a.loaded) return { text: "failed to load", kind: "bad" };
  const q = a.quarantine;
  if (q?.state === "quarantined")
    return { text: `quarantined until ${q.until ? new Date(q.until).toLocaleTimeString() : "?"}`, kind: "bad" };
  if (q?.state === "probation") return { text: "on probation", kind: "warn" };
  const c = a.calls;
  const faults = c ? c.traps + c.cpu_deadlines + c.memory_limits + c.timeouts : 0;
  if (faults > 0) return { text: `${faults} faults`, kind: "warn" };
  if ((a.ingest?.failed ?? 0) > 0) return { text: "parse failures", kind: "warn" };
  return { text: "healthy", kind: "ok" };
}

function AddonList() {
  const { list, error, perMinute, reload } = useAddons();
  const [busy, setBusy] = useState<string | null>(null);
  const mayConfigure = can("configure_addons");
  const toggle = async (a: AddonView) => {
    setBusy(a.id);
    try {
      await api("POST", `/api/v1/addons/${a.id}/${a.enabled ? "disable" : "enable"}`);
      notify("ok", `${a.id} ${a.enabled ? "disabled" : "enabled"}`);
      reload();
    } catch (e) {
      notify("error", problem(e));
    } finally {
      setBusy(null);
    }
  };
  return (
    <Page title="Addons">
      {can("manage_system") ? <Upload onDone={reload} /> : null}
      {!list ? (
        <Loading error={error} />
      ) : (
        <table class="table addons">
          <thead>
            <tr>
              <th>Addon</th>
              <th>Status</th>
              <th>Events / min</th>
              <th>Last event</th>
              <th>Parse failures</th>
              <th>Guest time</th>
              <th>Denied I/O</th>
              <th>Version · world</th>
              <th>
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.map((a) => {
              const h = health(a);
              const rate = perMinute(a.id);
              return (
                <tr key={a.id} data-testid="addon-row" data-addon-id={a.id}>
                  <td>
                    <a href={`/addons/${a.id}`} onClick={linkTo(`/addons/${a.id}`)}>
                      {a.name}
                    </a>
                    <div class="muted mono">
                      {a.id} · {a.methods.join(", ")}
                    </div>
                  </td>
                  <td>
                    <span class={`health health-${h.kind}`}>{h.text}</span>
                  </td>
                  <td class="num">{rate === null ? "…" : rate.toFixed(rate < 10 ? 1 : 0)}</td>
                  <td>
                    <Ago at={a.ingest?.last_event_at} />
                  </td>
                  <td class="num">{(a.ingest?.failed ?? 0) + (a.ingest?.rejected ?? 0)}</td>
                  <td class="num">{a.calls ? `${(a.calls.guest_micros / 1000).toFixed(0)} ms` : "—"}</td>
                  <td class="num">{a.ingest?.io_denied ?? 0}</td>
                  <td class="mono">
                    {a.version} · {worldLabel(a.world)}
                  </td>
                  <td class="row-actions">
                    {mayConfigure ? (
                      <button type="button" disabled={busy === a.id} onClick={() => toggle(a)}>
                        {a.enabled ? "Disable" : "Enable"}
                      </button>
                    ) : null}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </Page>
  );
}

interface InstallAnswer {
  [key: string]: unknown;
}

function Upload({ onDone }: { onDone: () => void }) {
  const input = useRef<HTMLInputElement>(null);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; title: string; body: string; diff?: unknown; file?: File } | null>(null);
  const send = async (file: File, accept: boolean) => {
    setBusy(true);
    setResult(null);
    try {
      const answer = await api<InstallAnswer>("POST", `/api/v1/addons${accept ? "?accept_capabilities=true" : ""}`, {
        raw: await file.arrayBuffer(),
        type: "application/octet-stream",
      });
      setResult({ ok: true, title: "Installed", body: JSON.stringify(answer, null, 2) });
      notify("ok", `Installed ${file.name}`);
      onDone();
    } catch (e) {
      if (e instanceof ApiError && e.code === "capabilities_not_accepted") {
        const error = (e.body?.error ?? {}) as Record<string, unknown>;
        setResult({ ok: false, title: "This upgrade widens what the addon may do", body: e.message, diff: error.capability_diff, file });
      } else {
        setResult({ ok: false, title: e instanceof ApiError ? `Refused: ${e.code}` : "Failed", body: problem(e) });
      }
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card upload">
      <h2>Install or upgrade from a bundle</h2>
      <p class="muted">
        An <code>.ocbundle</code> file from <code>opsconductor addon pack</code>. Its hashes and signature, WIT world and fixtures are checked before it activates.
      </p>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          const file = input.current?.files?.[0];
          if (file) void send(file, false);
        }}
      >
        <label>
          Bundle file <input ref={input} type="file" accept=".ocbundle,application/gzip,application/octet-stream" data-testid="bundle-file" required />
        </label>
        <button type="submit" class="primary" data-testid="bundle-upload" disabled={busy}>
          {busy ? "Checking…" : "Upload"}
        </button>
      </form>
      {result ? (
        <div class={result.ok ? "result ok" : "result bad"} data-testid="bundle-result" role="status">
          <h3>{result.title}</h3>
          <pre data-testid={result.ok ? "bundle-installed" : "fixture-diff"}>{result.body}</pre>
          {result.diff ? (
            <>
              <h4>Capability difference</h4>
              <pre data-testid="capability-diff">{JSON.stringify(result.diff, null, 2)}</pre>
              <button type="button" class="danger" data-testid="accept-capabilities" disabled={busy} onClick={() => result.file && send(result.file, true)}>
                Accept the wider capabilities and install
              </button>
            </>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}

function AddonDetailPage({ id }: { id: string }) {
  const { data, error, reload } = useLoad(() => api<AddonDetail>("GET", `/api/v1/addons/${id}`), [id]);
  const [rollback, setRollback] = useState(false);
  const status = useValue(addonStatus);
  useEffect(() => {
    if (status[id]) reload();
  }, [status]);
  if (!data) return <Page title={id}><Loading error={error} /></Page>;
  const h = health(data);
  const release = async () => {
    try {
      await api("POST", `/api/v1/addons/${id}/release`);
      notify("ok", `${id} released from quarantine on this node`);
      reload();
    } catch (e) {
      notify("error", problem(e));
    }
  };
  return (
    <Page
      title={data.name}
      actions={
        <>
          {can("configure_addons") && data.quarantine && data.quarantine.state !== "healthy" ? (
            <button type="button" data-testid="addon-release" onClick={() => void release()}>
              Release from quarantine
            </button>
          ) : null}
          {can("manage_system") ? (
            <button type="button" onClick={() => setRollback(true)}>
              Roll back…
            </button>
          ) : null}
        </>
      }
    >
      <p>
        <span class={`health health-${h.kind}`} data-testid="addon-health">{h.text}</span> <span class="mono">{data.id}</span> {data.version} · <span title={data.world ?? ""}>{worldLabel(data.world)}</span>
      </p>
      {data.quarantine?.last_fault && data.quarantine.state !== "healthy" ? (
        <p class="muted">Last fault: {data.quarantine.last_fault}</p>
      ) : null}
      <div class="cards">
        <section class="card">
          <h2>Ingest (this node)</h2>
          <dl class="facts">
            {data.ingest
              ? Object.entries(data.ingest).map(([k, v]) => (
                  <>
                    <dt>{k.replace(/_/g, " ")}</dt>
                    <dd>{k === "last_event_at" ? <Ago at={v as string | null} /> : String(v)}</dd>
                  </>
                ))
              : <p class="muted">Not loaded on this node.</p>}
          </dl>
        </section>
        <section class="card">
          <h2>Sandbox calls</h2>
          <dl class="facts">
            {data.calls
              ? Object.entries(data.calls).map(([k, v]) => (
                  <>
                    <dt>{k.replace(/_/g, " ")}</dt>
                    <dd>{k === "guest_micros" ? `${(Number(v) / 1000).toFixed(1)} ms` : String(v)}</dd>
                  </>
                ))
              : <p class="muted">No calls here.</p>}
          </dl>
        </section>
      </div>
      {data.webhook_path ? <WebhookSettings id={id} path={data.webhook_path} /> : null}
      <h2>Manifest</h2>
      <pre class="manifest">{JSON.stringify(data.manifest, null, 2)}</pre>
      {rollback ? (
        <Confirm
          title={`Roll ${id} back?`}
          okLabel="Roll back"
          danger
          onCancel={() => setRollback(false)}
          onOk={async () => {
            setRollback(false);
            try {
              await api("POST", `/api/v1/addons/${id}/rollback`);
              notify("ok", `${id} rolled back`);
              reload();
            } catch (e) {
              notify("error", problem(e));
            }
          }}
        >
          <p>Puts back the version its last upgrade replaced (one step), on every node.</p>
        </Confirm>
      ) : null}
    </Page>
  );
}

function WebhookSettings({ id, path }: { id: string; path: string }) {
  const { data, error, reload } = useLoad(() => api<Settings>("GET", `/api/v1/addons/${id}/settings`), [id]);
  const [mode, setMode] = useState<"none" | "token" | "hmac">("none");
  const [secret, setSecret] = useState("");
  const [cidrs, setCidrs] = useState("");
  const [tolerance, setTolerance] = useState(300);
  useEffect(() => {
    if (!data) return;
    setMode(data.webhook.auth.mode);
    setCidrs(data.webhook.allow_cidrs.join("\n"));
    setTolerance(data.webhook.auth.tolerance_seconds ?? 300);
  }, [data]);
  if (!data) return <Loading error={error} />;
  const mayConfigure = can("configure_addons");
  const save = async (e: Event) => {
    e.preventDefault();
    const auth: Record<string, unknown> = { mode };
    if (mode !== "none") auth.secret = secret || "set";
    if (mode === "hmac") auth.tolerance_seconds = tolerance;
    try {
      await api("PUT", `/api/v1/addons/${id}/settings`, {
        webhook: { auth, allow_cidrs: cidrs.split(/[\s,]+/).filter(Boolean) },
      });
      setSecret("");
      notify("ok", "Webhook settings saved");
      reload();
    } catch (err) {
      notify("error", problem(err));
    }
  };
  return (
    <section class="card">
      <h2>Webhook</h2>
      <p class="mono">POST /webhooks/{path}</p>
      <form class="form" onSubmit={save}>
        <fieldset disabled={!mayConfigure}>
          <label>
            Authentication
            <select value={mode} onChange={(e) => setMode((e.target as HTMLSelectElement).value as typeof mode)}>
              <option value="none">none</option>
              <option value="token">shared token (X-OpsConductor-Token)</option>
              <option value="hmac">HMAC-SHA256 signature with timestamp</option>
            </select>
          </label>
          {mode !== "none" ? (
            <label>
              Secret {data.webhook.auth.secret === "set" ? <span class="muted">(set; leave empty to keep it)</span> : null}
              <input type="password" autocomplete="new-password" value={secret} onInput={(e) => setSecret((e.target as HTMLInputElement).value)} />
            </label>
          ) : null}
          {mode === "hmac" ? (
            <label>
              Timestamp tolerance (s)
              <input type="number" min={1} value={tolerance} onInput={(e) => setTolerance(Number((e.target as HTMLInputElement).value))} />
            </label>
          ) : null}
          <label>
            Allowed networks (CIDR, one per line; empty: any)
            <textarea rows={3} value={cidrs} onInput={(e) => setCidrs((e.target as HTMLTextAreaElement).value)} />
          </label>
          <button type="submit" class="primary">
            Save webhook settings
          </button>
        </fieldset>
      </form>
    </section>
  );
}
