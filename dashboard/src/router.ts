// Client-side routing on the History API. The runtime answers the console's page at exactly
// these paths (runtime/src/api/dashboard.rs, PAGES), so a reload or a bookmark of any of them
// works. (A router package would be larger than this, for one level of paths.)
import { cell } from "./state";

export interface Location {
  path: string;
  query: URLSearchParams;
}

function read(): Location {
  return { path: window.location.pathname, query: new URLSearchParams(window.location.search) };
}

export const location = cell<Location>(read());

window.addEventListener("popstate", () => location.set(read()));

/** Goes to `url` (path and query), adding a history entry unless `replace`. */
export function navigate(url: string, replace = false) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  location.set(read());
}

/** Changes query parameters of the current page in place (a filter typed, a group chosen). */
export function setQuery(changes: Record<string, string | null>, replace = true) {
  const query = new URLSearchParams(window.location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === "") query.delete(k);
    else query.set(k, v);
  }
  const text = query.toString();
  navigate(window.location.pathname + (text ? `?${text}` : ""), replace);
}

/** A link's click handler that navigates without a page load (ctrl/cmd-click still opens a tab). */
export function linkTo(url: string) {
  return (e: MouseEvent) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(url);
  };
}
