// Every REST call goes through `api`: it sends the bearer token, refreshes it quietly and
// retries once when the server says it expired, and turns the API's one error shape
// (`{"error": {"code", "message"}}`) into an ApiError.
import { SignedOut, accessToken, refresh } from "../auth";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: Record<string, unknown> | null,
  ) {
    super(message);
  }
}

type Body = unknown | { raw: BodyInit; type: string };

function isRaw(body: Body): body is { raw: BodyInit; type: string } {
  return typeof body === "object" && body !== null && "raw" in body && "type" in body;
}

async function send(method: string, path: string, token: string, body?: Body): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  let payload: BodyInit | undefined;
  if (body !== undefined) {
    if (isRaw(body)) {
      headers["content-type"] = body.type;
      payload = body.raw;
    } else {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
  }
  return fetch(path, { method, headers, body: payload });
}

export async function api<T>(method: string, path: string, body?: Body): Promise<T> {
  const token = await accessToken();
  let response = await send(method, path, token, body);
  if (response.status === 401) {
    // The token may have been revoked or expired early: one quiet refresh, one retry.
    const session = await refresh(token);
    response = await send(method, path, session.accessToken, body);
    if (response.status === 401) throw new SignedOut("signed out");
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = json?.error ?? {};
    throw new ApiError(response.status, error.code ?? "http_error", error.message ?? `HTTP ${response.status}`, json);
  }
  return json as T;
}

/** A message for people from whatever a call threw. */
export function problem(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
