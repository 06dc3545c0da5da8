// The API's types, in one place: every request and answer the console uses.

// The API's types, in one place. They are the runtime's own: generated from its OpenAPI
// document (docs/openapi.json, which a runtime test keeps equal to what the code serves) into
// schema.d.ts by `npm run types` (part of `npm run build`), so that a change of the API that
// this console does not follow fails the type check rather than a user.
import type { components } from "./schema";

type Schemas = components["schemas"];

export type Severity = Schemas["Severity"];
export type AlertStatus = Schemas["AlertStatus"];
export type Alert = Schemas["StoredAlert"];
export type OpenAlerts = Schemas["OpenAlerts"];
export type AlertEventKind = Schemas["AlertEventKind"];
export type AlertEvent = Schemas["AlertEvent"];
export type HistoryPage = Schemas["HistoryPage"];
export type AlertAction = Schemas["AlertOp"];
export type BulkResult = Schemas["BulkResult"];
export type BulkAnswer = Schemas["BulkAnswer"];
export type SilenceMatchers = Schemas["SilenceMatchers"];
export type Day = Schemas["Day"];
export type Recurrence = Schemas["Recurrence"];
export type SilenceSpec = Schemas["SilenceSpec"];
export type Silence = Schemas["SilenceView"];
export type SilencePage = Schemas["SilencePage"];
export type SilencePreview = Schemas["SilencePreview"];
export type SavedView = Schemas["SavedView"];
export type ViewList = Schemas["ViewList"];
export type Principal = Schemas["Principal"];
export type Role = Schemas["Role"];
export type Me = Schemas["Me"];
export type TokenAnswer = Schemas["TokenAnswer"];
export type AuthMethods = Schemas["AuthMethods"];
export type AddonView = Schemas["AddonView"];
export type AddonDetail = Schemas["AddonDetail"];
export type PublicSettings = Schemas["PublicSettings"];
export type Target = Schemas["Target"];
export type TargetSpec = Schemas["TargetSpec"];
export type Schedule = Schemas["Schedule"];
export type CredentialSummary = Schemas["CredentialSummary"];
export type PinnedHostKey = Schemas["PinnedHostKey"];
export type User = Schemas["User"];
export type UserWithPassword = Schemas["UserWithPassword"];
export type ApiKeyInfo = Schemas["ApiKeyInfo"];
export type NewApiKey = Schemas["NewApiKey"];
export type SessionInfo = Schemas["SessionInfo"];
export type AuditEntry = Schemas["AuditEntry"];
export type AuditPage = Schemas["AuditPage"];
export type UnhandledTrap = Schemas["UnhandledTrap"];
export type Version = Schemas["Version"];
export type Stats = Schemas["Stats"];
export type Health = Schemas["Health"];

export const SEVERITIES: Severity[] = ["critical", "major", "minor", "warning", "info"];
export const OPEN_STATUSES: AlertStatus[] = ["active", "acknowledged", "suppressed"];
export const DAYS: Day[] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

export interface ApiErrorBody {
  error: { code: string; message: string; [key: string]: unknown };
}

// ---- WebSocket ----

export interface AddonStatusBody {
  id: string;
  status: "loaded" | "quarantined" | "probation" | "disabled" | "failed" | "removed";
  version?: string;
  /** For `quarantined`: when it ends. */
  until?: string;
  last_fault?: string;
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
