// Who is signed in, and their tokens. The access token lives 15 minutes; it is refreshed
// quietly before it expires. Refresh tokens are single-use, and the runtime revokes the whole
// session when one is presented twice (a stolen token's tell), so tabs must never refresh
// with the same one: the refresh runs under a Web Lock shared by every tab of this origin, and
// re-reads the stored tokens inside it — when another tab has just refreshed, its tokens are
// used instead. Tokens are kept in localStorage so that a reload or a second tab stays signed
// in; the strict Content-Security-Policy the runtime sends is what keeps scripts of others
// from reading them.
// client.ts imports this module too; the cycle is safe because neither uses the other while
// loading, only when called.
import { api } from "./api/client";
import type { AuthMethods, Me, TokenAnswer } from "./api/types";
import { cell } from "./state";

const KEY = "oc.session";
/** Refresh when less than this is left of the access token (a background tab's timers may
 * run only once a minute, so more than that). */
const MARGIN_MS = 120_000;

/** How long before its expiry a session's access token is refreshed: MARGIN_MS, or a third of
 * the token's life when that is shorter (`access_token_minutes` may be 1 or 2, and a fixed two
 * minutes would then refresh at every call). */
function margin(s: Session): number {
  return Math.min(MARGIN_MS, (s.accessLifetime ?? Infinity) / 3);
}

export interface Session {
  username: string;
  accessToken: string;
  /** Milliseconds since the epoch, by this browser's clock. */
  accessExpires: number;
  /** The access token's whole lifetime in milliseconds (absent in sessions stored by older
   * consoles). */
  accessLifetime?: number;
  refreshToken: string;
}

export class SignedOut extends Error {}

function load(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

function store(session: Session | null) {
  if (session) localStorage.setItem(KEY, JSON.stringify(session));
  else localStorage.removeItem(KEY);
  current.set(session);
}

/** The session, or null when signed out; follows other tabs too. */
export const current = cell<Session | null>(load());
/** Who the session is and what the role may do, once read. */
export const me = cell<Me | null>(null);

window.addEventListener("storage", (e) => {
  if (e.key === KEY) current.set(load());
});

function fromAnswer(username: string, a: TokenAnswer): Session {
  return {
    username,
    accessToken: a.access_token,
    // By the answer's lifetime, not its timestamp: the browser's clock may differ.
    accessExpires: Date.now() + a.expires_in * 1000,
    accessLifetime: a.expires_in * 1000,
    refreshToken: a.refresh_token,
  };
}

async function post(path: string, body: unknown): Promise<Response> {
  return fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function messageOf(response: Response): Promise<string> {
  try {
    const body = await response.json();
    return body?.error?.message ?? response.statusText;
  } catch {
    return response.statusText || `HTTP ${response.status}`;
  }
}

export async function signIn(username: string, password: string): Promise<void> {
  const response = await post("/api/v1/auth/login", { username, password });
  if (!response.ok) throw new Error(await messageOf(response));
  store(fromAnswer(username, await response.json()));
  await loadMe();
}

/**
 * Finishes a single sign-on: the server's callback put the new session's refresh token in this
 * page's address (its fragment, which browsers never send anywhere); it is traded at once for a
 * fresh pair, so the one left in the browser's history is already spent.
 */
export async function finishSingleSignOn(refreshToken: string): Promise<void> {
  const response = await post("/api/v1/auth/refresh", { refresh_token: refreshToken });
  if (!response.ok) throw new Error(await messageOf(response));
  const answer: TokenAnswer = await response.json();
  store(fromAnswer(answer.principal.actor.replace(/^user:/, ""), answer));
  await loadMe();
}

/** How one may sign in here (`GET /api/v1/auth/methods`); password alone when unknown. */
export async function signInMethods(): Promise<AuthMethods> {
  try {
    const response = await fetch("/api/v1/auth/methods");
    if (response.ok) return await response.json();
  } catch {
    // The form still works: fall through.
  }
  return { password: true, oidc: null };
}

export async function signOut(): Promise<void> {
  const session = load();
  store(null);
  me.set(null);
  if (session) {
    // Ends the session on the server too; signed out here whatever it answers.
    await fetch("/api/v1/auth/logout", {
      method: "POST",
      headers: { authorization: `Bearer ${session.accessToken}` },
    }).catch(() => undefined);
  }
}

const LOCK = "oc.refresh";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `f` while no other tab of this origin runs it. The Web Locks API where there is one;
 * it exists only in secure contexts, and a console reached over plain HTTP at an internal
 * address is not one, so there a lease in localStorage stands in: claimed, then read back
 * after a moment to see that no other tab claimed it meanwhile, and given up after
 * LEASE_MS in case its tab died holding it.
 */
async function withLock<T>(f: () => Promise<T>): Promise<T> {
  if (navigator.locks) return navigator.locks.request(LOCK, f);
  const me = `${Date.now()}-${Math.random()}`;
  const LEASE_MS = 10_000;
  const holder = () => {
    try {
      return JSON.parse(localStorage.getItem(LOCK) ?? "null") as { id: string; until: number } | null;
    } catch {
      return null;
    }
  };
  for (;;) {
    const held = holder();
    if (held === null || held.until < Date.now()) {
      localStorage.setItem(LOCK, JSON.stringify({ id: me, until: Date.now() + LEASE_MS }));
      await sleep(40);
      if (holder()?.id === me) break;
    }
    await sleep(60 + Math.random() * 120);
  }
  try {
    return await f();
  } finally {
    if (holder()?.id === me) localStorage.removeItem(LOCK);
  }
}

/**
 * Trades the refresh token for new tokens, once across all tabs. `failed` is an access token
 * the server refused: a refresh is forced unless another tab has already replaced it (then its
 * tokens are used — refreshing again would spend a refresh token for nothing).
 */
export async function refresh(failed?: string): Promise<Session> {
  return withLock(async () => {
    // Read inside the lock: another tab may have refreshed while this one waited for it.
    const session = load();
    if (!session) throw new SignedOut("signed out");
    const replaced = failed !== undefined && session.accessToken !== failed;
    if (replaced || (failed === undefined && session.accessExpires - Date.now() > margin(session))) {
      current.set(session);
      return session;
    }
    const response = await post("/api/v1/auth/refresh", { refresh_token: session.refreshToken });
    if (response.status === 401 || response.status === 400) {
      store(null);
      throw new SignedOut(await messageOf(response));
    }
    if (!response.ok) throw new Error(await messageOf(response));
    const next = fromAnswer(session.username, await response.json());
    store(next);
    return next;
  });
}

/** A valid access token, refreshed first when it is close to expiring. */
export async function accessToken(): Promise<string> {
  const session = current.get() ?? load();
  if (!session) throw new SignedOut("signed out");
  if (session.accessExpires - Date.now() > margin(session)) return session.accessToken;
  return (await refresh()).accessToken;
}

export async function loadMe(): Promise<Me> {
  const answer = await api<Me>("GET", "/api/v1/auth/me");
  me.set(answer);
  return answer;
}

/** Whether the signed-in role has `permission` (the API refuses the rest anyway). */
export function can(permission: string): boolean {
  return me.get()?.permissions.includes(permission) ?? false;
}

// Refresh quietly a little before the token expires, so that the socket can be handed the
// new one in time and no request waits for a refresh.
setInterval(() => {
  const session = current.get();
  if (session && session.accessExpires - Date.now() < margin(session)) {
    refresh().catch(() => undefined);
  }
}, 15_000);
