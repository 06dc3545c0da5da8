// The console's one pass: counts, filter, facets, sort, groups, CSV.
import { describe, expect, it } from "vitest";
import type { Alert, Severity } from "../api/types";
import { compileFilter } from "../filter";
import { cachedSearch, computeView, entryOf, parseSort, toCsv } from "./view";

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
    last_seen_at: `2026-12-01T00:00:${String(id).padStart(2, "0")}Z`,
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
    const groups = view.rows.filter((r) => r.kind === "group");
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
