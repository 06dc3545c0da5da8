// The console's one WebSocket to `/ws` (protocol: runtime/src/api/ws.rs). It authenticates with a
// first message (browsers cannot set headers on a WebSocket, and a token in the URL would end
// up in logs), hands the socket each refreshed token before the old one expires, subscribes to
// alert events — suppressed ones too, which the console shows muted — and to addon and node
// status, and on a broken connection reconnects with backoff and resumes from the last event
// it saw; only when the runtime cannot replay what was missed does it re-read every alert.
import type { AddonStatusBody, ServerMessage } from "../api/types";
import { SignedOut, accessToken, current, refresh } from "../auth";
import { cell } from "../state";
import { link, loadSnapshot, receive, retryAt } from "./store";

const EVENTS = ["alert_created", "alert_updated", "alert_resolved", "addon_status", "system_status"];
const ALERT_EVENTS = ["alert_created", "alert_updated", "alert_resolved"];
const MAX_BACKOFF_MS = 30_000;
/** A ping of our own this often; a connection silent for WATCHDOG_MS is taken for dead (a
 * network that vanished closes nothing: the browser would wait minutes to notice). The
 * server's heartbeats are WebSocket pings, which pages cannot see. */
const PING_MS = 20_000;
const WATCHDOG_MS = 50_000;

/** The latest `addon_status` per addon, and each node's latest `system_status`. */
export const addonStatus = cell<Record<string, AddonStatusBody>>({});
export const systemStatus = cell<Record<string, Record<string, unknown>>>({});
/** Called when the session is gone (the console then shows the sign-in page). */
let onSignedOut: () => void = () => undefined;

let ws: WebSocket | null = null;
let stream: string | null = null;
let cursor = 0;
/** Whether the model holds a snapshot of `stream` and its events up to `cursor`: only then
 * can a reconnection resume rather than re-read. */
let synced = false;
let backoff = 1000;
let retry: ReturnType<typeof setTimeout> | null = null;
let stopped = true;
let sentToken: string | null = null;
let lastHeard = 0;
let watchdog: ReturnType<typeof setInterval> | null = null;

function send(message: unknown) {
  if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

function subscribe() {
  // Two subscriptions: alert events carry `include_suppressed`, which the others refuse.
  const resume = synced && stream !== null ? { stream, after: cursor } : undefined;
  send({ type: "subscribe", id: "alerts", events: ALERT_EVENTS, filter: { include_suppressed: true }, resume });
  send({ type: "subscribe", id: "status", events: EVENTS.filter((e) => !ALERT_EVENTS.includes(e)) });
}

async function onMessage(message: ServerMessage) {
  switch (message.type) {
    case "hello":
      // A new stream (another node, or this one restarted) cannot resume an old cursor.
      if (stream !== message.stream) {
        stream = message.stream;
        synced = false;
      }
      // Before a snapshot, where it will start: what is published after this is replayed or
      // delivered; what came before is in the snapshot.
      if (!synced) cursor = message.cursor;
      try {
        sentToken = await accessToken();
        send({ type: "auth", token: sentToken });
      } catch (e) {
        if (e instanceof SignedOut) {
          stop();
          onSignedOut();
        }
      }
      return;
    case "authenticated":
      if (link.get() !== "live" && link.get() !== "loading") subscribe();
      return;
    case "subscribed":
      if (message.id !== "alerts") return;
      backoff = 1000;
      if (message.resumed) {
        link.set("live");
      } else {
        // Events from here on are buffered while every open alert is read.
        try {
          synced = false;
          await loadSnapshot();
          synced = true;
          link.set("live");
        } catch {
          ws?.close();
        }
      }
      return;
    case "alert_created":
    case "alert_updated":
    case "alert_resolved":
      cursor = message.cursor;
      receive(message.alert, message.type === "alert_created");
      return;
    case "addon_status":
      cursor = message.cursor;
      addonStatus.update((all) => ({ ...all, [message.addon.id]: message.addon }));
      return;
    case "system_status":
      cursor = message.cursor;
      systemStatus.update((all) => ({ ...all, [String((message as { node?: string }).node ?? "")]: message.status }));
      return;
    case "lagged":
      // The server closes next; the reconnection resumes or re-reads.
      return;
    case "error":
      console.warn("websocket:", message.code, message.message);
      return;
    default:
      return;
  }
}

/** The connection is gone (closed, or silent too long): show it, and try again later. */
function lost(socket: WebSocket, code: number) {
  if (ws !== socket) return;
  ws = null;
  if (watchdog !== null) clearInterval(watchdog);
  watchdog = null;
  if (stopped) return;
  link.set("disconnected");
  const wait = backoff;
  backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  if (code === 4401) {
    // Refused credentials: a fresh token (unless another tab has one already), or the
    // sign-in page. The first retry is at once; repeated refusals back off like the rest.
    refresh(sentToken ?? undefined).then(
      () => later(wait === 1000 ? 0 : wait),
      (error) => {
        if (error instanceof SignedOut) {
          stop();
          onSignedOut();
        } else later(wait);
      },
    );
    return;
  }
  later(wait);
}

function connect() {
  if (stopped) return;
  retryAt.set(null);
  if (link.get() !== "live") link.set("connecting");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/ws`);
  ws = socket;
  lastHeard = Date.now();
  if (watchdog !== null) clearInterval(watchdog);
  watchdog = setInterval(() => {
    if (Date.now() - lastHeard > WATCHDOG_MS) {
      lost(socket, 1006);
      socket.close();
    } else send({ type: "ping" });
  }, PING_MS);
  socket.onmessage = (e) => {
    lastHeard = Date.now();
    try {
      void onMessage(JSON.parse(e.data as string) as ServerMessage);
    } catch (error) {
      console.warn("websocket: not understood", error);
    }
  };
  socket.onclose = (e) => lost(socket, e.code);
}

function later(ms: number) {
  if (retry !== null) clearTimeout(retry);
  retryAt.set(Date.now() + ms);
  retry = setTimeout(() => {
    retry = null;
    connect();
  }, ms);
}

export function start(signedOut: () => void) {
  onSignedOut = signedOut;
  if (!stopped) return;
  stopped = false;
  connect();
}

export function stop() {
  stopped = true;
  if (watchdog !== null) clearInterval(watchdog);
  watchdog = null;
  if (retry !== null) clearTimeout(retry);
  retry = null;
  ws?.close(1000, "signed out");
  ws = null;
  stream = null;
  cursor = 0;
  synced = false;
  link.set("connecting");
}

/** Reconnects at once (the indicator's "retry now"). */
export function reconnectNow() {
  if (ws === null && !stopped) later(0);
}

// A refreshed token goes to the open socket before the old one expires: the connection stays.
current.subscribe((session) => {
  if (session && ws?.readyState === WebSocket.OPEN && sentToken !== session.accessToken) {
    sentToken = session.accessToken;
    send({ type: "auth", token: session.accessToken });
  }
});
