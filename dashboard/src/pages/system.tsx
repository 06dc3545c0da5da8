// The runtime itself: health, version, what every counter says (webhooks, traps, the writer,
// the event bus, alerts by status), and the traps no addon claims — which OIDs need an addon.
import { useEffect, useState } from "preact/hooks";
import { api, problem } from "../api/client";
import type { Health, Stats, UnhandledTrap as Unhandled, Version } from "../api/types";
import { Ago, Loading, Page } from "../components";
import { systemStatus } from "../live/socket";
import { useValue } from "../state";


/** Counters read again this often while the page is open. */
const REFRESH_MS = 5000;

function useEvery<T>(f: () => Promise<T>, ms: number): { data: T | null; error: string | null } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    const load = () => f().then((d) => live && (setData(d), setError(null)), (e) => live && setError(problem(e)));
    void load();
    const t = setInterval(load, ms);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, []);
  return { data, error };
}

function Counters({ title, values }: { title: string; values: object }) {
  return (
    <section class="card">
      <h2>{title}</h2>
      <dl class="facts">
        {Object.entries(values).map(([k, v]) => (
          <>
            <dt>{k.replace(/_/g, " ")}</dt>
            <dd class="num">{typeof v === "object" ? JSON.stringify(v) : String(v)}</dd>
          </>
        ))}
      </dl>
    </section>
  );
}

export function SystemPage() {
  const health = useEvery(() => fetch("/health").then((r) => r.json() as Promise<Health>), REFRESH_MS);
  const version = useEvery(() => api<Version>("GET", "/api/v1/system/version"), 60_000);
  const stats = useEvery(() => api<Stats>("GET", "/api/v1/stats"), REFRESH_MS);
  const unhandled = useEvery(() => api<Unhandled[]>("GET", "/api/v1/traps/unhandled"), REFRESH_MS);
  const nodes = useValue(systemStatus);
  return (
    <Page title="System">
      <div class="cards">
        <section class="card">
          <h2>Health</h2>
          {health.data ? (
            <p>
              <span class={`health health-${health.data.status === "ok" ? "ok" : "bad"}`}>{String(health.data.status)}</span> database {String(health.data.database)}, {String(health.data.addons_loaded)} addons loaded
            </p>
          ) : (
            <Loading error={health.error} />
          )}
          {version.data ? (
            <dl class="facts">
              <dt>version</dt>
              <dd>{String(version.data.version)}</dd>
              <dt>database</dt>
              <dd>{String(version.data.database)}</dd>
              <dt>WIT worlds</dt>
              <dd class="mono">{version.data.wit_worlds.join(", ")}</dd>
              <dt>WebSocket protocol</dt>
              <dd>{String(version.data.websocket_protocol)}</dd>
            </dl>
          ) : null}
          {Object.keys(nodes).length > 0 ? <p class="muted">Nodes reporting: {Object.keys(nodes).join(", ")}</p> : null}
        </section>
        {stats.data ? (
          <>
            <Counters title="Alerts by status" values={stats.data.alerts_by_status} />
            <Counters title="Webhooks" values={stats.data.webhooks} />
            <Counters title="Traps" values={stats.data.traps} />
            <Counters title="Writer" values={stats.data.writer} />
            <Counters title="Events (this node)" values={stats.data.events} />
          </>
        ) : (
          <Loading error={stats.error} />
        )}
      </div>
      <h2>Unhandled traps</h2>
      <p class="muted">Traps no enabled addon claims (the last 200). Each OID here needs an addon — or enable generic-trap to alert on all of them.</p>
      {!unhandled.data ? (
        <Loading error={unhandled.error} />
      ) : unhandled.data.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <table class="table" data-testid="unhandled-traps">
          <thead>
            <tr>
              <th>Trap OID</th>
              <th>From</th>
              <th>Version</th>
              <th>Varbinds</th>
              <th>Received</th>
            </tr>
          </thead>
          <tbody>
            {[...unhandled.data].reverse().map((t, i) => (
              <tr key={i}>
                <td class="mono">{t.trap_oid}</td>
                <td class="mono">
                  {t.source}
                  {t.agent_address && t.agent_address !== t.source ? ` (agent ${t.agent_address})` : ""}
                </td>
                <td>{t.version}</td>
                <td class="num">{t.varbinds}</td>
                <td>
                  <Ago at={t.received_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Page>
  );
}
