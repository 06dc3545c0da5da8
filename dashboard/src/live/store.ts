// The open alerts the console shows, held in the browser and kept current by the WebSocket:
// a snapshot (`GET /api/v1/alerts/open`) plus every event since. Events are applied by state,
// not by type — an alert whose status is `resolved` leaves, any other is put in as the event
// shows it — so that replaying one twice, or one the snapshot already holds, changes nothing.
//
// Events are not applied one by one: they wait in `pending` and are applied together at most
// every APPLY_MS, so that a burst of thousands per second costs the page a few recomputations
// per second, not thousands. While paused, or while a snapshot loads, they wait there — one
// per alert (the latest: events are applied by state, so an earlier one of the same alert
// would change nothing), so that a long pause holds at most one event per alert.
import { api } from "../api/client";
import type { Alert, OpenAlerts } from "../api/types";
import { cell } from "../state";
import { type Change, type Entry, cachedSearch, entryOf, sortKeys } from "./view";

const APPLY_MS = 250;
/** Alerts of a snapshot taken in per task. */
const SNAPSHOT_SLICE = 20_000;

export type LinkState = "connecting" | "loading" | "live" | "disconnected";

interface Pending {
  alert: Alert;
  created: boolean;
  at: number;
}

/** What the page measures of itself, read by the console benchmark (`just bench-console`). */
export interface Perf {
  snapshotMs: number | null;
  snapshotCount: number;
  firstRenderMs: number | null;
  lastFilterMs: number | null;
  eventsApplied: number;
  longestTaskMs: number;
  longTasks: { start: number; duration: number }[];
  /** What the Content-Security-Policy refused on this page (the browser tests expect none). */
  cspViolations: string[];
}

export const perf: Perf = {
  snapshotMs: null,
  snapshotCount: 0,
  firstRenderMs: null,
  lastFilterMs: null,
  eventsApplied: 0,
  longestTaskMs: 0,
  longTasks: [],
  cspViolations: [],
};
document.addEventListener("securitypolicyviolation", (e) => perf.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
(window as unknown as { __ocPerf: Perf }).__ocPerf = perf;
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      perf.longTasks.push({ start: e.startTime, duration: e.duration });
      perf.longestTaskMs = Math.max(perf.longestTaskMs, e.duration);
    }
    if (perf.longTasks.length > 1000) perf.longTasks.splice(0, perf.longTasks.length - 1000);
  }).observe({ type: "longtask", buffered: true });
} catch {
  // Browsers without long-task timing: nothing to measure.
}

export const alerts = new Map<number, Entry>();
/** Moves whenever `alerts` changed: views recompute from it. */
export const version = cell(0);
export const link = cell<LinkState>("connecting");
/** When the socket retries, after a disconnection (ms since the epoch). */
export const retryAt = cell<number | null>(null);
export const paused = cell(false);
/** How many events wait, and since when the oldest does (for "N s behind"). */
export const backlog = cell<{ count: number; since: number | null }>({ count: 0, since: null });
/** New alerts as they are applied, for notifications. */
export const arrivals = cell<Alert[]>([]);

/** Waiting events, the latest per alert id, in the order their alerts first arrived. */
let pending = new Map<number, Pending>();
/** When the oldest waiting event arrived (for "N s behind"). */
let pendingSince: number | null = null;
/** How many events `pending` stands for (several of one alert count once there). */
let pendingEvents = 0;

/** What each recent version changed, for views that follow incrementally; `null` for a version
 * that replaced everything (a snapshot). */
const log: { version: number; changes: Change[] | null }[] = [];
const LOG_VERSIONS = 64;

function bump(changes: Change[] | null) {
  const next = version.get() + 1;
  log.push({ version: next, changes });
  if (log.length > LOG_VERSIONS) log.shift();
  version.set(next);
}

/** The changes from version `since` to now, or null when a view must recompute (a snapshot
 * came in between, or `since` is older than what is kept). */
export function changesSince(since: number): Change[] | null {
  if (since === version.get()) return [];
  const start = log.findIndex((l) => l.version === since + 1);
  if (start < 0) return null;
  const out: Change[] = [];
  for (const l of log.slice(start)) {
    if (l.changes === null) return null;
    out.push(...l.changes);
  }
  return out;
}
let loading = false;
let timer: ReturnType<typeof setTimeout> | null = null;

function showBacklog() {
  const next = { count: pending.size, since: pending.size > 0 ? pendingSince : null };
  const now = backlog.get();
  if (now.count !== next.count || now.since !== next.since) backlog.set(next);
}

