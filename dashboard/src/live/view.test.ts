// The console's one pass: counts, filter, facets, sort, groups, CSV.
import { describe, expect, it } from "vitest";
import type { Alert, Severity } from "../api/types";
import { compileFilter } from "../filter";
import { type Change, type Entry, ViewCache, cachedSearch, computeView, entryOf, facetMap, facetValues, isGroup, naturalKey, parseSort, toCsv, updateView } from "./view";

let next = 1;
function alert(severity: Severity, device: string, type: string, extra: Partial<Alert> = {}): Alert {
  const id = next++;
  return {
    id,
    addon_id: "alertmanager",
    fingerprint: `fp${id}`,
    alert_type: type,
    device_ip: null,
    device_name: device,
    severity,
    category: "application",
    title: `${type} on ${device}`,
    message: "",
    status: "active",
    fields: { job: "node" },
    occurrence_count: 1,
    occurred_at: "2026-12-01T00:00:00Z",
    first_seen_at: "2026-12-01T00:00:00Z",
    last_seen_at: new Date(Date.UTC(2026, 11, 1, 0, 0, id)).toISOString(),
    acknowledged_at: null,
    acknowledged_by: null,
    resolved_at: null,
    resolved_by: null,
    ...extra,
  };
}

const entries = [
  alert("warning", "core-1", "CpuHigh"),
  alert("critical", "core-1", "NodeDown"),
  alert("critical", "edge-7", "NodeDown", { status: "acknowledged" }),
  alert("info", "edge-7", "CertExpiring", { fields: { job: "blackbox" } }),
].map((a) => entryOf(a, 0, false));

describe("computeView", () => {
  it("counts every alert in the header and facets only what the filter lets through", () => {
    const view = computeView(entries, compileFilter("device=edge-7", cachedSearch), parseSort(null), "none", new Set());
    expect(view.total).toBe(4);
    expect(view.bySeverity).toEqual({ critical: 2, major: 0, minor: 0, warning: 1, info: 0 + 1 });
    expect(view.matched.map((e) => e.alert.alert_type)).toEqual(["NodeDown", "CertExpiring"]);
    expect(Object.fromEntries(facetMap(view, "acknowledged"))).toEqual({ true: 1, false: 1 });
    expect(Object.fromEntries(facetMap(view, "severity"))).toEqual({ critical: 1, info: 1 });
  });

  it("sorts most severe first, then most recently seen; descending reverses", () => {
    const asc = computeView(entries, compileFilter(""), parseSort("severity"), "none", new Set());
    expect(asc.matched.map((e) => e.alert.severity)).toEqual(["critical", "critical", "warning", "info"]);
    // Ties on severity: the most recently seen first.
    expect(asc.matched[0].alert.device_name).toBe("edge-7");
    const desc = computeView(entries, compileFilter(""), parseSort("-severity"), "none", new Set());
    expect(desc.matched[0].alert.severity).toBe("info");
    expect(parseSort("-nonsense")).toEqual({ key: "severity", descending: false });
  });

  it("groups with headers that count and name the worst severity, and folds collapsed groups", () => {
    const view = computeView(entries, compileFilter(""), parseSort(null), "device", new Set(["core-1"]));
    const groups = view.rows.filter(isGroup);
    expect(groups).toEqual([
      { kind: "group", key: "edge-7", count: 2, worst: "critical", collapsed: false },
      { kind: "group", key: "core-1", count: 2, worst: "critical", collapsed: true },
    ]);
    expect(view.rows.length).toBe(2 + 2);
  });

  it("free text finds field values", () => {
    const view = computeView(entries, compileFilter("BLACKBOX", cachedSearch), parseSort(null), "none", new Set());
    expect(view.matched.map((e) => e.alert.alert_type)).toEqual(["CertExpiring"]);
  });
});

describe("updateView", () => {
  it("gives what a full recomputation gives, whatever the changes", () => {
    // A seeded generator: the same cases every run.
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const sevs: Severity[] = ["critical", "major", "minor", "warning", "info"];
    const model = new Map<number, Entry>();
    for (let i = 0; i < 300; i++) {
      const a = alert(sevs[rand(5)], `dev-${rand(20)}`, ["A", "B", "C"][rand(3)]);
      model.set(a.id, entryOf(a, 0, false));
    }
    for (const [text, sortText, group] of [
      ["", null, "none"],
      ["severity>=minor", "-last_seen", "device"],
      ["type=~\"A|B\"", "count", "alert_type"],
    ] as const) {
      const filter = compileFilter(text, cachedSearch);
      const sort = parseSort(sortText);
      const collapsed = new Set(["dev-3"]);
      let view = computeView(model.values(), filter, sort, group, collapsed);
      for (let round = 0; round < 20; round++) {
        const changes: Change[] = [];
        for (let c = 0; c < 15; c++) {
          const ids = [...model.keys()];
          const pick = rand(3);
          if (pick === 0) {
            const a = alert(sevs[rand(5)], `dev-${rand(20)}`, ["A", "B", "C"][rand(3)]);
            const now = entryOf(a, 1, true);
            model.set(a.id, now);
            changes.push({ old: undefined, now });
          } else if (pick === 1) {
            const old = model.get(ids[rand(ids.length)])!;
            const a = { ...old.alert, severity: sevs[rand(5)], occurrence_count: old.alert.occurrence_count + 1, last_seen_at: `2026-12-02T00:${String(rand(60)).padStart(2, "0")}:00Z` };
            const now = entryOf(a, 1, false);
            model.set(a.id, now);
            changes.push({ old, now });
          } else {
            const old = model.get(ids[rand(ids.length)])!;
            model.delete(old.alert.id);
            changes.push({ old, now: undefined });
          }
        }
        view = updateView(view, changes, filter, sort, group, collapsed);
        const full = computeView(model.values(), filter, sort, group, collapsed);
        expect(view.total).toBe(full.total);
        expect(view.bySeverity).toEqual(full.bySeverity);
        expect(view.matched.map((e) => e.alert.id)).toEqual(full.matched.map((e) => e.alert.id));
        expect(view.rows.length).toBe(full.rows.length);
        for (const name of ["severity", "status", "acknowledged", "addon", "category", "type", "device"]) expect(Object.fromEntries(facetMap(view, name))).toEqual(Object.fromEntries(facetMap(full, name)));
      }
    }
  });
});

