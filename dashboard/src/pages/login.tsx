// Sign-in with a username and password (local users, or the directory when the runtime has
// one configured), or through the OpenID Connect provider when there is one; afterwards, back
// to where the user was going.
import { useEffect, useState } from "preact/hooks";
import type { AuthMethods } from "../api/types";
import { finishSingleSignOn, signIn, signInMethods } from "../auth";
import { navigate } from "../router";

/** What the single sign-on's callback put in the address: `#sso=<token>` or `#sso_error=<why>`. */
function singleSignOnResult(): { token?: string; error?: string } | null {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const token = fragment.get("sso");
  const error = fragment.get("sso_error");
  if (token === null && error === null) return null;
  // Out of the address bar and of what a bookmark would keep.
  history.replaceState(history.state, "", window.location.pathname + window.location.search);
  return { token: token ?? undefined, error: error ?? undefined };
}

export function LoginPage() {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [methods, setMethods] = useState<AuthMethods | null>(null);
  useEffect(() => {
    document.title = "Sign in · OpsConductor";
    signInMethods().then(setMethods);
    const sso = singleSignOnResult();
    if (sso?.error) setError(sso.error);
    if (sso?.token) {
      setBusy(true);
      finishSingleSignOn(sso.token)
        .then(() => navigate("/", true))
        .catch((err) => setError(err instanceof Error ? err.message : String(err)))
        .finally(() => setBusy(false));
    }
  }, []);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(username.trim(), password);
      const next = new URLSearchParams(window.location.search).get("next");
      // Only paths of this console: never an address elsewhere.
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : window.location.pathname === "/login" ? "/" : window.location.pathname + window.location.search, true);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setPassword("");
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login" id="main">
      <form class="login-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">OpsConductor</h1>
        <p class="muted">Sign in to the operator console.</p>
        <label>
          Username
          <input data-testid="login-username" name="username" autocomplete="username" required value={username} onInput={(e) => setUsername((e.target as HTMLInputElement).value)} autofocus />
        </label>
        <label>
          Password
          <input data-testid="login-password" name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
        </label>
        {error ? (
          <p class="error" role="alert" data-testid="login-error">
            {error}
          </p>
        ) : null}
        <button type="submit" class="primary" data-testid="sign-in" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {methods?.oidc ? (
          <a class="button sso" href={methods.oidc.start_url} data-testid="sign-in-sso">
            Sign in with {methods.oidc.display_name}
          </a>
        ) : null}
      </form>
    </main>
  );
}
