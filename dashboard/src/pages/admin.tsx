// Administration: users, API keys (the key shown once), sessions, and the audit log with
// filters. Each tab appears only to roles that may use it; the API refuses the rest anyway.
import { useState } from "preact/hooks";
import { api, problem } from "../api/client";
import type { ApiKeyInfo as ApiKey, Role, AuditEntry, AuditPage, NewApiKey, SessionInfo as Session, User, UserWithPassword } from "../api/types";
import { can } from "../auth";
import { Ago, Confirm, Dialog, Loading, Page, When, notify, useLoad } from "../components";
import { linkTo } from "../router";





const ROLES: Role[] = ["admin", "operator", "viewer", "service"];

const TABS = [
  { path: "/admin/users", label: "Users", permission: "manage_users" },
  { path: "/admin/api-keys", label: "API keys", permission: "manage_api_keys" },
  { path: "/admin/sessions", label: "Sessions", permission: "manage_sessions" },
  { path: "/admin/audit", label: "Audit log", permission: "read_audit" },
];

export function AdminPage({ path }: { path: string }) {
  const tabs = TABS.filter((t) => can(t.permission));
  const tab = tabs.find((t) => path === t.path) ?? tabs[0];
  if (!tab) return <Page title="Admin"><p class="muted">Your role has no administration rights.</p></Page>;
  return (
    <Page title="Admin">
      <nav class="tabs" aria-label="Administration">
        {tabs.map((t) => (
          <a key={t.path} href={t.path} aria-current={t === tab ? "page" : undefined} class={t === tab ? "current" : ""} onClick={linkTo(t.path)}>
            {t.label}
          </a>
        ))}
      </nav>
      {tab.path === "/admin/users" ? <Users /> : tab.path === "/admin/api-keys" ? <ApiKeys /> : tab.path === "/admin/sessions" ? <Sessions /> : <Audit />}
    </Page>
  );
}

