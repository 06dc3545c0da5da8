// The API's types, in one place: every request and answer the console uses.

export type Severity = "critical" | "major" | "minor" | "warning" | "info";
export type AlertStatus = "active" | "acknowledged" | "suppressed" | "resolved";

export const SEVERITIES: Severity[] = ["critical", "major", "minor", "warning", "info"];
export const OPEN_STATUSES: AlertStatus[] = ["active", "acknowledged", "suppressed"];

export interface Alert {
  id: number;
  addon_id: string;
  fingerprint: string;
  alert_type: string;
  device_ip: string | null;
  device_name: string | null;
  severity: Severity;
  category: string;
  title: string;
  message: string;
  status: AlertStatus;
  fields: Record<string, string>;
  occurrence_count: number;
  occurred_at: string;
  first_seen_at: string;
  last_seen_at: string;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  resolved_at: string | null;
  resolved_by: string | null;
}

export interface OpenAlerts {
  alerts: Alert[];
}

export type AlertEventKind =
  | "created"
  | "acknowledged"
  | "unacknowledged"
  | "resolved"
  | "suppressed"
  | "unsuppressed"
  | "note";

export interface AlertEvent {
  id: number | null;
  alert_id: number;
  at: string;
  kind: AlertEventKind;
  actor: string;
  note: string | null;
  details: Record<string, unknown>;
}

export interface HistoryPage {
  alert: Alert;
  items: AlertEvent[];
  next_after: number | null;
}

export type AlertAction = "acknowledge" | "unacknowledge" | "resolve" | "note";

export interface BulkResult {
  id: number;
  ok: boolean;
  alert?: Alert;
  error?: { code: string; message: string };
}

export interface BulkAnswer {
  results: BulkResult[];
  matched?: number;
  succeeded: number;
  failed: number;
}

export interface SilenceMatchers {
  addon?: string | null;
  device?: string | null;
  alert_type?: string | null;
  fields: Record<string, string>;
}

export type Day = "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun";
export const DAYS: Day[] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

export interface Recurrence {
  days: Day[];
  /** "HH:MM", UTC */
  start: string;
  end: string;
}

export interface SilenceSpec {
  matchers: SilenceMatchers;
  starts_at: string;
  ends_at: string;
  recurrence?: Recurrence | null;
  comment: string;
}

export interface Silence extends SilenceSpec {
  id: number;
  created_by: string;
  created_at: string;
  updated_at: string;
  state: "pending" | "active" | "expired";
  in_force: boolean;
}

export interface SilencePage {
  items: Silence[];
  next_before: number | null;
}

export interface SilencePreview {
  matching: number;
  alerts: Alert[];
}

export interface SavedView {
  id: number;
  owner: string;
  name: string;
  query: string;
  shared: boolean;
  created_at: string;
}

export interface ViewList {
  items: SavedView[];
}

export interface Principal {
  actor: string;
  role: Role;
}

export type Role = "admin" | "operator" | "viewer" | "service";

export interface Me {
  actor: string;
  role: Role;
  permissions: string[];
  [key: string]: unknown;
}

export interface TokenAnswer {
  access_token: string;
  token_type: string;
  expires_in: number;
  expires_at: string;
  refresh_token: string;
  refresh_expires_at: string;
  principal: Record<string, unknown>;
}

export interface ApiErrorBody {
  error: { code: string; message: string; [key: string]: unknown };
}

// ---- WebSocket ----

export interface AddonStatusBody {
  id: string;
  status: "loaded" | "disabled" | "failed" | "removed";
  version?: string;
}

export type ServerMessage =
  | { type: "hello"; stream: string; cursor: number; auth: "authenticated" | "required"; [k: string]: unknown }
  | { type: "authenticated"; principal: Principal; id?: unknown }
  | { type: "subscribed"; resumed?: boolean; cursor?: number; id?: unknown }
  | { type: "alert_created" | "alert_updated" | "alert_resolved"; cursor: number; seq: number; node: string; alert: Alert }
  | { type: "addon_status"; cursor: number; addon: AddonStatusBody }
  | { type: "system_status"; cursor: number; status: Record<string, unknown> }
  | { type: "lagged"; missed: number | null }
  | { type: "error"; code: string; message: string; id?: unknown }
  | { type: "pong" | "unsubscribed"; id?: unknown };
