// The alert console: every open alert, live, filtered by the matcher language, counted by
// facet, grouped and sorted, acted on one at a time, by selection or by filter. The view —
// filter, grouping, sort, the alert open beside the list — lives in the URL.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, problem } from "../api/client";
import { type Alert, type AlertAction, type BulkAnswer, SEVERITIES, type SavedView, type Severity, type ViewList } from "../api/types";
import { can, me } from "../auth";
import { Ago, Confirm, Dialog, SeverityBadge, notify, useDismiss } from "../components";
import { VirtualList } from "../components/vlist";
import { FilterBar } from "../components/filterbar";
import { type Filter, FilterError, NAMES, compileFilter, hasMatcher, toggleMatcher, valuesOf } from "../filter";
import { alerts, changesSince, link, perf, put, version } from "../live/store";
import { type Entry, FACETS, GROUPS, type GroupKey, type Row, SORTS, type View, ViewCache, cachedSearch, deviceOf, facetTotals, facetValues, isGroup, parseSort, toCsv } from "../live/view";
import { location, navigate, setQuery } from "../router";
import { useValue } from "../state";
import { AlertDetail } from "./alert";

/** Rows are one line on a wide screen, two on a phone (the list needs fixed heights). */
const ROW_HEIGHT = 36;
const PHONE_ROW_HEIGHT = 50;
const phone = window.matchMedia("(max-width: 760px)");

function usePhone(): boolean {
  const [is, setIs] = useState(phone.matches);
  useEffect(() => {
    const change = () => setIs(phone.matches);
    phone.addEventListener("change", change);
    return () => phone.removeEventListener("change", change);
  }, []);
  return is;
}
/** Most ids per bulk request (the API's limit); more are sent in several. */
const BULK_IDS = 1000;
/** How long a new or changed alert stays highlighted. */
const HIGHLIGHT_MS = 4000;

/** The filter last compiled without error: the list keeps showing it while the filter bar
 * holds a mistake (showing everything instead would look like the filter matched it all). */
let lastGood: Filter = compileFilter("");

function compile(text: string): { filter: Filter; error: string | null } {
  try {
    lastGood = compileFilter(text, cachedSearch);
    return { filter: lastGood, error: null };
  } catch (e) {
    return { filter: lastGood, error: e instanceof FilterError ? e.message : String(e) };
  }
}

/** Alerts looked at for field names and values to complete (a sample is enough for that). */
const SAMPLE = 20_000;

