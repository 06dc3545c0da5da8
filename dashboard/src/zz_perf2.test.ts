import { it } from "vitest";
import type { Alert, Severity } from "./api/types";
import { compileFilter } from "./filter";
import { cachedSearch, entryOf, FACETS } from "./live/view";
const sevs: Severity[] = ["critical", "major", "minor", "warning", "info"];
function mk(i: number): Alert {
  return { id: i, addon_id: ["alertmanager","prtg","if-mib","grafana"][i%4], fingerprint: "fp"+i, alert_type: "Type"+(i%50), device_ip: `10.${i%200}.${(i>>8)%256}.${i%256}`, device_name: i%3?`host-${i%5000}`:null, severity: sevs[i%5], category: "network", title: `Something happened ${i}`, message: "a longer message text about the thing "+i, status: i%7? "active":"acknowledged", fields: {job: "node", instance: `h${i}:9100`, site: ["ams","fra"][i%2]}, occurrence_count: i%13, occurred_at: "2026-12-01T00:00:00Z", first_seen_at: new Date(1764547200000+i*1000).toISOString(), last_seen_at: new Date(1764547200000+i*3000).toISOString(), acknowledged_at:null, acknowledged_by:null, resolved_at:null, resolved_by:null } as Alert;
}
it("perf", () => {
  const entries = JSON.parse(JSON.stringify(Array.from({length: 100000}, (_, i) => mk(i+1)))).map((a: Alert) => entryOf(a, 0, false));
  for (let rep = 0; rep < 3; rep++) {
    const f = compileFilter("severity>=warning", cachedSearch);
    let t = performance.now();
    const m = entries.filter((e: any) => f.matches(e.alert));
    console.log("filter", (performance.now()-t).toFixed(1));
    t = performance.now();
    const facets = new Map<string, Map<string, number>>(FACETS.map((f) => [f.name, new Map()]));
    for (const e of m) for (const fc of FACETS) { const c = facets.get(fc.name)!; const v = fc.value(e.alert); c.set(v, (c.get(v) ?? 0) + 1); }
    console.log("facets", (performance.now()-t).toFixed(1));
    t = performance.now();
    m.sort((a: any, b: any) => (a.rank - b.rank) || b.lastSeen - a.lastSeen || b.alert.id - a.alert.id);
    console.log("sort", (performance.now()-t).toFixed(1));
  }
});
