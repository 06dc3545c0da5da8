// The /ws client against a scripted server: auth message, subscription with suppressed alerts,
// snapshot when it cannot resume, resumption from the last cursor after a reconnection,
// a fresh token after 4401, and the watchdog for a connection gone silent.
import { beforeAll, describe, expect, it, vi } from "vitest";
import type { Alert } from "../api/types";

const api = vi.fn(async () => ({ alerts: [] as Alert[] }));
vi.mock("../api/client", () => ({ api }));
const refresh = vi.fn(async () => ({ accessToken: "t2" }));
vi.mock("../auth", () => {
  class SignedOut extends Error {}
  const listeners: ((s: unknown) => void)[] = [];
  return {
    SignedOut,
    accessToken: async () => "t1",
    refresh,
    current: { get: () => null, subscribe: (l: (s: unknown) => void) => listeners.push(l) },
  };
});

class FakeSocket {
  static OPEN = 1;
  static all: FakeSocket[] = [];
  readyState = 1;
  sent: Record<string, unknown>[] = [];
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number }) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
  /** A message from the server, and whatever the client does about it. */
  async say(message: Record<string, unknown>) {
    this.onmessage?.({ data: JSON.stringify(message) });
    await vi.advanceTimersByTimeAsync(0);
  }
  types() {
    return this.sent.map((m) => m.type);
  }
}

let socket: typeof import("./socket");
let store: typeof import("./store");
const last = () => FakeSocket.all[FakeSocket.all.length - 1];

beforeAll(async () => {
  vi.stubGlobal("document", { hidden: true, addEventListener() {} });
  vi.stubGlobal("window", {});
  vi.stubGlobal("location", { protocol: "http:", host: "console.test" });
  vi.stubGlobal("WebSocket", FakeSocket);
  vi.useFakeTimers();
  store = await import("./store");
  socket = await import("./socket");
});

describe("the socket", () => {
  it("authenticates, subscribes, reads a snapshot, resumes after a drop, refreshes after 4401", async () => {
    const signedOut = vi.fn();
    socket.start(signedOut);
    const first = last();
    expect(first.url).toBe("ws://console.test/ws");
    await first.say({ type: "hello", stream: "s1", cursor: 10, auth: "required" });
    expect(first.sent[0]).toEqual({ type: "auth", token: "t1" });
    await first.say({ type: "authenticated", principal: { actor: "user:a", role: "operator" } });
    const alertsSub = first.sent.find((m) => m.id === "alerts")!;
    expect(alertsSub).toMatchObject({ type: "subscribe", filter: { include_suppressed: true } });
    expect(alertsSub.events).toEqual(["alert_created", "alert_updated", "alert_resolved"]);
    expect(alertsSub.resume).toBeUndefined();
    expect(first.sent.find((m) => m.id === "status")).toBeTruthy();

    // Not resumed: the snapshot, then live.
    await first.say({ type: "subscribed", id: "alerts", resumed: false });
    expect(api).toHaveBeenCalledTimes(1);
    expect(store.link.get()).toBe("live");
    await first.say({ type: "alert_created", cursor: 11, alert: { id: 1, status: "active" } });

    // A drop: disconnected, retried after a second, resumed from cursor 11 without a snapshot.
    first.close(1006);
    expect(store.link.get()).toBe("disconnected");
    expect(store.retryAt.get()).not.toBeNull();
    await vi.advanceTimersByTimeAsync(1000);
    const second = last();
    expect(second).not.toBe(first);
    await second.say({ type: "hello", stream: "s1", cursor: 20, auth: "required" });
    await second.say({ type: "authenticated" });
    expect(second.sent.find((m) => m.id === "alerts")!.resume).toEqual({ stream: "s1", after: 11 });
    await second.say({ type: "subscribed", id: "alerts", resumed: true });
    expect(api).toHaveBeenCalledTimes(1);
    expect(store.link.get()).toBe("live");

    // Refused credentials: a refresh (for the token it sent), then a new connection at once.
    second.close(4401);
    await vi.advanceTimersByTimeAsync(0);
    expect(refresh).toHaveBeenCalledWith("t1");
    await vi.advanceTimersByTimeAsync(0);
    const third = last();
    expect(third).not.toBe(second);

    // Another stream (the node restarted): no resumption of the old one.
    await third.say({ type: "hello", stream: "s2", cursor: 3, auth: "required" });
    await third.say({ type: "authenticated" });
    expect(third.sent.find((m) => m.id === "alerts")!.resume).toBeUndefined();
    await third.say({ type: "subscribed", id: "alerts", resumed: false });
    expect(api).toHaveBeenCalledTimes(2);

    // Silence for too long: taken for dead, and replaced.
    await vi.advanceTimersByTimeAsync(62_000);
    expect(third.types()).toContain("ping");
    expect(last()).not.toBe(third);
    expect(signedOut).not.toHaveBeenCalled();
    socket.stop();
  });
});
