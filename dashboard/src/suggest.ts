// Completions for the filter bar: names while a term has no operator yet, values once it has
// one (`severity=` offers the severities, `addon=` the addons the open alerts come from, a
// field the values it holds). Pure: what to offer comes from `names` and `valuesOf`, so the
// console supplies them from its model and the tests from a list.
import { NAMES, quote } from "./filter";

export interface Completion {
  /** What the list shows. */
  label: string;
  /** The term the completion writes in place of the one being typed. */
  text: string;
  /** A word on what it is ("name", "value", a count). */
  hint?: string;
}

export interface Completions {
  /** The part of the input the completions replace: [from, to). */
  from: number;
  to: number;
  items: Completion[];
}

const OPERATORS = ["!=", "!~", "=~", ">=", "<=", "=", ">", "<"];
const TERM = /^([A-Za-z_][A-Za-z0-9_.-]*)(!=|!~|=~|>=|<=|=|>|<)(.*)$/s;
const LIMIT = 8;

/** Where the term that holds `caret` starts: after the last space outside quotes. */
function termStart(text: string, caret: number): number {
  let start = 0;
  let quoted = false;
  for (let i = 0; i < caret; i++) {
    const c = text[i];
    if (quoted && c === "\\") i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && /\s/.test(c)) start = i + 1;
  }
  return start;
}

/**
 * What to offer for the term being typed at `caret` in `text`: names that start with what is
 * typed, or values of the name before the operator that start with (then contain) the typed
 * part. Nothing for a term that is complete as typed, or for an empty one.
 */
export function complete(
  text: string,
  caret: number,
  fieldNames: string[],
  valuesOf: (name: string) => { value: string; count?: number }[],
): Completions {
  const from = termStart(text, caret);
  // The term runs on past the caret to the next space (a completion replaces all of it).
  let to = caret;
  while (to < text.length && !/\s/.test(text[to])) to++;
  const typed = text.slice(from, caret);
  const none = { from, to, items: [] };
  if (typed === "" || typed.startsWith('"')) return none;
  const m = TERM.exec(typed);
  if (!m) {
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(typed)) return none;
    const lower = typed.toLowerCase();
    const names = [...NAMES, ...fieldNames.filter((f) => !NAMES.includes(f))];
    const items = names
      .filter((n) => n.toLowerCase().startsWith(lower) && n !== typed)
      .slice(0, LIMIT)
      .map((n) => ({ label: `${n}=`, text: `${n}=`, hint: NAMES.includes(n) ? "name" : "field" }));
    return { from, to, items };
  }
  const [, name, op, rest] = m;
  if (!OPERATORS.includes(op)) return none;
  // A regex is the operator's own business; values still help as a start.
  const partial = rest.startsWith('"') ? rest.slice(1).replace(/\\(.)/g, "$1").replace(/"$/, "") : rest;
  const lower = partial.toLowerCase();
  const all = valuesOf(name);
  const starts = all.filter((v) => v.value.toLowerCase().startsWith(lower));
  const contains = lower === "" ? [] : all.filter((v) => !v.value.toLowerCase().startsWith(lower) && v.value.toLowerCase().includes(lower));
  const items = [...starts, ...contains]
    .filter((v) => !(v.value === partial && rest === quote(v.value)))
    .slice(0, LIMIT)
    .map((v) => ({
      label: v.value === "" ? '"" (none)' : v.value,
      text: `${name}${op}${quote(v.value)} `,
      hint: v.count !== undefined ? String(v.count) : "value",
    }));
  return { from, to, items };
}

/** `text` with the completion put in place of [from, to); the caret goes after it. */
export function accept(text: string, c: Completions, item: Completion): { text: string; caret: number } {
  const after = text.slice(c.to).replace(/^\s+/, item.text.endsWith(" ") ? "" : " ");
  const next = text.slice(0, c.from) + item.text + after;
  return { text: next, caret: c.from + item.text.length };
}