/** Field names the open alerts have, the commonest first, for completions. */
function fieldNamesOf(entries: Entry[]): string[] {
  const seen = new Map<string, number>();
  for (let i = 0; i < entries.length && i < SAMPLE; i += entries.length > 2000 ? 7 : 1) {
    for (const k of Object.keys(entries[i].alert.fields)) seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  return [...seen].sort((a, b) => b[1] - a[1]).map(([k]) => k);
}

/** Values `name` takes among the open alerts, with counts, for completions. */
function valuesFor(entries: Entry[], name: string): { value: string; count?: number }[] {
  if (name === "severity") return SEVERITIES.map((value) => ({ value }));
  if (name === "status") return ["active", "acknowledged", "suppressed"].map((value) => ({ value }));
  if (name === "acknowledged") return ["false", "true"].map((value) => ({ value }));
  const facet = FACETS.findIndex((f) => f.name === (name === "alert_type" ? "type" : name));
  if (facet >= 0) return facetTotals(entries, facet, 200).values.map(([value, count]) => ({ value, count }));
  const counts = new Map<string, number>();
  for (let i = 0; i < entries.length && i < SAMPLE; i++) {
    for (const v of valuesOf(name, entries[i].alert)) counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 200)
    .map(([value, count]) => ({ value, count }));
}

/** The view survives the page: coming back to the console costs no recomputation. */
const cache = new ViewCache();

export function ConsolePage() {
  const loc = useValue(location);
  const v = useValue(version);
  const state = useValue(link);
  useValue(me);
  const q = loc.query.get("q") ?? "";
  const group = (loc.query.get("group") ?? "none") as GroupKey;
  const sort = parseSort(loc.query.get("sort"));
  const openId = loc.query.get("alert") ? Number(loc.query.get("alert")) : null;
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [allMatching, setAllMatching] = useState(false);
  // The keyboard cursor follows an alert, not a position: rows move under it as events arrive,
  // and `a` must acknowledge the alert the operator sees marked. A ref as well as state, so
  // that keys pressed faster than renders (a held `j`) each move on from the last.
  const [cursorId, setCursorIdState] = useState<number | null>(null);
  const cursorRef = useRef<{ id: number | null; index: number | null }>({ id: null, index: null });
  const setCursorAt = (index: number | null) => {
    const r = index === null ? undefined : view.rows[index];
    const id = r && !isGroup(r) ? r.alert.id : null;
    cursorRef.current = { id, index };
    setCursorIdState(id);
  };
  const [confirm, setConfirm] = useState<AlertAction | null>(null);
  const [facetsOpen, setFacetsOpen] = useState(false);
  const [help, setHelp] = useState(false);
  const lastSelected = useRef<number | null>(null);
  const lastFilter = useRef<Filter | null>(null);
  const lastMatched = useRef<unknown>(null);
  const filterInput = useRef<HTMLInputElement>(null);
  const mayAct = can("act_on_alerts");
  const onPhone = usePhone();

  useEffect(() => {
    document.title = "Alerts · OpsConductor";
  }, []);

  const { filter, error } = useMemo(() => compile(q), [q]);
  // The cache does only what changed needs: a merge of the latest events, a pass with a new
  // filter, new groups; a sort of every alert only for a new sort or a snapshot.
  const view = useMemo(() => {
    const started = performance.now();
    const result = cache.get(() => alerts.values(), v, changesSince, filter, sort, group, collapsed);
    if (result.matched !== lastMatched.current) {
      if (lastFilter.current !== filter) perf.lastFilterMs = performance.now() - started;
      lastFilter.current = filter;
      lastMatched.current = result.matched;
    }
    return result;
  }, [v, filter, sort.key, sort.descending, group, collapsed]);

  // The first render with the snapshot in, measured for the benchmark.
  useEffect(() => {
    if (perf.firstRenderMs === null && state === "live" && perf.snapshotMs !== null) {
      requestAnimationFrame(() => {
        perf.firstRenderMs ??= performance.now();
      });
    }
  }, [state, v]);

  // A new filter starts a new selection.
  useEffect(() => {
    setSelected(new Set());
    setAllMatching(false);
    setCursorAt(null);
  }, [q]);

  const alertRows = view.rows;
  // Where the cursor's alert is now; when it left the view, the position it had.
  const cursor = useMemo(() => {
    const { id, index } = cursorRef.current;
    if (id === null) return null;
    if (index !== null && index < alertRows.length) {
      const r = alertRows[index];
      if (!isGroup(r) && r.alert.id === id) return index;
    }
    const found = alertRows.findIndex((r) => !isGroup(r) && r.alert.id === id);
    const at = found >= 0 ? found : index === null ? null : Math.min(index, alertRows.length - 1);
    cursorRef.current.index = at;
    return at;
  }, [alertRows, cursorId]);

  const open = (id: number | null) => setQuery({ alert: id === null ? null : String(id) }, false);

  /** Ticks or unticks alert `id` (at row `index`); `range` ticks every alert between the last
   * one ticked (found again by its id: rows move) and this one. */
  const toggleSelect = (id: number, index: number, range: boolean) => {
    setAllMatching(false);
    const rows = view.rows;
    const from = lastSelected.current === null ? -1 : rows.findIndex((r) => !isGroup(r) && r.alert.id === lastSelected.current);
    setSelected((prev) => {
      const next = new Set(prev);
      if (range && from >= 0) {
        for (let i = Math.min(from, index); i <= Math.max(from, index); i++) {
          const r = rows[i];
          if (r && !isGroup(r)) next.add(r.alert.id);
        }
      } else if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
    lastSelected.current = id;
  };

  // Keyboard: j/k or arrows move, Enter/o opens, x selects, a acknowledges, r resolves,
  // / searches, Esc closes, ? helps. Never while typing.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (target.closest("input, textarea, select, [contenteditable], dialog")) {
        if (e.key === "Escape" && target === filterInput.current) filterInput.current?.blur();
        return;
      }
      const rows = view.rows;
      const at = cursorRef.current.index;
      const move = (d: number) => {
        e.preventDefault();
        let i = at === null ? (d > 0 ? -1 : rows.length) : Math.min(at, rows.length);
        do i += d;
        while (i >= 0 && i < rows.length && isGroup(rows[i]));
        if (i >= 0 && i < rows.length) {
          setCursorAt(i);
          // With the detail open, it follows the cursor (one history entry, not one per key).
          const r = rows[i];
          if (openId !== null && !isGroup(r)) setQuery({ alert: String(r.alert.id) }, true);
        }
      };
      const row = at === null ? undefined : rows[at];
      const current = row && !isGroup(row) && row.alert.id === cursorRef.current.id ? row.alert : null;
      switch (e.key) {
        case "j":
        case "ArrowDown":
          return move(1);
        case "k":
        case "ArrowUp":
          return move(-1);
        case "Enter":
        case "o":
          if (current) open(current.id);
          return;
        case "x":
          if (current && mayAct && at !== null) toggleSelect(current.id, at, false);
          return;
        case "a":
          if (current && mayAct) void single(current, current.status === "acknowledged" ? "unacknowledge" : "acknowledge");
          return;
        case "r":
          if (current && mayAct) {
            setSelected(new Set([current.id]));
            setAllMatching(false);
            setConfirm("resolve");
          }
          return;
        case "/":
          e.preventDefault();
          filterInput.current?.focus();
          return;
        case "Escape":
          if (openId !== null) open(null);
          else if (selected.size > 0 || allMatching) {
            setSelected(new Set());
            setAllMatching(false);
          }
          return;
        case "?":
          setHelp(true);
          return;
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  });

  const single = async (a: Alert, action: "acknowledge" | "unacknowledge") => {
    try {
      put(await api<Alert>("POST", `/api/v1/alerts/${a.id}/${action}`, {}));
    } catch (e) {
      notify("error", problem(e));
    }
  };

  const count = allMatching ? view.matched.length : selected.size;
  const bulk = async (action: AlertAction) => {
    setConfirm(null);
    try {
      let succeeded = 0;
      let failed = 0;
      if (allMatching) {
        const answer = await api<BulkAnswer>("POST", "/api/v1/alerts/bulk", { filter: q, action });
        succeeded = answer.succeeded;
        failed = answer.failed;
      } else {
        const ids = [...selected];
        for (let i = 0; i < ids.length; i += BULK_IDS) {
          const answer = await api<BulkAnswer>("POST", "/api/v1/alerts/bulk", { ids: ids.slice(i, i + BULK_IDS), action });
          succeeded += answer.succeeded;
          failed += answer.failed;
          put(...answer.results.flatMap((r) => (r.alert ? [r.alert] : [])));
        }
      }
      notify(failed > 0 ? "error" : "ok", `${action}: ${succeeded} done${failed > 0 ? `, ${failed} refused (already in that state)` : ""}`);
      setSelected(new Set());
      setAllMatching(false);
    } catch (e) {
      notify("error", problem(e));
    }
  };

  const silenceSelection = () => {
    if (allMatching || selected.size === 0) {
      navigate(`/silences/new?q=${encodeURIComponent(q)}`);
    } else {
      navigate(`/silences/new?ids=${[...selected].slice(0, 500).join(",")}`);
    }
  };

  const exportCsv = () => {
    const blob = new Blob([toCsv(view.matched)], { type: "text/csv;charset=utf-8" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `alerts-${new Date().toISOString().slice(0, 16).replace(/[:T]/g, "")}.csv`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  };

  const renderRow = (row: Row, index: number) => {
    if (isGroup(row)) {
      const toggle = () =>
        setCollapsed((prev) => {
          const next = new Set(prev);
          if (next.has(row.key)) next.delete(row.key);
          else next.add(row.key);
          return next;
        });
      return (
        <div class="group-row" role="gridcell">
          <button type="button" class="group-toggle" aria-expanded={!row.collapsed} onClick={toggle}>
            <span aria-hidden="true">{row.collapsed ? "▸" : "▾"}</span> {row.key}
          </button>
          <span class="muted">{row.count} alerts</span>
          <SeverityBadge severity={row.worst} />
        </div>
      );
    }
    const a = row.alert;
    const recent = Date.now() - row.changedAt < HIGHLIGHT_MS;
    const classes = [
      "alert-row",
      `status-row-${a.status}`,
      recent ? (row.fresh ? "is-new" : "is-changed") : "",
      cursor === index ? "is-cursor" : "",
      openId === a.id ? "is-open" : "",
      selected.has(a.id) || allMatching ? "is-selected" : "",
    ].join(" ");
    return (
      <div
        class={classes}
        data-testid="alert-row"
        data-alert-id={a.id}
        data-status={a.status}
        data-severity={a.severity}
        role="gridcell"
        aria-selected={selected.has(a.id) || allMatching}
        aria-label={`${a.severity} ${a.status}: ${a.title}`}
        onClick={(e) => {
          if ((e.target as HTMLElement).closest("input, button, a")) return;
          setCursorAt(index);
          open(a.id);
        }}
      >
        {mayAct ? (
          <input
            type="checkbox"
            data-testid="row-select"
            aria-label={`Select alert ${a.id}`}
            checked={selected.has(a.id) || allMatching}
            onClick={(e) => {
              e.stopPropagation();
              toggleSelect(a.id, index, (e as MouseEvent).shiftKey);
            }}
          />
        ) : (
          <span />
        )}
        <SeverityBadge severity={a.severity} />
        <span class={`status status-${a.status}`}>{a.status === "acknowledged" ? "ack" : a.status}</span>
        <span class="title" title={a.message || a.title}>
          {a.title}
        </span>
        <span class="device mono" title={[a.device_name, a.device_ip].filter(Boolean).join(" · ")}>
          {deviceOf(a) || "—"}
        </span>
        <span class="source muted">
          {a.addon_id} · {a.alert_type}
        </span>
        <span class="occurrences" title="occurrences">
          ×{a.occurrence_count}
        </span>
        <span class="seen muted">
          <Ago at={a.last_seen_at} />
        </span>
      </div>
    );
  };

  const loadingText = state !== "live" && view.total === 0 ? (state === "loading" ? "Loading alerts…" : "Connecting…") : null;
  return (
    <main class={`console${openId !== null ? " with-detail" : ""}`} id="main">
      <div class="toolbar">
        <FilterBar
          q={q}
          error={error}
          inputRef={filterInput}
          onApply={(text) => setQuery({ q: text.trim() === "" ? null : text })}
          onHelp={() => setHelp(true)}
          fieldNames={() => fieldNamesOf(view.sorted)}
          valuesOf={(name) => valuesFor(view.sorted, name)}
        />
        <div class="toolbar-row">
          <button type="button" class="facets-toggle" aria-expanded={facetsOpen} onClick={() => setFacetsOpen(!facetsOpen)}>
            Facets
          </button>
          <label class="inline">
            <span class="label-text">Group</span>
            <select data-testid="group-by" value={group} onChange={(e) => setQuery({ group: (e.target as HTMLSelectElement).value === "none" ? null : (e.target as HTMLSelectElement).value })}>
              {GROUPS.map((g) => (
                <option key={g.key} value={g.key}>
                  {g.label}
                </option>
              ))}
            </select>
          </label>
          <label class="inline">
            <span class="label-text">Sort</span>
            <select
              data-testid="sort-by"
              value={`${sort.descending ? "-" : ""}${sort.key}`}
              onChange={(e) => {
                const value = (e.target as HTMLSelectElement).value;
                setQuery({ sort: value === "severity" ? null : value });
              }}
            >
              {SORTS.flatMap((s) => [
                <option key={s.key} value={s.key}>
                  {s.label} {s.key === "severity" ? "(worst first)" : s.key === "title" || s.key === "device" ? "(A–Z)" : "(oldest first)"}
                </option>,
                <option key={`-${s.key}`} value={`-${s.key}`}>
                  {s.label} {s.key === "severity" ? "(mildest first)" : s.key === "title" || s.key === "device" ? "(Z–A)" : "(newest first)"}
                </option>,
              ])}
            </select>
          </label>
          <SavedViews />
          <button type="button" data-testid="export-csv" onClick={exportCsv} disabled={view.matched.length === 0}>
            Export CSV
          </button>
          <span class="total" aria-live="polite">
            <span data-testid="alert-total">{view.matched.length}</span>
            <span class="muted"> of {view.total} open</span>
          </span>
        </div>
        {mayAct ? (
          <div class="bulkbar" role="group" aria-label="Act on alerts">
            <button
              type="button"
              data-testid="select-all-matching"
              aria-pressed={allMatching}
              disabled={view.matched.length === 0 || error !== null}
              title={error !== null ? "Fix the filter first: acting on all matching sends it to the runtime" : undefined}
              onClick={() => {
                setAllMatching(!allMatching);
                setSelected(new Set());
              }}
            >
              {allMatching ? `All ${view.matched.length} matching selected` : `Select all ${view.matched.length} matching`}
            </button>
            <span class={`muted bulk-hint${count > 0 ? " has-count" : ""}`}>
              {allMatching ? "whatever the filter matches when you confirm" : count > 0 ? `${count} selected` : "Tick alerts (Shift-click for a range, x on the keyboard), or select all matching"}
            </span>
            <button type="button" data-testid="bulk-acknowledge" disabled={count === 0} onClick={() => setConfirm("acknowledge")}>
              {allMatching ? `Acknowledge all ${count}…` : count > 0 ? `Acknowledge ${count}` : "Acknowledge"}
            </button>
            <button type="button" data-testid="bulk-resolve" disabled={count === 0} onClick={() => setConfirm("resolve")}>
              {allMatching ? `Resolve all ${count}…` : count > 0 ? `Resolve ${count}…` : "Resolve…"}
            </button>
            {can("manage_silences") ? (
              <button type="button" data-testid="bulk-silence" disabled={count === 0} onClick={silenceSelection}>
                {allMatching ? "Silence all matching…" : "Silence…"}
              </button>
            ) : null}
            {count > 0 ? (
              <button
                type="button"
                class="link-button"
                onClick={() => {
                  setSelected(new Set());
                  setAllMatching(false);
                }}
              >
                Clear
              </button>
            ) : null}
          </div>
        ) : null}
      </div>
      <div class="console-body">
        <Facets view={view} q={q} open={facetsOpen} onClose={() => setFacetsOpen(false)} />
        <div class="list-pane">
          {loadingText ? <p class="muted empty">{loadingText}</p> : null}
          {!loadingText && view.matched.length === 0 ? <p class="muted empty">{view.total === 0 ? "No open alerts. All quiet." : "No open alert matches this filter."}</p> : null}
          <VirtualList items={alertRows} rowHeight={onPhone ? PHONE_ROW_HEIGHT : ROW_HEIGHT} renderRow={renderRow} focus={cursor} label="Open alerts" testid="alert-list" keyOf={(r) => (isGroup(r) ? `g:${r.key}` : r.alert.id)} />
        </div>
        {openId !== null ? (
          <aside class="detail-pane" aria-label="Alert detail">
            <AlertDetail id={openId} onClose={() => open(null)} />
          </aside>
        ) : null}
      </div>
      {confirm ? (
        <Confirm
          title={`${confirm[0].toUpperCase()}${confirm.slice(1)} ${allMatching ? "all " : ""}${count} ${allMatching ? "matching " : ""}alert${count === 1 ? "" : "s"}?`}
          okLabel={`${confirm[0].toUpperCase()}${confirm.slice(1)} ${allMatching ? "all " : ""}${count}`}
          danger={confirm === "resolve"}
          onCancel={() => setConfirm(null)}
          onOk={() => void bulk(confirm)}
        >
          {allMatching ? (
            <p>
              Every open alert matching <code>{q || "(everything)"}</code> when you confirm: {count} now.
            </p>
          ) : (
            <p>The {count} ticked alert{count === 1 ? "" : "s"}.</p>
          )}
        </Confirm>
      ) : null}
      {help ? <Shortcuts onClose={() => setHelp(false)} /> : null}
    </main>
  );
}

/** Values a facet lists before "show more", and after it. */
const FACET_SHORT = 10;
const FACET_LONG = 100;

function Facets({ view, q, open, onClose }: { view: View; q: string; open: boolean; onClose: () => void }) {
  const [expanded, setExpanded] = useState<Set<string>>(new Set());
  let terms: ReturnType<typeof compileFilter>["terms"] = [];
  try {
    terms = compileFilter(q).terms;
  } catch {
    // The filter bar says what is wrong.
  }
  const click = (name: string, value: string, negate: boolean) => setQuery({ q: toggleMatcher(q, name, negate ? "!=" : "=", value) || null });
  return (
    <>
      {open ? <div class="drawer-backdrop" onClick={onClose} aria-hidden="true" /> : null}
      <nav class={`facets${open ? " open" : ""}`} id="facets" aria-label="Facets">
        <div class="facets-head">
          <p class="muted hint">Click to filter; Alt- or Shift-click to exclude; click again to drop.</p>
          <button type="button" class="icon facets-close" aria-label="Close the facets" onClick={onClose}>
            ×
          </button>
        </div>
        {FACETS.map((f, index) => {
          const long = expanded.has(f.name);
          const { values, more } = facetValues(view, index, long ? FACET_LONG : FACET_SHORT);
          // A value the filter names stays listed (at 0) so that it can be clicked off again:
          // `severity!=critical` leaves no critical alert to count.
          for (const t of terms) {
            if (t.kind === "matcher" && t.matcher.name === f.name && (t.matcher.op === "=" || t.matcher.op === "!=") && !values.some(([v]) => v === t.matcher.value)) {
              values.push([t.matcher.value, 0]);
            }
          }
          const order = f.order;
          if (order) values.sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]));
          if (values.length === 0) return null;
          return (
            <section key={f.name} class="facet" aria-labelledby={`facet-h-${f.name}`}>
              <h2 id={`facet-h-${f.name}`}>{f.label}</h2>
              <ul>
                {values.map(([value, n]) => {
                  const on = hasMatcher(terms, f.name, "=", value);
                  const off = hasMatcher(terms, f.name, "!=", value);
                  const shown = value === "" ? "(none)" : value;
                  return (
                    <li key={value}>
                      <button
                        type="button"
                        class={`facet-value${on ? " on" : ""}${off ? " off" : ""}`}
                        data-testid={`facet-${f.name}-${value}`}
                        aria-pressed={on || off}
                        aria-label={`${f.label} ${shown}: ${n}${on ? " (filtering on it)" : off ? " (excluded)" : ""}`}
                        title={on || off ? "Click to drop this term" : `${f.name}=${value} (Alt- or Shift-click: ${f.name}!=${value})`}
                        onClick={(e) => click(f.name, value, off || (e as MouseEvent).altKey || (e as MouseEvent).shiftKey)}
                      >
                        <span class="facet-name">
                          {off ? <span aria-hidden="true">≠ </span> : null}
                          {f.name === "severity" ? <SeverityBadge severity={value as Severity} /> : shown}
                        </span>
                        <span class="facet-count">{n}</span>
                      </button>
                    </li>
                  );
                })}
                {more > 0 || long ? (
                  <li>
                    <button
                      type="button"
                      class="link-button"
                      aria-expanded={long}
                      onClick={() =>
                        setExpanded((prev) => {
                          const next = new Set(prev);
                          if (long) next.delete(f.name);
                          else next.add(f.name);
                          return next;
                        })
                      }
                    >
                      {long ? "Show fewer" : `Show more (${more})`}
                    </button>
                    {long && more > 0 ? <span class="muted"> and {more} more: filter to narrow</span> : null}
                  </li>
                ) : null}
              </ul>
            </section>
          );
        })}
      </nav>
    </>
  );
}

