// The shell: sign-in when nobody is, otherwise the top bar (navigation, open alerts by
// severity, the live indicator, pause, notifications, theme, the user menu) over the page the
// path names.
import { useEffect, useRef, useState } from "preact/hooks";
import { settings as alerting, beep, enableNotifications } from "./alerting";
import { SEVERITIES, type Severity } from "./api/types";
import { SignedOut, can, current, loadMe, me, signOut } from "./auth";
import { Notices, useDismiss } from "./components";
import { backlog, clear, link, paused, retryAt, setPaused } from "./live/store";
import { counts } from "./live/counts";
import { reconnectNow, start, stop } from "./live/socket";
import { AddonsPage } from "./pages/addons";
import { AdminPage } from "./pages/admin";
import { AlertPage } from "./pages/alert";
import { ConsolePage } from "./pages/console";
import { LoginPage } from "./pages/login";
import { SilencesPage } from "./pages/silences";
import { SystemPage } from "./pages/system";
import { TargetsPage } from "./pages/targets";
import { linkTo, location, navigate } from "./router";
import { useValue } from "./state";
import { nextTheme, theme } from "./theme";

export function App() {
  const session = useValue(current);
  const loc = useValue(location);
  const who = useValue(me);

  useEffect(() => {
    if (!session) {
      stop();
      clear();
      return;
    }
    const signedOut = () => {
      stop();
      navigate(`/login?next=${encodeURIComponent(window.location.pathname + window.location.search)}`, true);
    };
    loadMe().catch((e) => {
      if (e instanceof SignedOut) signedOut();
    });
    start(signedOut);
  }, [session?.username]);

  if (!session || loc.path === "/login") {
    if (session && loc.path === "/login") {
      navigate(loc.query.get("next") || "/", true);
      return null;
    }
    return <LoginPage />;
  }
  if (!who) return <p class="muted boot">Signing in…</p>;
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <TopBar path={loc.path} />
      <Routed path={loc.path} />
      <Notices />
    </div>
  );
}

function Routed({ path }: { path: string }) {
  const alert = /^\/alerts\/(\d+)$/.exec(path);
  if (alert) return <AlertPage id={Number(alert[1])} />;
  if (path === "/silences" || path.startsWith("/silences/")) return <SilencesPage path={path} />;
  if (path === "/addons" || path.startsWith("/addons/")) return <AddonsPage path={path} />;
  if (path === "/targets" || path.startsWith("/targets/")) return <TargetsPage path={path} />;
  if (path === "/admin" || path.startsWith("/admin/")) return <AdminPage path={path} />;
  if (path === "/system") return <SystemPage />;
  return <ConsolePage />;
}

const NAV: { path: string; label: string; show?: () => boolean }[] = [
  { path: "/", label: "Alerts" },
  { path: "/silences", label: "Silences" },
  { path: "/addons", label: "Addons" },
  { path: "/targets", label: "Targets" },
  {
    path: "/admin",
    label: "Admin",
    show: () => can("manage_users") || can("manage_api_keys") || can("manage_sessions") || can("read_audit"),
  },
  { path: "/system", label: "System" },
];

function TopBar({ path }: { path: string }) {
  const [menu, setMenu] = useState<"user" | "alerting" | null>(null);
  const alertingRef = useRef<HTMLDivElement>(null);
  const userRef = useRef<HTMLDivElement>(null);
  useDismiss(alertingRef, menu === "alerting", () => setMenu(null));
  useDismiss(userRef, menu === "user", () => setMenu(null));
  const who = useValue(me);
  const t = useValue(theme);
  const section = (p: string) => (p === "/" ? path === "/" || path.startsWith("/alerts") : path.startsWith(p));
  return (
    <header class="topbar">
      <a class="brand" href="/" onClick={linkTo("/")}>
        OpsConductor
      </a>
      <nav aria-label="Sections">
        {NAV.filter((n) => !n.show || n.show()).map((n) => (
          <a key={n.path} href={n.path} class={section(n.path) ? "current" : ""} aria-current={section(n.path) ? "page" : undefined} onClick={linkTo(n.path)}>
            {n.label}
          </a>
        ))}
      </nav>
      <SeverityCounts />
      <div class="topbar-end">
        <LiveIndicator />
        <PauseButton />
        <div class="menu-anchor" ref={alertingRef}>
          <button type="button" class="icon" aria-label="Alert notifications" aria-expanded={menu === "alerting"} onClick={() => setMenu(menu === "alerting" ? null : "alerting")}>
            <svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
              <path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1Z" />
            </svg>
          </button>
          {menu === "alerting" ? <AlertingMenu /> : null}
        </div>
        <button type="button" class="icon" data-testid="theme-toggle" aria-label={`Theme: ${t} (change)`} title={`Theme: ${t}`} onClick={() => theme.set(nextTheme(t))}>
          {t === "dark" ? "☾" : t === "light" ? "☀" : "◐"}
        </button>
        <div class="menu-anchor" ref={userRef}>
          <button type="button" data-testid="user-menu" aria-haspopup="menu" aria-expanded={menu === "user"} onClick={() => setMenu(menu === "user" ? null : "user")}>
            {who?.actor.replace(/^user:/, "")} <span class="muted user-role">({who?.role})</span>
          </button>
          {menu === "user" ? (
            <div class="menu" role="menu">
              <p class="muted menu-note">Signed in as {who?.actor}</p>
              <button
                type="button"
                role="menuitem"
                data-testid="sign-out"
                onClick={async () => {
                  setMenu(null);
                  await signOut();
                  navigate("/login", true);
                }}
              >
                Sign out
              </button>
            </div>
          ) : null}
        </div>
      </div>
    </header>
  );
}