/** An alert event from the socket. */
export function receive(alert: Alert, created: boolean) {
  const at = Date.now();
  const earlier = pending.get(alert.id);
  // Created stays true when a later event of the same batch updates a new alert.
  pending.set(alert.id, { alert, created: created || (earlier?.created ?? false), at: earlier?.at ?? at });
  pendingEvents++;
  if (pending.size === 1) {
    pendingSince = at;
    showBacklog();
  }
  schedule();
}

function schedule() {
  if (timer !== null || paused.get() || loading) return;
  timer = setTimeout(() => {
    timer = null;
    // In a frame when the page is seen; at once when it is hidden, where frames do not come:
    // the model (and notifications of new alerts) must follow in a background tab too.
    if (document.hidden) apply();
    else requestAnimationFrame(apply);
  }, APPLY_MS);
}

/** Applies every waiting event at once. */
function apply() {
  if (paused.get() || loading || pending.size === 0) return;
  const batch = pending.values();
  const events = pendingEvents;
  pending = new Map();
  pendingSince = null;
  pendingEvents = 0;
  const now = Date.now();
  const arrived: Alert[] = [];
  const changes: Change[] = [];
  for (const { alert, created } of batch) {
    const known = alerts.get(alert.id);
    if (alert.status === "resolved") {
      if (known) {
        alerts.delete(alert.id);
        changes.push({ old: known, now: undefined });
      }
      continue;
    }
    // An older rendering of an alert never replaces a newer one.
    if (known && Date.parse(alert.last_seen_at) < known.lastSeen && alert.occurrence_count < known.alert.occurrence_count) {
      continue;
    }
    if (!known && created) arrived.push(alert);
    const entry = entryOf(alert, now, !known);
    alerts.set(alert.id, entry);
    changes.push({ old: known, now: entry });
  }
  perf.eventsApplied += events;
  showBacklog();
  bump(changes);
  if (arrived.length > 0) arrivals.set(arrived);
}

export function setPaused(value: boolean) {
  paused.set(value);
  if (!value) schedule();
}

/** Re-reads every open alert; events received meanwhile wait and are applied after it. */
export async function loadSnapshot(): Promise<void> {
  // Events still waiting from before (a pause, a connection that could not be resumed) are
  // older than the snapshot: applied after it, they could bring back alerts resolved since.
  pending = new Map();
  pendingSince = null;
  pendingEvents = 0;
  showBacklog();
  loading = true;
  link.set("loading");
  const started = performance.now();
  try {
    const { alerts: open } = await api<OpenAlerts>("GET", "/api/v1/alerts/open");
    alerts.clear();
    // In slices, yielding between them, so that a large snapshot does not hold the page in one
    // long task (the indicator says "loading" meanwhile; events wait in `pending`).
    for (let i = 0; i < open.length; i += SNAPSHOT_SLICE) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 0));
      for (const alert of open.slice(i, i + SNAPSHOT_SLICE)) alerts.set(alert.id, entryOf(alert, 0, false));
    }
    perf.snapshotMs = performance.now() - started;
    perf.snapshotCount = open.length;
    bump(null);
  } finally {
    loading = false;
  }
  // Whatever arrived while it loaded is newer than or as new as the snapshot: apply it.
  apply();
  schedule();
  prepare();
}

/**
 * Makes the search text and sort keys of every alert in small slices while the page is idle,
 * so that the first free-text filter or text sort does not pay for 100,000 of them at once.
 */
function prepare() {
  const all = [...alerts.values()];
  let i = 0;
  const step = () => {
    const until = performance.now() + 8;
    while (i < all.length && performance.now() < until) {
      for (const stop = Math.min(all.length, i + 500); i < stop; i++) {
        cachedSearch(all[i].alert);
        sortKeys(all[i]);
      }
    }
    if (i < all.length) idle(step);
  };
  idle(step);
}

function idle(f: () => void) {
  if ("requestIdleCallback" in window) requestIdleCallback(f, { timeout: 1000 });
  else setTimeout(f, 16);
}

/** Puts alerts in as an action's answer shows them, before their events arrive. */
export function put(...changed: Alert[]) {
  const changes: Change[] = [];
  const at = Date.now();
  for (const alert of changed) {
    const old = alerts.get(alert.id);
    let now: Entry | undefined;
    if (alert.status === "resolved") alerts.delete(alert.id);
    else alerts.set(alert.id, (now = entryOf(alert, at, false)));
    if (old || now) changes.push({ old, now });
  }
  if (changes.length > 0) bump(changes);
}

export function clear() {
  alerts.clear();
  pending = new Map();
  pendingSince = null;
  pendingEvents = 0;
  showBacklog();
  bump(null);
}
