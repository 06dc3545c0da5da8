// What the console shows of the open alerts: counts for the header (by severity, all alerts),
// the alerts the filter lets through with their facet counts, sorted and grouped into the rows
// of the virtual list. Pure, so it is tested without a browser, and built so that 100,000
// alerts stay fast:
//
// - every open alert is kept in the chosen sort order (`View.sorted`), so a new filter is one
//   pass over it (no sort); a sort is paid only when the sort itself changes;
// - facet values are interned to small numbers when an entry is made, so counting the facets
//   of 100,000 alerts is array increments, not Map operations on strings (those were two
//   thirds of a filter's cost);
// - a batch of events is merged into the sorted lists (`updateView`): a few linear passes,
//   whatever the number of open alerts.
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
  /** The interned number of each facet's value (indexes of FACETS). */
  facetIds: number[];
  /** Set once a newer entry of the same alert replaced this one, or the alert left: the
   * lists that hold it drop it at their next merge (a flag is cheaper to test than a lookup,
   * for every one of 100,000 entries). */
  superseded?: boolean;
  /** Sort keys of text columns, made on first use. */
  deviceKey?: string;
  titleKey?: string;
}

const RANK: Record<string, number> = { critical: 0, major: 1, minor: 2, warning: 3, info: 4 };
const SEVERITY_OF_RANK: Severity[] = ["critical", "major", "minor", "warning", "info"];

const searches = new WeakMap<Alert, string>();

/** An alert's search text as its entry holds it (computed once per alert version). */
export function cachedSearch(alert: Alert): string {
  let s = searches.get(alert);
  if (s === undefined) searches.set(alert, (s = searchText(alert)));
  return s;
}

export function deviceOf(a: Alert): string {
  return a.device_name ?? a.device_ip ?? "";
}

/** The facets the panel shows, in order, and what each counts of an alert. `order` fixes the
 * order of known values (severities by rank); other facets list the commonest first. */
export const FACETS: { name: string; label: string; value: (a: Alert) => string; order?: string[] }[] = [
  { name: "severity", label: "Severity", value: (a) => a.severity, order: SEVERITY_OF_RANK },
  { name: "status", label: "Status", value: (a) => a.status, order: ["active", "acknowledged", "suppressed"] },
  { name: "acknowledged", label: "Acknowledged", value: (a) => (a.status === "acknowledged" ? "true" : "false"), order: ["false", "true"] },
  { name: "addon", label: "Addon", value: (a) => a.addon_id },
  { name: "category", label: "Category", value: (a) => a.category },
  { name: "type", label: "Alert type", value: (a) => a.alert_type },
  { name: "device", label: "Device", value: deviceOf },
];

/** Facet values by number, per facet: numbers are handed out once and never reused. */
const interned = FACETS.map(() => ({ ids: new Map<string, number>(), values: [] as string[] }));

function intern(facet: number, value: string): number {
  const table = interned[facet];
  let id = table.ids.get(value);
  if (id === undefined) {
    id = table.values.length;
    table.ids.set(value, id);
    table.values.push(value);
  }
  return id;
}

export function entryOf(alert: Alert, changedAt: number, fresh: boolean): Entry {
  // The search text is made on first use (`cachedSearch`): most filters never need it, and
  // making it for 100,000 alerts at load would cost the first render a third of a second.
  const facetIds = new Array<number>(FACETS.length);
  for (let f = 0; f < FACETS.length; f++) facetIds[f] = intern(f, FACETS[f].value(alert));
  return {
    alert,
    rank: RANK[alert.severity] ?? 5,
    lastSeen: Date.parse(alert.last_seen_at),
    firstSeen: Date.parse(alert.first_seen_at),
    changedAt,
    fresh,
    facetIds,
  };
}

export type SortKey = "severity" | "last_seen" | "first_seen" | "count" | "device" | "title";
export type GroupKey = "none" | "device" | "addon" | "alert_type";
export interface Sort {
  key: SortKey;
  descending: boolean;
}

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
  /** Every open alert, in the sort order. */
  sorted: Entry[];
  /** The alerts the filter matches, in the sort order. */
  matched: Entry[];
  /** Per facet (FACETS' order), how many matched alerts have each interned value. */
  facetCounts: Int32Array[];
  rows: Row[];
}

