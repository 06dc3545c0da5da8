// Quiet refresh: a refresh token is single-use and presenting one twice revokes the session,
// so concurrent refreshes (here without the Web Locks API, as over plain HTTP) must spend it
// once, and a refresh for a token another tab already replaced must spend nothing.
import { beforeAll, beforeEach, describe, expect, it, vi } from "vitest";

vi.mock("./api/client", () => ({ api: vi.fn() }));

const storage = new Map<string, string>();
let refreshes = 0;
let auth: typeof import("./auth");

beforeAll(async () => {
  vi.stubGlobal("localStorage", {
    getItem: (k: string) => storage.get(k) ?? null,
    setItem: (k: string, v: string) => void storage.set(k, v),
    removeItem: (k: string) => void storage.delete(k),
  });
  vi.stubGlobal("window", { addEventListener() {} });
  vi.stubGlobal("navigator", {});
  vi.stubGlobal(
    "fetch",
    vi.fn(async (path: string, init: { body: string }) => {
      expect(path).toBe("/api/v1/auth/refresh");
      const { refresh_token } = JSON.parse(init.body);
      refreshes++;
      // The server's rule: a refresh token works once.
      if (refresh_token !== `r${refreshes - 1}`) return new Response(JSON.stringify({ error: { code: "unauthorized", message: "reused" } }), { status: 401 });
      return new Response(JSON.stringify({ access_token: `a${refreshes}`, refresh_token: `r${refreshes}`, expires_in: 900 }), { status: 200 });
    }),
  );
  auth = await import("./auth");
});

beforeEach(() => {
  refreshes = 0;
  storage.clear();
  storage.set("oc.session", JSON.stringify({ username: "u", accessToken: "a0", accessExpires: Date.now() + 10_000, refreshToken: "r0" }));
});

describe("refresh", () => {
  it("spends the refresh token once when several callers refresh at the same time", async () => {
    const all = await Promise.all([auth.refresh(), auth.refresh(), auth.refresh()]);
    expect(refreshes).toBe(1);
    expect(all.map((s) => s.accessToken)).toEqual(["a1", "a1", "a1"]);
    expect(JSON.parse(storage.get("oc.session")!).refreshToken).toBe("r1");
  });

  it("after a refused token, refreshes only when nobody has replaced it yet", async () => {
    // Another tab refreshed already: its tokens are used.
    storage.set("oc.session", JSON.stringify({ username: "u", accessToken: "a9", accessExpires: Date.now() + 900_000, refreshToken: "r9" }));
    expect((await auth.refresh("a0")).accessToken).toBe("a9");
    expect(refreshes).toBe(0);
    // The stored token is the refused one: refreshed, however long it has left.
    storage.set("oc.session", JSON.stringify({ username: "u", accessToken: "a0", accessExpires: Date.now() + 900_000, refreshToken: "r0" }));
    expect((await auth.refresh("a0")).accessToken).toBe("a1");
    expect(refreshes).toBe(1);
  });

  it("signs out when the server refuses the refresh", async () => {
    storage.set("oc.session", JSON.stringify({ username: "u", accessToken: "a0", accessExpires: 0, refreshToken: "stolen" }));
    await expect(auth.refresh()).rejects.toBeInstanceOf(auth.SignedOut);
    expect(storage.has("oc.session")).toBe(false);
  });
});
