// What the console shows of the open alerts: one pass over them counts the header (by
// severity, all alerts), filters, counts the facets of what the filter lets through, then
// sorts and groups the result into the rows of the virtual list. Pure, so it is tested
// without a browser, and cheap enough to run several times a second over 100,000 alerts.
import type { Alert, Severity } from "../api/types";
import type { Filter } from "../filter";
import { searchText } from "../filter";

/** One alert with what the console computes of it once, not at every filter pass. */
export interface Entry {
  alert: Alert;
  /** Severity rank, 0 = critical. */
  rank: number;
  lastSeen: number;
  firstSeen: number;
  /** When this browser last saw it created or changed (ms since the epoch), for highlighting. */
  changedAt: number;
  /** New (rather than changed) at `changedAt`. */
  fresh: boolean;
}

const RANK: Record<string, number> = { critical: 0, major: 1, minor: 2, warning: 3, info: 4 };

const searches = new WeakMap<Alert, string>();

/** An alert's search text as its entry holds it (computed once per alert version). */
export function cachedSearch(alert: Alert): string {
  let s = searches.get(alert);
  if (s === undefined) searches.set(alert, (s = searchText(alert)));
  return s;
}

export function entryOf(alert: Alert, changedAt: number, fresh: boolean): Entry {
  // The search text is made on first use (`cachedSearch`): most filters never need it, and
  // making it for 100,000 alerts at load would cost the first render a third of a second.
  return {
    alert,
    rank: RANK[alert.severity] ?? 5,
    lastSeen: Date.parse(alert.last_seen_at),
    firstSeen: Date.parse(alert.first_seen_at),
    changedAt,
    fresh,
  };
}

export type SortKey = "severity" | "last_seen" | "first_seen" | "count" | "device" | "title";
export type GroupKey = "none" | "device" | "addon" | "alert_type";

export const SORTS: { key: SortKey; label: string }[] = [
  { key: "severity", label: "Severity" },
  { key: "last_seen", label: "Last seen" },
  { key: "first_seen", label: "First seen" },
  { key: "count", label: "Occurrences" },
  { key: "device", label: "Device" },
  { key: "title", label: "Title" },
];

export const GROUPS: { key: GroupKey; label: string }[] = [
  { key: "none", label: "No grouping" },
  { key: "device", label: "Device" },
  { key: "addon", label: "Addon" },
  { key: "alert_type", label: "Alert type" },
];

/** The facets the panel shows, in order, and what each counts of an alert. */
export const FACETS: { name: string; label: string; value: (a: Alert) => string }[] = [
  { name: "severity", label: "Severity", value: (a) => a.severity },
  { name: "status", label: "Status", value: (a) => a.status },
  { name: "acknowledged", label: "Acknowledged", value: (a) => (a.status === "acknowledged" ? "true" : "false") },
  { name: "addon", label: "Addon", value: (a) => a.addon_id },
  { name: "category", label: "Category", value: (a) => a.category },
  { name: "type", label: "Alert type", value: (a) => a.alert_type },
  { name: "device", label: "Device", value: deviceOf },
];

export function deviceOf(a: Alert): string {
  return a.device_name ?? a.device_ip ?? "";
}

/** A group's header row. */
export interface GroupRow {
  kind: "group";
  key: string;
  count: number;
  worst: Severity;
  collapsed: boolean;
}

/** A row of the list: an alert's entry itself (no wrapper: 100,000 of those would be garbage at
 * every update), or a group's header. */
export type Row = Entry | GroupRow;

export function isGroup(row: Row): row is GroupRow {
  return (row as GroupRow).kind === "group";
}

export interface View {
  /** Open alerts by severity, whatever the filter. */
  bySeverity: Record<Severity, number>;
  total: number;
  /** The alerts the filter matches, sorted. */
  matched: Entry[];
  facets: Map<string, Map<string, number>>;
  rows: Row[];
}

const SEVERITY_OF_RANK: Severity[] = ["critical", "major", "minor", "warning", "info"];

function compare(key: SortKey, descending: boolean): (a: Entry, b: Entry) => number {
  const dir = descending ? -1 : 1;
  const text = (f: (e: Entry) => string) => (a: Entry, b: Entry) => dir * f(a).localeCompare(f(b));
  const primary: (a: Entry, b: Entry) => number = {
    // Most severe first when ascending: the order operators read severities in.
    severity: (a: Entry, b: Entry) => dir * (a.rank - b.rank),
    last_seen: (a: Entry, b: Entry) => dir * (a.lastSeen - b.lastSeen),
    first_seen: (a: Entry, b: Entry) => dir * (a.firstSeen - b.firstSeen),
    count: (a: Entry, b: Entry) => dir * (a.alert.occurrence_count - b.alert.occurrence_count),
    device: text((e) => deviceOf(e.alert)),
    title: text((e) => e.alert.title),
  }[key];
  // Ties: the most recently seen first, then the newest alert, so the order is stable.
  return (a, b) => primary(a, b) || b.lastSeen - a.lastSeen || b.alert.id - a.alert.id;
}

/** `-severity` → descending severity; the URL's form of a sort. */
export function parseSort(text: string | null): { key: SortKey; descending: boolean } {
  const descending = text?.startsWith("-") ?? false;
  const key = (text ?? "severity").replace(/^-/, "") as SortKey;
  return SORTS.some((s) => s.key === key) ? { key, descending } : { key: "severity", descending: false };
}

function groupOf(key: GroupKey, a: Alert): string {
  switch (key) {
    case "device":
      return deviceOf(a) || "(no device)";
    case "addon":
      return a.addon_id;
    case "alert_type":
      return a.alert_type;
    default:
      return "";
  }
}

