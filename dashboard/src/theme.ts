// Light and dark themes: the system's choice by default, or the user's (kept in localStorage
// as `oc.theme`). The stylesheet reads `data-theme` on <html> when it is set and
// `prefers-color-scheme` otherwise.
import { cell } from "./state";

export type Theme = "system" | "light" | "dark";
const KEY = "oc.theme";

export const theme = cell<Theme>((localStorage.getItem(KEY) as Theme | null) ?? "system");

function apply(t: Theme) {
  if (t === "system") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
}

apply(theme.get());
theme.subscribe((t) => {
  localStorage.setItem(KEY, t);
  apply(t);
});

export function nextTheme(t: Theme): Theme {
  return t === "system" ? "light" : t === "light" ? "dark" : "system";
}
