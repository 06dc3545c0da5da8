// The console's one pass: counts, filter, facets, sort, groups, CSV.
import { describe, expect, it } from "vitest";
import type { Alert, Severity } from "../api/types";
import { compileFilter } from "../filter";
import { type Change, type Entry, cachedSearch, computeView, entryOf, isGroup, parseSort, toCsv, updateView } from "./view";

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
    expect(Object.fromEntries(view.facets.get("acknowledged")!)).toEqual({ true: 1, false: 1 });
    expect(Object.fromEntries(view.facets.get("severity")!)).toEqual({ critical: 1, info: 1 });
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
        for (const [name, counts] of full.facets) expect(Object.fromEntries(view.facets.get(name)!)).toEqual(Object.fromEntries(counts));
      }
    }
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