/** On a phone the counts show a short name: severity is never told by colour alone. */
const SEVERITY_ABBR: Record<Severity, string> = { critical: "crit", major: "maj", minor: "min", warning: "warn", info: "info" };

function SeverityCounts() {
  const c = useValue(counts);
  return (
    <ul class="counts" aria-label="Open alerts by severity">
      {SEVERITIES.map((s: Severity) => (
        <li key={s} class={`count sev-${s}${c[s] > 0 ? "" : " zero"}`} title={`${c[s]} ${s}`}>
          <a href={`/?q=${encodeURIComponent(`severity=${s}`)}`} aria-label={`${c[s]} ${s}: show them`} onClick={linkTo(`/?q=${encodeURIComponent(`severity=${s}`)}`)}>
            <span class="count-label">{s}</span>
            <span class="count-abbr" aria-hidden="true">
              {SEVERITY_ABBR[s]}
            </span>{" "}
            <span data-testid={`count-${s}`}>{c[s]}</span>
          </a>
        </li>
      ))}
    </ul>
  );
}

function LiveIndicator() {
  const state = useValue(link);
  const isPaused = useValue(paused);
  const queue = useValue(backlog);
  const retry = useValue(retryAt);
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  let shown: string;
  let text: string;
  const behind = queue.since !== null ? Math.max(0, Math.round((now - queue.since) / 1000)) : 0;
  if (state === "disconnected") {
    shown = "disconnected";
    const wait = retry !== null ? Math.max(0, Math.ceil((retry - now) / 1000)) : null;
    text = wait !== null ? `disconnected · retrying in ${wait} s` : "disconnected";
  } else if (state !== "live") {
    shown = "behind";
    text = state === "loading" ? "loading alerts…" : "connecting…";
  } else if (isPaused) {
    shown = "paused";
    text = `paused · ${behind} s behind`;
  } else if (queue.count > 0 && behind >= 1) {
    shown = "behind";
    text = `${behind} s behind`;
  } else {
    shown = "live";
    text = "live";
  }
  return (
    <button type="button" class={`indicator indicator-${shown}`} data-testid="live-indicator" data-state={shown} aria-live="polite" title={state === "disconnected" ? "Reconnect now" : undefined} onClick={() => state === "disconnected" && reconnectNow()}>
      <span class="dot" aria-hidden="true" />
      {text}
    </button>
  );
}

function PauseButton() {
  const isPaused = useValue(paused);
  return (
    <button
      type="button"
      data-testid="pause"
      aria-pressed={isPaused}
      aria-label={isPaused ? "Resume live updates" : "Pause live updates"}
      onClick={() => setPaused(!isPaused)}
      title={isPaused ? "Apply live updates again" : "Hold live updates (they are kept and applied on resume)"}
    >
      <span aria-hidden="true">{isPaused ? "▶" : "❚❚"}</span>
      <span class="pause-label">{isPaused ? "Resume" : "Pause"}</span>
    </button>
  );
}

function AlertingMenu() {
  const s = useValue(alerting);
  const denied = "Notification" in window && Notification.permission === "denied";
  return (
    <div class="menu form" role="group" aria-label="Alert notifications">
      <label>
        <input type="checkbox" checked={s.notify} onChange={(e) => enableNotifications((e.target as HTMLInputElement).checked)} /> Desktop notification
      </label>
      {denied ? <p class="muted">The browser blocks notifications for this site.</p> : null}
      <label>
        <input type="checkbox" checked={s.sound} onChange={(e) => alerting.update((x) => ({ ...x, sound: (e.target as HTMLInputElement).checked }))} /> Sound
      </label>
      <label>
        For new alerts at least
        <select value={s.atLeast} onChange={(e) => alerting.update((x) => ({ ...x, atLeast: (e.target as HTMLSelectElement).value as Severity }))}>
          {SEVERITIES.map((v) => (
            <option key={v} value={v}>
              {v}
            </option>
          ))}
        </select>
      </label>
      <button type="button" onClick={beep}>
        Test sound
      </button>
    </div>
  );
}