function Users() {
  const { data, error, reload } = useLoad(() => api<User[]>("GET", "/api/v1/users"), []);
  const [adding, setAdding] = useState(false);
  const [secret, setSecret] = useState<{ who: string; password: string } | null>(null);
  const change = async (u: User, body: Record<string, unknown>) => {
    try {
      const answer = await api<UserWithPassword>("PUT", `/api/v1/users/${encodeURIComponent(u.username)}`, body);
      if (answer?.generated_password) setSecret({ who: u.username, password: answer.generated_password });
      reload();
    } catch (e) {
      notify("error", problem(e));
    }
  };
  return (
    <section>
      <div class="toolbar-row">
        <button type="button" class="primary" onClick={() => setAdding(true)}>
          Add user
        </button>
      </div>
      {!data ? (
        <Loading error={error} />
      ) : (
        <table class="table">
          <thead>
            <tr>
              <th>User</th>
              <th>Role</th>
              <th>Source</th>
              <th>Last sign-in</th>
              <th>
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {data.map((u) => (
              <tr key={u.id} class={u.disabled ? "disabled" : ""}>
                <td>
                  {u.username}
                  {u.disabled ? <span class="muted"> (disabled)</span> : null}
                </td>
                <td>
                  <select aria-label={`Role of ${u.username}`} value={u.role} onChange={(e) => change(u, { role: (e.target as HTMLSelectElement).value })}>
                    {ROLES.map((r) => (
                      <option key={r} value={r}>
                        {r}
                      </option>
                    ))}
                  </select>
                </td>
                <td>{u.source}</td>
                <td>
                  <Ago at={u.last_login_at} />
                </td>
                <td class="row-actions">
                  <button type="button" onClick={() => change(u, { disabled: !u.disabled })}>
                    {u.disabled ? "Enable" : "Disable"}
                  </button>
                  {u.source === "local" ? (
                    <button type="button" onClick={() => change(u, { password: "generate" })}>
                      New password
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {adding ? (
        <NewUser
          onClose={(created) => {
            setAdding(false);
            if (created) {
              if (created.password) setSecret(created as { who: string; password: string });
              reload();
            }
          }}
        />
      ) : null}
      {secret ? (
        <Dialog title={`Password of ${secret.who}`} onClose={() => setSecret(null)}>
          <div class="dialog-body">
            <p>Shown only this once: hand it over now.</p>
            <pre class="secret" data-testid="generated-secret">{secret.password}</pre>
          </div>
        </Dialog>
      ) : null}
    </section>
  );
}

function NewUser({ onClose }: { onClose: (created: { who: string; password?: string } | null) => void }) {
  const [username, setUsername] = useState("");
  const [role, setRole] = useState<Role>("operator");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const answer = await api<UserWithPassword>("POST", "/api/v1/users", { username, role, ...(password ? { password } : {}) });
      onClose({ who: username, password: answer.generated_password ?? undefined });
    } catch (err) {
      setError(problem(err));
    }
  };
  return (
    <Dialog title="Add a user" onClose={() => onClose(null)}>
      <form class="dialog-body form" onSubmit={submit}>
        <label>
          Username
          <input required value={username} onInput={(e) => setUsername((e.target as HTMLInputElement).value)} autofocus />
        </label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as Role)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        <label>
          Password (empty: one is generated and shown once)
          <input type="password" autocomplete="new-password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
        </label>
        {error ? <p class="error">{error}</p> : null}
        <footer class="dialog-foot">
          <button type="button" onClick={() => onClose(null)}>
            Cancel
          </button>
          <button type="submit" class="primary">
            Add
          </button>
        </footer>
      </form>
    </Dialog>
  );
}

function ApiKeys() {
  const { data, error, reload } = useLoad(() => api<ApiKey[]>("GET", "/api/v1/api-keys"), []);
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("service");
  const [days, setDays] = useState("");
  const [created, setCreated] = useState<{ name: string; key: string } | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const create = async (e: Event) => {
    e.preventDefault();
    try {
      const expires_at = days ? new Date(Date.now() + Number(days) * 86_400_000).toISOString() : null;
      const answer = await api<NewApiKey>("POST", "/api/v1/api-keys", { name, role, expires_at });
      setCreated({ name, key: answer.key });
      setName("");
      reload();
    } catch (err) {
      notify("error", problem(err));
    }
  };
  return (
    <section>
      <form class="inline-form" onSubmit={create}>
        <label>
          Name <input required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as Role)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        <label>
          Expires in days <input type="number" min={1} placeholder="never" value={days} onInput={(e) => setDays((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit" class="primary">
          Create API key
        </button>
      </form>
      {!data ? (
        <Loading error={error} />
      ) : (
        <table class="table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Role</th>
              <th>Prefix</th>
              <th>Created</th>
              <th>Last used</th>
              <th>Expires</th>
              <th>
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {data.map((k) => (
              <tr key={k.id} class={k.revoked_at ? "disabled" : ""}>
                <td>{k.name}</td>
                <td>{k.role}</td>
                <td class="mono">{k.prefix}…</td>
                <td>
                  {k.created_by}, <Ago at={k.created_at} />
                </td>
                <td>
                  <Ago at={k.last_used_at} />
                </td>
                <td>{k.revoked_at ? <span>revoked <Ago at={k.revoked_at} /></span> : <When at={k.expires_at} />}</td>
                <td class="row-actions">
                  {k.revoked_at ? null : (
                    <button type="button" class="danger" onClick={() => setRevoking(k)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {created ? (
        <Dialog title={`API key ${created.name}`} onClose={() => setCreated(null)}>
          <div class="dialog-body">
            <p>Copy it now: it is shown only this once and stored only as a digest.</p>
            <pre class="secret" data-testid="generated-secret">{created.key}</pre>
          </div>
        </Dialog>
      ) : null}
      {revoking ? (
        <Confirm
          title={`Revoke ${revoking.name}?`}
          okLabel="Revoke"
          danger
          onCancel={() => setRevoking(null)}
          onOk={async () => {
            const k = revoking;
            setRevoking(null);
            await api("DELETE", `/api/v1/api-keys/${k.id}`).catch((e) => notify("error", problem(e)));
            reload();
          }}
        >
          <p>Whatever uses it is refused from now on, sockets included.</p>
        </Confirm>
      ) : null}
    </section>
  );
}

function Sessions() {
  const [active, setActive] = useState(true);
  const { data, error, reload } = useLoad(() => api<Session[]>("GET", `/api/v1/sessions?active=${active}`), [active]);
  return (
    <section>
      <label class="inline">
        <input type="checkbox" checked={active} onChange={(e) => setActive((e.target as HTMLInputElement).checked)} /> Only live sessions
      </label>
      {!data ? (
        <Loading error={error} />
      ) : (
        <table class="table">
          <thead>
            <tr>
              <th>User</th>
              <th>Signed in</th>
              <th>Last refresh</th>
              <th>From</th>
              <th>State</th>
              <th>
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {data.map((s) => (
              <tr key={s.id}>
                <td>{s.username}</td>
                <td>
                  <Ago at={s.created_at} />
                </td>
                <td>
                  <Ago at={s.last_used_at} />
                </td>
                <td>
                  {s.client_ip ?? "—"}
                  <div class="muted small">{s.user_agent}</div>
                </td>
                <td>{s.revoked_at ? "revoked" : Date.parse(s.expires_at) < Date.now() ? "expired" : "live"}</td>
                <td class="row-actions">
                  {s.revoked_at ? null : (
                    <button
                      type="button"
                      class="danger"
                      onClick={async () => {
                        await api("DELETE", `/api/v1/sessions/${s.id}`).catch((e) => notify("error", problem(e)));
                        reload();
                      }}
                    >
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Audit() {
  const [filters, setFilters] = useState({ actor: "", action: "", target: "", outcome: "" });
  const [applied, setApplied] = useState(filters);
  const [before, setBefore] = useState<number[]>([]);
  const cursor = before[before.length - 1];
  const query = new URLSearchParams(Object.entries(applied).filter(([, v]) => v !== "") as [string, string][]);
  query.set("limit", "100");
  if (cursor !== undefined) query.set("before", String(cursor));
  const { data, error } = useLoad(() => api<AuditPage>("GET", `/api/v1/audit?${query}`), [query.toString()]);
  const [open, setOpen] = useState<AuditEntry | null>(null);
  const field = (k: keyof typeof filters, label: string) => (
    <label>
      {label} <input value={filters[k]} onInput={(e) => setFilters({ ...filters, [k]: (e.target as HTMLInputElement).value })} />
    </label>
  );
  return (
    <section>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          setBefore([]);
          setApplied(filters);
        }}
      >
        {field("actor", "Who")}
        {field("action", "Action")}
        {field("target", "Target")}
        <label>
          Outcome
          <select value={filters.outcome} onChange={(e) => setFilters({ ...filters, outcome: (e.target as HTMLSelectElement).value })}>
            <option value="">any</option>
            <option value="success">success</option>
            <option value="failure">failure</option>
            <option value="denied">denied</option>
          </select>
        </label>
        <button type="submit">Filter</button>
      </form>
      {!data ? (
        <Loading error={error} />
      ) : (
        <>
          <table class="table">
            <thead>
              <tr>
                <th>When</th>
                <th>Who</th>
                <th>Action</th>
                <th>Target</th>
                <th>Outcome</th>
                <th>From</th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((a) => (
                <tr key={a.id} class="clickable" onClick={() => setOpen(a)}>
                  <td>
                    <When at={a.at} />
                  </td>
                  <td>
                    {a.actor}
                    {a.role ? <span class="muted"> ({a.role})</span> : null}
                  </td>
                  <td class="mono">{a.action}</td>
                  <td class="mono">{a.target ?? "—"}</td>
                  <td>
                    <span class={`outcome outcome-${a.outcome}`}>{a.outcome}</span>
                  </td>
                  <td>{a.source_ip ?? "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div class="pager">
            <button type="button" disabled={before.length === 0} onClick={() => setBefore(before.slice(0, -1))}>
              Newer
            </button>
            <button type="button" disabled={!data.next_before} onClick={() => data.next_before && setBefore([...before, data.next_before])}>
              Older
            </button>
          </div>
        </>
      )}
      {open ? (
        <Dialog title={`${open.action} by ${open.actor}`} onClose={() => setOpen(null)} wide>
          <div class="dialog-body">
            <p>
              <When at={open.at} /> · {open.outcome} · {open.target}
            </p>
            <h3>Before</h3>
            <pre>{JSON.stringify(open.before, null, 2)}</pre>
            <h3>After</h3>
            <pre>{JSON.stringify(open.after, null, 2)}</pre>
          </div>
        </Dialog>
      ) : null}
    </section>
  );
}