export function computeView(
  entries: Iterable<Entry>,
  filter: Filter,
  sort: { key: SortKey; descending: boolean },
  group: GroupKey,
  collapsed: Set<string>,
): View {
  const bySeverity: Record<Severity, number> = { critical: 0, major: 0, minor: 0, warning: 0, info: 0 };
  const facets = new Map<string, Map<string, number>>(FACETS.map((f) => [f.name, new Map()]));
  const matched: Entry[] = [];
  let total = 0;
  for (const e of entries) {
    total++;
    bySeverity[e.alert.severity]++;
    if (!filter.matches(e.alert)) continue;
    matched.push(e);
    for (const f of FACETS) {
      const counts = facets.get(f.name)!;
      const v = f.value(e.alert);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
  }
  matched.sort(compare(sort.key, sort.descending));
  return { bySeverity, total, matched, facets, rows: rowsOf(matched, group, collapsed) };
}

/** One change of the model: the entry as it was (absent when new) and as it is (absent when
 * it left). */
export interface Change {
  old: Entry | undefined;
  now: Entry | undefined;
}

function count(facets: View["facets"], a: Alert, by: number) {
  for (const f of FACETS) {
    const counts = facets.get(f.name)!;
    const v = f.value(a);
    const n = (counts.get(v) ?? 0) + by;
    if (n === 0) counts.delete(v);
    else counts.set(v, n);
  }
}

/**
 * `prev` with `changes` applied, for the same filter, sort and grouping: counts move by what
 * changed, and the changed entries are taken out of the sorted list and merged back in — a
 * few passes over the list instead of a sort of it, so that a burst of events costs the page
 * little whatever the number of open alerts.
 */
export function updateView(
  prev: View,
  changes: Change[],
  filter: Filter,
  sort: { key: SortKey; descending: boolean },
  group: GroupKey,
  collapsed: Set<string>,
): View {
  const bySeverity = { ...prev.bySeverity };
  const facets = new Map([...prev.facets].map(([k, v]) => [k, new Map(v)]));
  let total = prev.total;
  const latest = new Map<number, Entry | undefined>();
  for (const { old, now } of changes) {
    if (old) {
      total--;
      bySeverity[old.alert.severity]--;
      if (filter.matches(old.alert)) count(facets, old.alert, -1);
    }
    if (now) {
      total++;
      bySeverity[now.alert.severity]++;
      if (filter.matches(now.alert)) count(facets, now.alert, 1);
    }
    latest.set((old ?? now)!.alert.id, now);
  }
  const cmp = compare(sort.key, sort.descending);
  const added = [...latest.values()].filter((e): e is Entry => e !== undefined && filter.matches(e.alert)).sort(cmp);
  const kept = prev.matched.filter((e) => !latest.has(e.alert.id));
  const matched: Entry[] = new Array(kept.length + added.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < kept.length && j < added.length) matched[k++] = cmp(kept[i], added[j]) <= 0 ? kept[i++] : added[j++];
  while (i < kept.length) matched[k++] = kept[i++];
  while (j < added.length) matched[k++] = added[j++];
  return { bySeverity, total, matched, facets, rows: rowsOf(matched, group, collapsed) };
}

function rowsOf(matched: Entry[], group: GroupKey, collapsed: Set<string>): Row[] {
  let rows: Row[];
  if (group === "none") {
    rows = matched;
  } else {
    const groups = new Map<string, Entry[]>();
    for (const e of matched) {
      const k = groupOf(group, e.alert);
      let g = groups.get(k);
      if (!g) groups.set(k, (g = []));
      g.push(e);
    }
    // Groups in the order of their first alert: the worst (by the chosen sort) leads.
    rows = [];
    for (const [key, members] of groups) {
      const worst = SEVERITY_OF_RANK[Math.min(...members.map((m) => m.rank))];
      const isCollapsed = collapsed.has(key);
      rows.push({ kind: "group", key, count: members.length, worst, collapsed: isCollapsed });
      if (!isCollapsed) for (const entry of members) rows.push(entry);
    }
  }
  return rows;
}

/** The view as CSV: one line per alert, fields as columns of their own. */
export function toCsv(matched: Entry[]): string {
  const fieldNames = new Set<string>();
  for (const e of matched) for (const k of Object.keys(e.alert.fields)) fieldNames.add(k);
  const fields = [...fieldNames].sort();
  const columns = [
    "id",
    "severity",
    "status",
    "addon",
    "alert_type",
    "category",
    "device_ip",
    "device_name",
    "title",
    "message",
    "occurrence_count",
    "first_seen_at",
    "last_seen_at",
    "acknowledged_by",
  ];
  const cell = (v: unknown) => {
    const s = v === null || v === undefined ? "" : String(v);
    // Quoted when needed; a leading = + - @ is defused so spreadsheets do not run it.
    const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
    return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  const lines = [[...columns, ...fields.map((f) => `fields.${f}`)].map(cell).join(",")];
  for (const { alert: a } of matched) {
    const row = [
      a.id,
      a.severity,
      a.status,
      a.addon_id,
      a.alert_type,
      a.category,
      a.device_ip,
      a.device_name,
      a.title,
      a.message,
      a.occurrence_count,
      a.first_seen_at,
      a.last_seen_at,
      a.acknowledged_by,
      ...fields.map((f) => a.fields[f]),
    ];
    lines.push(row.map(cell).join(","));
  }
  return lines.join("\r\n") + "\r\n";
}