/** Text as it sorts: lowercased, and numbers by value ("10.0.0.2" before "10.0.0.12"): every
 * run of digits is prefixed with a character that grows with its length. */
export function naturalKey(text: string): string {
  return text.toLowerCase().replace(/\d+/g, (digits) => {
    const d = digits.replace(/^0+(?=\d)/, "");
    return String.fromCharCode(0x30 + Math.min(d.length, 48)) + d;
  });
}

const deviceKey = (e: Entry) => (e.deviceKey ??= naturalKey(deviceOf(e.alert)));
const titleKey = (e: Entry) => (e.titleKey ??= naturalKey(e.alert.title));

/** Makes an entry's text sort keys now (in idle time) rather than at the first text sort. */
export function sortKeys(e: Entry) {
  deviceKey(e);
  titleKey(e);
}

/** The order of a sort. Ties: the most recently seen first, then the newest alert, so the
 * order is total and stable. Each key has its own comparison: this runs some 1.7 million
 * times to sort 100,000 alerts. */
export function compare(sort: Sort): (a: Entry, b: Entry) => number {
  const dir = sort.descending ? -1 : 1;
  const tie = (a: Entry, b: Entry) => b.lastSeen - a.lastSeen || b.alert.id - a.alert.id;
  switch (sort.key) {
    // Most severe first when ascending: the order operators read severities in.
    case "severity":
      return (a, b) => dir * (a.rank - b.rank) || tie(a, b);
    case "last_seen":
      return (a, b) => dir * (a.lastSeen - b.lastSeen) || b.alert.id - a.alert.id;
    case "first_seen":
      return (a, b) => dir * (a.firstSeen - b.firstSeen) || tie(a, b);
    case "count":
      return (a, b) => dir * (a.alert.occurrence_count - b.alert.occurrence_count) || tie(a, b);
    case "device":
    case "title": {
      const key = sort.key === "device" ? deviceKey : titleKey;
      return (a, b) => {
        const x = key(a);
        const y = key(b);
        return x < y ? -dir : x > y ? dir : tie(a, b);
      };
    }
  }
}

/** `-severity` → descending severity; the URL's form of a sort. */
export function parseSort(text: string | null): Sort {
  const descending = text?.startsWith("-") ?? false;
  const key = (text ?? "severity").replace(/^-/, "") as SortKey;
  return SORTS.some((s) => s.key === key) ? { key, descending } : { key: "severity", descending: false };
}

function emptyCounts(): Int32Array[] {
  return interned.map((t) => new Int32Array(Math.max(16, t.values.length)));
}

/** Counts copied, with room for the values interned since. */
function copyCounts(counts: Int32Array[]): Int32Array[] {
  return counts.map((c, f) => {
    const size = interned[f].values.length;
    if (size <= c.length) return c.slice();
    const grown = new Int32Array(Math.max(size, c.length * 2));
    grown.set(c);
    return grown;
  });
}

function countFacets(counts: Int32Array[], e: Entry, by: number) {
  const ids = e.facetIds;
  for (let f = 0; f < ids.length; f++) counts[f][ids[f]] += by;
}

/** The matched alerts of `sorted` and their facet counts: one pass, no sort. */
function match(sorted: Entry[], filter: Filter): { matched: Entry[]; facetCounts: Int32Array[] } {
  const facetCounts = emptyCounts();
  if (filter.terms.length === 0) {
    for (const e of sorted) countFacets(facetCounts, e, 1);
    return { matched: sorted, facetCounts };
  }
  const matched: Entry[] = [];
  for (const e of sorted) {
    if (!filter.matches(e.alert)) continue;
    matched.push(e);
    countFacets(facetCounts, e, 1);
  }
  return { matched, facetCounts };
}

/** The whole view from every entry: a sort of all of them, then one pass. */
export function computeView(entries: Iterable<Entry>, filter: Filter, sort: Sort, group: GroupKey, collapsed: Set<string>): View {
  const bySeverity: Record<Severity, number> = { critical: 0, major: 0, minor: 0, warning: 0, info: 0 };
  const sorted = Array.from(entries);
  for (const e of sorted) bySeverity[e.alert.severity]++;
  sorted.sort(compare(sort));
  const { matched, facetCounts } = match(sorted, filter);
  return { bySeverity, total: sorted.length, sorted, matched, facetCounts, rows: rowsOf(matched, group, collapsed) };
}