function SavedViews() {
  const [views, setViews] = useState<SavedView[] | null>(null);
  const [menu, setMenu] = useState(false);
  const [saving, setSaving] = useState(false);
  const [name, setName] = useState("");
  const [shared, setShared] = useState(false);
  const menuRef = useRef<HTMLDivElement>(null);
  useDismiss(menuRef, menu, () => setMenu(false));
  const who = useValue(me);
  const load = () => api<ViewList>("GET", "/api/v1/views").then((l) => setViews(l.items), (e) => notify("error", problem(e)));
  const query = () => {
    const params = new URLSearchParams(window.location.search);
    params.delete("alert");
    return params.toString();
  };
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      await api("POST", "/api/v1/views", { name: name.trim(), query: query(), shared });
      notify("ok", `Saved the view "${name.trim()}"`);
      setSaving(false);
      setName("");
      void load();
    } catch (err) {
      notify("error", problem(err));
    }
  };
  return (
    <>
      <div class="menu-anchor" ref={menuRef}>
        <button
          type="button"
          aria-haspopup="menu"
          aria-expanded={menu}
          onClick={() => {
            if (!menu) void load();
            setMenu(!menu);
          }}
        >
          Views ▾
        </button>
        {menu ? (
          <div class="menu views-menu" role="menu">
            {views === null ? <p class="muted menu-note">Loading…</p> : null}
            {views?.length === 0 ? <p class="muted menu-note">No saved views yet.</p> : null}
            {views?.map((v) => (
              <div key={v.id} class="view-item">
                <button
                  type="button"
                  role="menuitem"
                  onClick={() => {
                    setMenu(false);
                    navigate(v.query ? `/?${v.query}` : "/");
                  }}
                >
                  {v.name}
                  {v.shared ? <span class="muted"> · shared by {v.owner}</span> : null}
                </button>
                {v.owner === who?.actor ? (
                  <button
                    type="button"
                    class="icon"
                    aria-label={`Delete the view ${v.name}`}
                    onClick={async () => {
                      await api("DELETE", `/api/v1/views/${v.id}`).catch((e) => notify("error", problem(e)));
                      void load();
                    }}
                  >
                    ×
                  </button>
                ) : null}
              </div>
            ))}
          </div>
        ) : null}
      </div>
      <button type="button" data-testid="save-view" onClick={() => setSaving(true)}>
        Save view
      </button>
      {saving ? (
        <Dialog title="Save this view" onClose={() => setSaving(false)}>
          <form class="dialog-body form" onSubmit={save}>
            <label>
              Name
              <input required maxLength={100} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} autofocus />
            </label>
            <label>
              <input type="checkbox" checked={shared} onChange={(e) => setShared((e.target as HTMLInputElement).checked)} /> Share with everyone
            </label>
            <p class="muted mono">{query() || "(everything, default order)"}</p>
            <footer class="dialog-foot">
              <button type="button" onClick={() => setSaving(false)}>
                Cancel
              </button>
              <button type="submit" class="primary">
                Save
              </button>
            </footer>
          </form>
        </Dialog>
      ) : null}
    </>
  );
}