describe("ViewCache", () => {
  it("gives what a full recomputation gives through changes of the model, filter, sort and groups", () => {
    let seed = 11;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const sevs: Severity[] = ["critical", "major", "minor", "warning", "info"];
    const model = new Map<number, Entry>();
    for (let i = 0; i < 200; i++) {
      const a = alert(sevs[rand(5)], `dev-${rand(30)}`, ["A", "B", "C"][rand(3)], { occurrence_count: rand(9) + 1 });
      model.set(a.id, entryOf(a, 0, false));
    }
    const log: Change[][] = [];
    let version = 0;
    const since = (v: number) => (v < version - log.length ? null : log.slice(log.length - (version - v)).flat());
    const filters = ["", "severity>=minor", 'type=~"A|B"', "dev-1", "severity=critical device!=dev-2"].map((t) => compileFilter(t, cachedSearch));
    const sorts = ["severity", "-last_seen", "count", "device", "-title", "first_seen"];
    const groups = ["none", "device", "addon", "alert_type"] as const;
    const cache = new ViewCache();
    let collapsed = new Set<string>();
    for (let round = 0; round < 60; round++) {
      const changes: Change[] = [];
      for (let c = 0; c < rand(6); c++) {
        const ids = [...model.keys()];
        const old = model.get(ids[rand(ids.length)])!;
        if (rand(4) === 0) {
          model.delete(old.alert.id);
          changes.push({ old, now: undefined });
        } else {
          const now = entryOf({ ...old.alert, severity: sevs[rand(5)], last_seen_at: `2026-12-03T00:${String(rand(60)).padStart(2, "0")}:00Z` }, 1, false);
          model.set(now.alert.id, now);
          changes.push({ old, now });
        }
      }
      if (changes.length > 0) {
        log.push(changes);
        version++;
      }
      if (rand(3) === 0) collapsed = new Set([`dev-${rand(30)}`]);
      const filter = filters[rand(filters.length)];
      const sort = parseSort(sorts[rand(sorts.length)]);
      const group = groups[rand(groups.length)];
      const view = cache.get(() => model.values(), version, since, filter, sort, group, collapsed);
      const full = computeView(model.values(), filter, sort, group, collapsed);
      expect(view.matched.map((e) => e.alert.id)).toEqual(full.matched.map((e) => e.alert.id));
      expect(view.rows.map((r) => (isGroup(r) ? `${r.key}:${r.count}:${r.worst}` : r.alert.id))).toEqual(full.rows.map((r) => (isGroup(r) ? `${r.key}:${r.count}:${r.worst}` : r.alert.id)));
      expect(view.bySeverity).toEqual(full.bySeverity);
      for (const name of ["severity", "type", "device"]) expect(Object.fromEntries(facetMap(view, name))).toEqual(Object.fromEntries(facetMap(full, name)));
    }
  });
});

describe("sorting and facets", () => {
  it("sorts text naturally: numbers by value, case ignored", () => {
    const names = ["10.0.0.12", "10.0.0.2", "Edge-10", "edge-9", "core-1"];
    expect([...names].sort((a, b) => (naturalKey(a) < naturalKey(b) ? -1 : 1))).toEqual(["10.0.0.2", "10.0.0.12", "core-1", "edge-9", "Edge-10"]);
  });

  it("lists known facet values in their order and the others commonest first, up to a limit", () => {
    const many = ["x", "y", "y", "z", "z", "z"].map((d) => entryOf(alert("minor", d, "T"), 0, false));
    const view = computeView([...many, ...entries], compileFilter(""), parseSort(null), "none", new Set());
    const sev = facetValues(view, 0, 10).values.map(([v]) => v);
    expect(sev).toEqual(["critical", "minor", "warning", "info"]);
    const devices = facetValues(view, 6, 2);
    expect(devices.values).toEqual([
      ["z", 3],
      ["core-1", 2],
    ]);
    expect(devices.more).toBe(3);
  });
});

describe("toCsv", () => {
  it("writes one line per alert with its fields, quoted and defused where needed", () => {
    const a = entryOf(alert("major", "core,1", "X", { title: '=HYPERLINK("x")', fields: { job: "a\"b" } }), 0, false);
    const csv = toCsv([a]);
    const [header, line] = csv.trim().split("\r\n");
    expect(header.endsWith(",fields.job")).toBe(true);
    expect(line).toContain('"core,1"');
    expect(line).toContain(`"'=HYPERLINK(""x"")"`);
    expect(line.endsWith('"a""b"')).toBe(true);
  });
});