/** `prev` (same sort) under another filter: one pass over its sorted alerts. */
export function refilter(prev: View, filter: Filter, group: GroupKey, collapsed: Set<string>): View {
  const { matched, facetCounts } = match(prev.sorted, filter);
  return { ...prev, matched, facetCounts, rows: rowsOf(matched, group, collapsed) };
}

/** `prev` grouped (or folded) otherwise. */
export function regroup(prev: View, group: GroupKey, collapsed: Set<string>): View {
  return { ...prev, rows: rowsOf(prev.matched, group, collapsed) };
}

/** One change of the model: the entry as it was (absent when new) and as it is (absent when
 * it left). */
export interface Change {
  old: Entry | undefined;
  now: Entry | undefined;
}

/** `list` without its superseded entries, with `added` (sorted) merged in. */
function merge(list: Entry[], added: Entry[], cmp: (a: Entry, b: Entry) => number): Entry[] {
  const out: Entry[] = [];
  let j = 0;
  for (const e of list) {
    if (e.superseded) continue;
    while (j < added.length && cmp(added[j], e) < 0) out.push(added[j++]);
    out.push(e);
  }
  while (j < added.length) out.push(added[j++]);
  return out;
}

/**
 * `prev` with `changes` applied, for the same filter, sort and grouping: counts move by what
 * changed, and the changed entries are taken out of the sorted lists and merged back in — a
 * few passes over the lists instead of a sort, so that a burst of events costs the page little
 * whatever the number of open alerts.
 */
export function updateView(prev: View, changes: Change[], filter: Filter, sort: Sort, group: GroupKey, collapsed: Set<string>): View {
  if (changes.length === 0) return prev;
  const bySeverity = { ...prev.bySeverity };
  const facetCounts = copyCounts(prev.facetCounts);
  let total = prev.total;
  const latest = new Map<number, Entry | undefined>();
  for (const { old, now } of changes) {
    if (old) {
      old.superseded = true;
      total--;
      bySeverity[old.alert.severity]--;
      if (filter.matches(old.alert)) countFacets(facetCounts, old, -1);
    }
    if (now) {
      total++;
      bySeverity[now.alert.severity]++;
      if (filter.matches(now.alert)) countFacets(facetCounts, now, 1);
    }
    latest.set((old ?? now)!.alert.id, now);
  }
  const cmp = compare(sort);
  const present = [...latest.values()].filter((e): e is Entry => e !== undefined).sort(cmp);
  const sorted = merge(prev.sorted, present, cmp);
  const matched =
    filter.terms.length === 0
      ? sorted
      : merge(
          prev.matched,
          present.filter((e) => filter.matches(e.alert)),
          cmp,
        );
  return { bySeverity, total, sorted, matched, facetCounts, rows: rowsOf(matched, group, collapsed) };
}

/** The facet whose values a grouping groups by. */
const GROUP_FACET: Record<Exclude<GroupKey, "none">, number> = {
  addon: FACETS.findIndex((f) => f.name === "addon"),
  alert_type: FACETS.findIndex((f) => f.name === "type"),
  device: FACETS.findIndex((f) => f.name === "device"),
};

/** The list's rows: the matched alerts, or under a header per group. Groups come in the order
 * of their first alert (the worst by the chosen sort leads). Grouping goes by the interned facet
 * numbers, in arrays: two passes without a Map, whatever the number of groups. */
function rowsOf(matched: Entry[], group: GroupKey, collapsed: Set<string>): Row[] {
  if (group === "none") return matched;
  const facet = GROUP_FACET[group];
  const names = interned[facet].values;
  const size = names.length;
  const count = new Int32Array(size);
  const worst = new Int8Array(size).fill(4);
  const order: number[] = [];
  for (const e of matched) {
    const id = e.facetIds[facet];
    if (count[id]++ === 0) order.push(id);
    if (e.rank < worst[id]) worst[id] = e.rank;
  }
  const at = new Int32Array(size).fill(-1);
  let length = 0;
  const headers: GroupRow[] = [];
  for (const id of order) {
    const key = group === "device" && names[id] === "" ? "(no device)" : names[id];
    const isCollapsed = collapsed.has(key);
    headers.push({ kind: "group", key, count: count[id], worst: SEVERITY_OF_RANK[worst[id]], collapsed: isCollapsed });
    length++;
    if (!isCollapsed) {
      at[id] = length;
      length += count[id];
    }
  }
  const rows: Row[] = new Array(length);
  let h = 0;
  let position = 0;
  for (const id of order) {
    rows[position] = headers[h++];
    position += 1 + (at[id] >= 0 ? count[id] : 0);
  }
  for (const e of matched) {
    const id = e.facetIds[facet];
    if (at[id] >= 0) rows[at[id]++] = e;
  }
  return rows;
}