function Shortcuts({ onClose }: { onClose: () => void }) {
  const keys: [string, string][] = [
    ["j / ↓, k / ↑", "move down, up"],
    ["Enter or o", "open the alert"],
    ["x", "tick the alert"],
    ["a", "acknowledge (or take it back)"],
    ["r", "resolve (asks first)"],
    ["/", "focus the filter"],
    ["Esc", "close the detail, clear the selection"],
    ["?", "this help"],
  ];
  return (
    <Dialog title="Keyboard and filter" onClose={onClose} wide>
      <div class="dialog-body help">
        <h3>Keys</h3>
        <dl class="keys">
          {keys.map(([k, what]) => (
            <>
              <dt>
                <kbd>{k}</kbd>
              </dt>
              <dd>{what}</dd>
            </>
          ))}
        </dl>
        <h3>Filter</h3>
        <p>Terms separated by spaces; all must match. Completions appear as you type: ↓ to pick, Tab or Enter to take.</p>
        <table class="table ops">
          <tbody>
            {(
              [
                ["name=value", "equal, exactly (case matters)"],
                ["name!=value", "not equal"],
                ["name=~regex", "matches the regular expression, anchored at both ends; (?i) at its start ignores case"],
                ["name!~regex", "does not match it"],
                ["severity>=major", "at least that severe (also >, <=, <)"],
                ['title="link down"', 'quoted: spaces; \\" and \\\\ escape'],
                ['down, "went down"', "free text: ignoring case, in title, message, addon, type, category, device and every field"],
              ] as const
            ).map(([op, what]) => (
              <tr key={op}>
                <td>
                  <code>{op}</code>
                </td>
                <td>{what}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p>
          Names: {NAMES.map((n) => <code key={n}>{n} </code>)} and any field by its name (or <code>fields.name</code>); what an alert lacks reads as <code>""</code>.
        </p>
        <p>
          Examples: <code>severity=critical device=~"10.20.*" addon!=prtg</code> · <code>status!=suppressed acknowledged=false</code> · <code>job=~"node|blackbox" "disk"</code>
        </p>
      </div>
    </Dialog>
  );
}
