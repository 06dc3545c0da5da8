import { it } from "vitest";
import type { Alert, Severity } from "./api/types";
import { compileFilter } from "./filter";
import { ViewCache, cachedSearch, computeView, entryOf, parseSort, updateView, type Change } from "./live/view";
const sevs: Severity[] = ["critical", "major", "minor", "warning", "info"];
function mk(i: number): Alert {
  return { id: i, addon_id: ["alertmanager","prtg","if-mib","grafana"][i%4], fingerprint: "fp"+i, alert_type: "Type"+(i%50), device_ip: `10.${i%200}.${(i>>8)%256}.${i%256}`, device_name: i%3?`host-${i%5000}`:null, severity: sevs[i%5], category: "network", title: `Something happened ${i}`, message: "a longer message text about the thing "+i, status: i%7? "active":"acknowledged", fields: {job: "node", instance: `h${i}:9100`, site: ["ams","fra"][i%2]}, occurrence_count: i%13, occurred_at: "2026-12-01T00:00:00Z", first_seen_at: new Date(1764547200000+i*1000).toISOString(), last_seen_at: new Date(1764547200000+i*3000).toISOString(), acknowledged_at:null, acknowledged_by:null, resolved_at:null, resolved_by:null } as Alert;
}
it("perf", () => {
  let t = performance.now();
  const raw = JSON.parse(JSON.stringify(Array.from({length: 100000}, (_, i) => mk(i+1))));
  t = performance.now();
  const entries = raw.map((a: Alert) => entryOf(a, 0, false));
  console.log("entries", (performance.now()-t).toFixed(1));
  const cache = new ViewCache();
  let version = 0;
  for (let rep = 0; rep < 2; rep++) for (const [q, s, g] of [["", "severity", "none"], ["severity>=major", "severity", "none"], ["severity>=major", "severity", "device"], ["host-12", "severity", "device"], ['device=~"10.1.*"', "severity", "addon"], ["site=ams acknowledged=false", "severity", "alert_type"], ["site=ams acknowledged=false", "-title", "alert_type"], ["", "device", "none"]] as const) {
    const t = performance.now();
    const v = cache.get(() => entries, version, () => [], compileFilter(q, cachedSearch), parseSort(s), g as any, new Set());
    console.log(q, s, g, v.matched.length, (performance.now()-t).toFixed(1), "ms");
  }
  const f = compileFilter("", cachedSearch);
  let v = computeView(entries, f, parseSort("severity"), "device", new Set());
  for (let r = 0; r < 3; r++) {
  const changes: Change[] = Array.from({length: 250}, (_, k) => { const old = entries[k*300+r]; const now = entryOf({...old.alert, occurrence_count: old.alert.occurrence_count+1, last_seen_at: new Date().toISOString()}, 0, false); entries[k*300+r] = now; return {old, now}; });
  const t = performance.now();
  v = updateView(v, changes, f, parseSort("severity"), "device", new Set());
  console.log("update 250 grouped", (performance.now()-t).toFixed(1), "ms");
  }
});