/**
 * A facet's values with their counts: known values (severities, statuses) in their order,
 * others the commonest first, at most `limit` of them (picked without sorting every value:
 * a device facet may hold 100,000). `more` says how many values were left out.
 */
export function facetValues(view: View, facet: number, limit: number): { values: [string, number][]; more: number } {
  return topOf(view.facetCounts[facet], facet, limit);
}

/** A facet's values over `entries` (all open alerts, say), as `facetValues` lists them. */
export function facetTotals(entries: Entry[], facet: number, limit: number): { values: [string, number][]; more: number } {
  const counts = new Int32Array(interned[facet].values.length);
  for (const e of entries) counts[e.facetIds[facet]]++;
  return topOf(counts, facet, limit);
}

function topOf(counts: Int32Array, facet: number, limit: number): { values: [string, number][]; more: number } {
  const names = interned[facet].values;
  const order = FACETS[facet].order;
  if (order) {
    const values: [string, number][] = [];
    for (const v of order) {
      const id = interned[facet].ids.get(v);
      const n = id === undefined ? 0 : counts[id];
      if (n > 0) values.push([v, n]);
    }
    return { values, more: 0 };
  }
  // The top `limit` by count in a small array kept sorted by count; among equal counts the
  // value seen first stays (a test of one number per value: a device facet may hold 100,000,
  // each counted once). Then shown most first, ties by name.
  const top: [string, number][] = [];
  let nonZero = 0;
  let least = 0;
  for (let id = 0; id < counts.length; id++) {
    const n = counts[id];
    if (n <= 0) continue;
    nonZero++;
    if (top.length === limit && n <= least) continue;
    let i = top.length;
    while (i > 0 && top[i - 1][1] < n) i--;
    top.splice(i, 0, [names[id], n]);
    if (top.length > limit) top.pop();
    least = top[top.length - 1][1];
  }
  top.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { values: top, more: nonZero - top.length };
}

/** A facet's counts by value, every one (for tests and small facets). */
export function facetMap(view: View, name: string): Map<string, number> {
  const facet = FACETS.findIndex((f) => f.name === name);
  const out = new Map<string, number>();
  view.facetCounts[facet].forEach((n, id) => {
    if (n > 0) out.set(interned[facet].values[id], n);
  });
  return out;
}

/**
 * The view the console shows, kept from one render to the next: it does only the work what
 * changed needs — nothing, a merge of the latest changes, a pass with a new filter, new groups
 * — and a full recomputation (a sort of every alert) only for a new sort or a snapshot.
 */
export class ViewCache {
  private view: View | null = null;
  private version = -1;
  private filter: Filter | null = null;
  private sort = "";
  private group: GroupKey = "none";
  private collapsed: Set<string> | null = null;

  get(
    entries: () => Iterable<Entry>,
    version: number,
    changesSince: (version: number) => Change[] | null,
    filter: Filter,
    sort: Sort,
    group: GroupKey,
    collapsed: Set<string>,
  ): View {
    const sortKey = `${sort.descending ? "-" : ""}${sort.key}`;
    let view = this.view;
    if (view === null || this.sort !== sortKey) {
      view = computeView(entries(), filter, sort, group, collapsed);
    } else {
      if (this.version !== version) {
        const changes = changesSince(this.version);
        // The changes, under the old filter (cheap), before a new filter takes its own pass.
        view = changes === null ? computeView(entries(), filter, sort, group, collapsed) : updateView(view, changes, this.filter!, sort, this.group, this.collapsed!);
      }
      if (this.filter !== filter) view = refilter(view, filter, group, collapsed);
      else if (this.group !== group || this.collapsed !== collapsed) view = regroup(view, group, collapsed);
    }
    Object.assign(this, { view, version, filter, sort: sortKey, group, collapsed });
    return view;
  }
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
