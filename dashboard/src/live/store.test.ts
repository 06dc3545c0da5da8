// The open-alert model: events applied by state in batches, one waiting event per alert, pause,
// and a snapshot that replaces the model without bringing back what waited from before it.
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { Alert } from "../api/types";

const snapshot: { alerts: Alert[] } = { alerts: [] };
vi.mock("../api/client", () => ({ api: vi.fn(async () => snapshot) }));

type Store = typeof import("./store");
let store: Store;

beforeAll(async () => {
  // What the module touches of a browser: a hidden page applies batches on a timer.
  vi.stubGlobal("document", { hidden: true, addEventListener() {} });
  vi.stubGlobal("window", {});
  vi.useFakeTimers();
  store = await import("./store");
});

afterEach(() => {
  store.setPaused(false);
  store.clear();
});

function alert(id: number, extra: Partial<Alert> = {}): Alert {
  return {
    id,
    addon_id: "a",
    fingerprint: `f${id}`,
    alert_type: "T",
    device_ip: null,
    device_name: "d",
    severity: "major",
    category: "c",
    title: `alert ${id}`,
    message: "",
    status: "active",
    fields: {},
    occurrence_count: 1,
    occurred_at: "2026-12-01T00:00:00Z",
    first_seen_at: "2026-12-01T00:00:00Z",
    last_seen_at: "2026-12-01T00:00:00Z",
    acknowledged_at: null,
    acknowledged_by: null,
    resolved_at: null,
    resolved_by: null,
    ...extra,
  };
}

const ids = () => [...store.alerts.keys()].sort((a, b) => a - b);

describe("the model", () => {
  it("applies a batch of events by state, the latest per alert, once per interval", () => {
    const arrived: number[] = [];
    const off = store.arrivals.subscribe((batch) => arrived.push(...batch.map((a) => a.id)));
    const v = store.version.get();
    store.receive(alert(1), true);
    store.receive(alert(2), true);
    store.receive(alert(1, { occurrence_count: 2, last_seen_at: "2026-12-01T00:01:00Z" }), false);
    store.receive(alert(2, { status: "resolved" }), false);
    expect(store.alerts.size).toBe(0);
    vi.advanceTimersByTime(300);
    expect(store.version.get()).toBe(v + 1);
    expect(ids()).toEqual([1]);
    expect(store.alerts.get(1)!.alert.occurrence_count).toBe(2);
    // Alert 1 arrived (created, then updated in the same batch); 2 opened and closed unseen.
    expect(arrived).toEqual([1]);
    expect(store.perf.eventsApplied).toBeGreaterThanOrEqual(4);
    off();
  });

  it("holds events while paused, says since when, and applies them on resume", () => {
    store.setPaused(true);
    store.receive(alert(5), true);
    vi.advanceTimersByTime(1000);
    expect(store.alerts.has(5)).toBe(false);
    expect(store.backlog.get().count).toBe(1);
    expect(store.backlog.get().since).not.toBeNull();
    store.setPaused(false);
    vi.advanceTimersByTime(300);
    expect(store.alerts.has(5)).toBe(true);
    expect(store.backlog.get()).toEqual({ count: 0, since: null });
  });

  it("never lets an older rendering of an alert replace a newer one", () => {
    store.put(alert(7, { occurrence_count: 3, last_seen_at: "2026-12-01T00:03:00Z" }));
    store.receive(alert(7, { occurrence_count: 2, last_seen_at: "2026-12-01T00:02:00Z" }), false);
    vi.advanceTimersByTime(300);
    expect(store.alerts.get(7)!.alert.occurrence_count).toBe(3);
  });

  it("replaces the model with a snapshot; what waited from before it is dropped, what came during it applied", async () => {
    store.put(alert(1));
    store.setPaused(true);
    // Waiting from before: alert 9 was open then, and is resolved by the time of the snapshot.
    store.receive(alert(9), false);
    snapshot.alerts = [alert(1), alert(2)];
    const loading = store.loadSnapshot();
    // Arrives while the snapshot loads: newer than it.
    store.receive(alert(3), true);
    await loading;
    store.setPaused(false);
    vi.advanceTimersByTime(300);
    expect(ids()).toEqual([1, 2, 3]);
    expect(store.perf.snapshotCount).toBe(2);
  });
});
