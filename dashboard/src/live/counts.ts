// Open alerts by severity, for the top bar on every page. Moved by each applied batch's
// changes (a recount of 100,000 alerts four times a second was the largest cost of a burst of
// events); recounted only when a snapshot replaced everything.
import type { Severity } from "../api/types";
import { cell } from "../state";
import { alerts, changesSince, version } from "./store";

export const counts = cell<Record<Severity, number>>({ critical: 0, major: 0, minor: 0, warning: 0, info: 0 });

let counted = version.get();

version.subscribe((v) => {
  const changes = changesSince(counted);
  counted = v;
  const c = { ...counts.get() };
  if (changes === null) {
    for (const k of Object.keys(c) as Severity[]) c[k] = 0;
    for (const e of alerts.values()) c[e.alert.severity]++;
  } else {
    for (const { old, now } of changes) {
      if (old) c[old.alert.severity]--;
      if (now) c[now.alert.severity]++;
    }
  }
  counts.set(c);
});
