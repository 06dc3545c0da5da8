// Open alerts by severity, for the top bar on every page: recounted when the model changes
// (at most a few times a second, after each applied batch).
import type { Severity } from "../api/types";
import { cell } from "../state";
import { alerts, version } from "./store";

export const counts = cell<Record<Severity, number>>({ critical: 0, major: 0, minor: 0, warning: 0, info: 0 });

version.subscribe(() => {
  const c: Record<Severity, number> = { critical: 0, major: 0, minor: 0, warning: 0, info: 0 };
  for (const e of alerts.values()) c[e.alert.severity]++;
  counts.set(c);
});
