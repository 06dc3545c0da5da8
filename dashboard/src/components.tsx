// Small pieces every page uses: badges, times, dialogs, notices, the page frame.
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { AlertStatus, Severity } from "./api/types";
import { cell, useValue } from "./state";

const SEVERITY_MARK: Record<Severity, string> = { critical: "C", major: "M", minor: "m", warning: "W", info: "i" };

/** Severity as text and a mark, never by colour alone. */
export function SeverityBadge({ severity }: { severity: Severity }) {
  return (
    <span class={`sev sev-${severity}`} title={severity}>
      <span class="sev-mark" aria-hidden="true">
        {SEVERITY_MARK[severity]}
      </span>
      <span class="sev-text">{severity}</span>
    </span>
  );
}

export function StatusBadge({ status }: { status: AlertStatus }) {
  return <span class={`status status-${status}`}>{status}</span>;
}

/** A clock that ticks every `ms`, for relative times that must age on screen. */
const tick = cell(Date.now());
setInterval(() => tick.set(Date.now()), 5_000);

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "—";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

export function Ago({ at }: { at: string | null | undefined }) {
  const now = useValue(tick);
  if (!at) return <span>—</span>;
  return (
    <time dateTime={at} title={new Date(at).toLocaleString()}>
      {ago(at, now)}
    </time>
  );
}

export function When({ at }: { at: string | null | undefined }) {
  if (!at) return <span>—</span>;
  return (
    <time dateTime={at} title={at}>
      {new Date(at).toLocaleString()}
    </time>
  );
}

/** Closes a menu or popover on Escape and on a click outside `ref` (when `open`). */
export function useDismiss(ref: { current: HTMLElement | null }, open: boolean, close: () => void) {
  useEffect(() => {
    if (!open) return;
    const onDown = (e: Event) => {
      if (ref.current && !ref.current.contains(e.target as Node)) close();
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        close();
        (ref.current?.querySelector("button") as HTMLElement | null)?.focus();
      }
    };
    document.addEventListener("pointerdown", onDown);
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("pointerdown", onDown);
      document.removeEventListener("keydown", onKey);
    };
  }, [open]);
}

/** A modal dialog with focus kept inside; Escape closes it. */
export function Dialog({
  title,
  onClose,
  children,
  wide,
}: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  wide?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      class={wide ? "dialog wide" : "dialog"}
      aria-label={title}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <header class="dialog-head">
        <h2>{title}</h2>
        <button type="button" class="icon" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </header>
      {children}
    </dialog>
  );
}

/** "Are you sure?": OK runs `onOk`. */
export function Confirm({
  title,
  children,
  okLabel,
  danger,
  onOk,
  onCancel,
}: {
  title: string;
  children: ComponentChildren;
  okLabel: string;
  danger?: boolean;
  onOk: () => void;
  onCancel: () => void;
}) {
  return (
    <Dialog title={title} onClose={onCancel}>
      <div class="dialog-body">{children}</div>
      <footer class="dialog-foot">
        <button type="button" data-testid="confirm-cancel" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" class={danger ? "danger" : "primary"} data-testid="confirm-ok" autofocus onClick={onOk}>
          {okLabel}
        </button>
      </footer>
    </Dialog>
  );
}

export interface Notice {
  id: number;
  kind: "ok" | "error";
  text: string;
}

export const notices = cell<Notice[]>([]);
let noticeId = 0;

/** Shows a short message in the corner for a few seconds (errors stay longer). */
export function notify(kind: Notice["kind"], text: string) {
  const id = ++noticeId;
  notices.update((all) => [...all, { id, kind, text }].slice(-4));
  setTimeout(() => notices.update((all) => all.filter((n) => n.id !== id)), kind === "error" ? 10_000 : 4_000);
}

export function Notices() {
  const all = useValue(notices);
  return (
    <div class="notices" role="status" aria-live="polite">
      {all.map((n) => (
        <div key={n.id} class={`notice notice-${n.kind}`}>
          {n.text}
        </div>
      ))}
    </div>
  );
}

/** Runs an async action with a busy flag, and reports its failure as a notice. */
export function useAction(): [boolean, (f: () => Promise<void>) => Promise<void>] {
  const [busy, setBusy] = useState(false);
  const run = async (f: () => Promise<void>) => {
    setBusy(true);
    try {
      await f();
    } catch (e) {
      notify("error", e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  return [busy, run];
}

/** Loads `f()` when `deps` change; `reload` loads again. */
export function useLoad<T>(f: () => Promise<T>, deps: unknown[]): { data: T | null; error: string | null; reload: () => void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    f().then(
      (d) => {
        if (live) {
          setData(d);
          setError(null);
        }
      },
      (e) => live && setError(e instanceof Error ? e.message : String(e)),
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return { data, error, reload: () => setN((x) => x + 1) };
}

export function Page({ title, actions, children }: { title: string; actions?: ComponentChildren; children: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} · OpsConductor`;
  }, [title]);
  return (
    <main class="page" id="main">
      <div class="page-head">
        <h1>{title}</h1>
        {actions ? <div class="page-actions">{actions}</div> : null}
      </div>
      {children}
    </main>
  );
}

export function Loading({ error }: { error?: string | null }) {
  return error ? <p class="error" role="alert">{error}</p> : <p class="muted">Loading…</p>;
}
