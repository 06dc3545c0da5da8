// The console's filter language, as the runtime reads it (runtime/src/filter.rs): what the
// filter bar, the URL, the facet counts and "act on everything this filter matches" all use.
//
//   severity=critical device=~"10.20.*" addon!=prtg "link down"
//
// Terms separated by spaces, all of which must match. `=` and `!=` compare exactly; `=~` and
// `!~` match a regular expression anchored at both ends (case-sensitive unless it starts with
// `(?i)`); `>=`, `>`, `<=`, `<` compare severities. A term without an operator is free text.
// Both implementations pass runtime/src/filter/cases.json, so that a bulk action acts on
// exactly the alerts the operator saw here.

import type { Alert, Severity } from "./api/types";
import { SEVERITIES } from "./api/types";

export const MAX_FILTER_LEN = 2048;
export const MAX_TERMS = 32;

export class FilterError extends Error {}

export type Op = "=" | "!=" | "=~" | "!~" | ">=" | "<=" | ">" | "<";
const OPERATORS: Op[] = ["!=", "!~", "=~", ">=", "<=", "=", ">", "<"];
const STATUSES = ["active", "acknowledged", "suppressed", "resolved"];

/** The attributes a matcher may name, besides fields. */
export const NAMES = [
  "severity",
  "status",
  "acknowledged",
  "acknowledged_by",
  "addon",
  "type",
  "category",
  "device",
  "device_ip",
  "device_name",
  "title",
  "message",
  "id",
];

export interface Matcher {
  name: string;
  op: Op;
  value: string;
}

export type Term = { kind: "text"; text: string; raw: string } | { kind: "matcher"; matcher: Matcher; raw: string };

/** A compiled filter: `matches` is what the console runs over every alert. */
export interface Filter {
  terms: Term[];
  matches: (alert: Alert) => boolean;
}

const isOperatorChar = (c: string) => c === "=" || c === "!" || c === "~" || c === "<" || c === ">";
// Whitespace as Rust's `char::is_whitespace` reads it (Unicode White_Space): JavaScript's `\s`
// and `trimStart` also count U+FEFF and leave out U+0085, which would split terms otherwise.
const SPACE = /\p{White_Space}/u;
const isSpace = (c: string) => SPACE.test(c);
const trimStart = (s: string) => s.replace(/^\p{White_Space}+/u, "");
const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

function inTerm(term: string, message: string): FilterError {
  return new FilterError(`\`${term}\`: ${message}`);
}

/** Reads a quoted value starting after its opening quote; returns it and the rest. */
function quoted(input: string): [string, string] {
  let value = "";
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c === '"') return [value, input.slice(i + 1)];
    if (c === "\\") {
      i++;
      if (i >= input.length) break;
      value += input[i];
    } else {
      value += c;
    }
  }
  throw new Error("unterminated quote");
}

function firstWord(input: string): string {
  const m = /^\P{White_Space}+/u.exec(input);
  return m ? m[0] : input;
}

function expectSeparator(after: string, term: string) {
  if (after.length > 0 && !isSpace(after[0])) {
    throw inTerm(term, "expected a space after the closing quote");
  }
}

/** Parses one term at the start of `input` (no leading space); returns it and the rest. */
function parseTerm(input: string): [Term, string] {
  if (input[0] === '"') {
    let phrase: string, after: string;
    try {
      [phrase, after] = quoted(input.slice(1));
    } catch (e) {
      throw inTerm(firstWord(input), (e as Error).message);
    }
    const raw = input.slice(0, input.length - after.length);
    expectSeparator(after, raw);
    return [{ kind: "text", text: phrase.toLowerCase(), raw }, after];
  }
  let end = 0;
  while (end < input.length && !isSpace(input[end]) && input[end] !== '"' && !isOperatorChar(input[end])) end++;
  const name = input.slice(0, end);
  const afterRun = input.slice(end);
  if (afterRun.length === 0 || isSpace(afterRun[0])) {
    return [{ kind: "text", text: name.toLowerCase(), raw: name }, afterRun];
  }
  const whole = firstWord(input);
  if (afterRun[0] === '"') {
    throw inTerm(whole, 'unexpected quote; put the whole phrase in quotes, or write name="value"');
  }
  const op = OPERATORS.find((o) => afterRun.startsWith(o));
  if (!op) throw inTerm(whole, `unknown operator \`${afterRun[0]}\` (use one of: ${OPERATORS.join(" ")})`);
  if (name === "") throw inTerm(whole, `missing name before \`${op}\``);
  if (!NAME.test(name)) throw inTerm(whole, `\`${name}\` is not a name (letters, digits, \`_\`, \`.\` and \`-\`)`);
  const valueText = afterRun.slice(op.length);
  let value: string, after: string;
  if (valueText[0] === '"') {
    try {
      [value, after] = quoted(valueText.slice(1));
    } catch (e) {
      throw inTerm(whole, (e as Error).message);
    }
    expectSeparator(after, input.slice(0, input.length - after.length));
  } else {
    let e = 0;
    while (e < valueText.length && !isSpace(valueText[e]) && valueText[e] !== '"') e++;
    value = valueText.slice(0, e);
    if (value === "") throw inTerm(whole, `missing value after \`${op}\``);
    if (isOperatorChar(value[0])) throw inTerm(whole, `a value cannot start with \`${value[0]}\`; quote it`);
    after = valueText.slice(e);
    if (after[0] === '"') throw inTerm(whole, "unexpected quote; quote the whole value");
  }
  const raw = input.slice(0, input.length - after.length);
  try {
    check(name, op, value);
  } catch (e) {
    throw inTerm(raw, (e as Error).message);
  }
  return [{ kind: "matcher", matcher: { name, op, value }, raw }, after];
}

function unknown(what: string, value: string, expected: string[]): Error {
  return new Error(`unknown ${what} \`${value}\` (expected one of: ${expected.join(", ")})`);
}

function check(name: string, op: Op, value: string) {
  if (op === "=" || op === "!=") {
    if (name === "severity" && !SEVERITIES.includes(value as Severity)) throw unknown("severity", value, SEVERITIES);
    if (name === "status" && !STATUSES.includes(value)) throw unknown("status", value, STATUSES);
    if (name === "acknowledged" && value !== "true" && value !== "false")
      throw new Error(`\`acknowledged\` is \`true\` or \`false\`, not \`${value}\``);
    // As Rust's `i64` parse takes it: digits with an optional sign, within 64 bits.
    if (name === "id" && !(/^[+-]?[0-9]+$/.test(value) && BigInt(value) >= I64_MIN && BigInt(value) <= I64_MAX))
      throw new Error(`\`id\` is a number, not \`${value}\``);
  } else if (op === "=~" || op === "!~") {
    compile(value);
  } else {
    if (name !== "severity") throw new Error(`\`${op}\` compares severities: it applies to only \`severity\``);
    if (!SEVERITIES.includes(value as Severity)) throw unknown("severity", value, SEVERITIES);
  }
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

// Rust's `\w` (Unicode, as its `regex` crate reads it): letters and other alphabetic
// characters, marks, decimal digits, connector punctuation and joiners.
const WORD = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";
const BOUNDARY = `(?:(?<=[${WORD}])(?![${WORD}])|(?<![${WORD}])(?=[${WORD}]))`;
const NOT_BOUNDARY = `(?:(?<=[${WORD}])(?=[${WORD}])|(?<![${WORD}])(?![${WORD}]))`;
/** What JavaScript's `u` flag lets be escaped (besides `-` in a class). */
const JS_SYNTAX = "^$\\.*+?()[]{}|/";

/**
 * A regular expression of the filter, written for the runtime's engine (Rust's `regex` crate),
 * as a JavaScript one (`u` flag) that matches the same strings — so that "act on everything
 * this filter matches" acts on what the console showed. Where the engines differ:
 *
 * - `\d`, `\w`, `\s`, `\b` (and their negations) are Unicode-aware in Rust, ASCII-only (or, for
 *   `\s`, another set) in JavaScript: spelled out with Unicode properties;
 * - `.` stops only at `\n` in Rust, at `\r`, U+2028 and U+2029 too in JavaScript: `[^\n]`;
 * - `]` first in a class is a literal in Rust (`[]a]`), an empty class in JavaScript; an
 *   unmatched `]` or `}` is a literal in Rust, an error in JavaScript;
 * - `(?P<name>…)` is Rust's (and Python's) named group;
 * - `\pL` (one-letter property), `\x{…}`, `\A`, `\z`, and escaped punctuation that is not
 *   syntax (`\-`, `\#`, `\:`) are Rust's spellings;
 * - look-around and backreferences exist only in JavaScript, nested classes and set
 *   operations (`[a[b]]`, `[[:alpha:]]`, `&&`, `--`, `~~`) only in Rust: refused here, as the
 *   runtime refuses (or would read differently) what this engine would accept.
 *
 * What JavaScript's syntax refuses (inline flags other than a leading `(?i)`, POSIX classes)
 * stays refused: the filter bar then says so before the runtime is asked.
 */
export function translateRegex(pattern: string): string {
  let out = "";
  let inClass = false;
  let classStart = -1;
  const refuse = (what: string) => {
    throw new Error(`not a valid regular expression: ${what} ${inClass ? "inside a character class " : ""}is not supported`);
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      const e = pattern[i + 1];
      if (e === undefined) {
        out += c; // a trailing backslash: the engine's own error
        continue;
      }
      i++;
      switch (e) {
        case "d":
          out += "\\p{Nd}";
          continue;
        case "D":
          out += "\\P{Nd}";
          continue;
        case "s":
          out += "\\p{White_Space}";
          continue;
        case "S":
          out += "\\P{White_Space}";
          continue;
        case "w":
          out += inClass ? WORD : `[${WORD}]`;
          continue;
        case "W":
          if (inClass) refuse("`\\W`");
          out += `[^${WORD}]`;
          continue;
        case "b":
          if (inClass) refuse("`\\b`");
          out += BOUNDARY;
          continue;
        case "B":
          if (inClass) refuse("`\\B`");
          out += NOT_BOUNDARY;
          continue;
        case "A":
          if (inClass) refuse("`\\A`");
          out += "^";
          continue;
        case "z":
          if (inClass) refuse("`\\z`");
          out += "$";
          continue;
        case "k":
        case "c":
          refuse(`\`\\${e}\``);
          continue;
        case "x":
          if (pattern[i + 1] === "{") {
            const close = pattern.indexOf("}", i + 2);
            if (close > 0) {
              out += `\\u{${pattern.slice(i + 2, close)}}`;
              i = close;
              continue;
            }
          }
          out += "\\x";
          continue;
        case "p":
        case "P":
          // `\pL`: a one-letter class name without braces.
          if (pattern[i + 1] !== undefined && pattern[i + 1] !== "{") {
            out += `\\${e}{${pattern[i + 1]}}`;
            i++;
            continue;
          }
          out += `\\${e}`;
          continue;
        default:
          if (e >= "0" && e <= "9") refuse("a backreference");
          // Rust lets any ASCII punctuation be escaped; JavaScript (`u` flag) only its own
          // syntax characters (and `-` in a class): the others are written plainly.
          if (/^[!-/:-@[-`{-~ ]$/.test(e) && e !== "<" && e !== ">" && !JS_SYNTAX.includes(e) && !(inClass && e === "-")) out += e;
          else out += `\\${e}`;
          continue;
      }
    }
    if (inClass) {
      if (c === "]" && !(i === classStart || (i === classStart + 1 && pattern[classStart] === "^"))) {
        inClass = false;
        out += c;
      } else if (c === "]") {
        out += "\\]"; // first in the class: a literal, as in Rust
      } else if (c === "[") {
        refuse("a nested class (`[`; escape it as `\\[`)");
      } else if ((c === "&" || c === "~" || c === "-") && pattern[i + 1] === c) {
        refuse(`\`${c}${c}\``);
      } else {
        out += c;
      }
      continue;
    }
    if (c === "[") {
      inClass = true;
      classStart = i + 1;
      out += c;
    } else if (c === ".") {
      out += "[^\\n]";
    } else if (c === "(" && (pattern.startsWith("(?=", i) || pattern.startsWith("(?!", i) || pattern.startsWith("(?<=", i) || pattern.startsWith("(?<!", i))) {
      refuse("look-around");
    } else if (c === "(" && pattern.startsWith("(?P<", i)) {
      out += "(?<"; // a named group, Python's spelling
      i += 3;
    } else if (c === "{") {
      // A repetition, copied whole; what follows it is read as usual.
      const close = pattern.indexOf("}", i);
      const end = close < 0 ? pattern.length : close + 1;
      out += pattern.slice(i, end);
      i = end - 1;
    } else if (c === "}" || c === "]") {
      out += `\\${c}`; // unmatched: a literal in Rust, an error in JavaScript
    } else {
      out += c;
    }
  }
  return out;
}

function compile(pattern: string): RegExp {
  let flags = "u";
  let body = pattern;
  if (body.startsWith("(?i)")) {
    flags += "i";
    body = body.slice(4);
  }
  const translated = translateRegex(body);
  try {
    return new RegExp(`^(?:${translated})$`, flags);
  } catch (e) {
    throw new Error(`not a valid regular expression: ${(e as Error).message.replace(translated, body)}`);
  }
}

/** The terms of `text`, or a FilterError naming the bad one. */
export function parseTerms(text: string): Term[] {
  if (new TextEncoder().encode(text).length > MAX_FILTER_LEN) {
    throw new FilterError(`the filter is longer than ${MAX_FILTER_LEN} bytes`);
  }
  const terms: Term[] = [];
  let rest = trimStart(text);
  while (rest.length > 0) {
    const [term, after] = parseTerm(rest);
    terms.push(term);
    if (terms.length > MAX_TERMS) throw new FilterError(`the filter has more than ${MAX_TERMS} terms`);
    rest = trimStart(after);
  }
  return terms;
}

// Severity order, most severe first, as the runtime's `Severity` orders them.
const RANK: Record<string, number> = { critical: 0, major: 1, minor: 2, warning: 3, info: 4 };

/** The value(s) a matcher's name reads from an alert; several only for `device`. */
export function valuesOf(name: string, a: Alert): string[] {
  switch (name) {
    case "severity":
      return [a.severity];
    case "status":
      return [a.status];
    case "acknowledged":
      return [a.status === "acknowledged" ? "true" : "false"];
    case "acknowledged_by":
      return [a.acknowledged_by ?? ""];
    case "addon":
      return [a.addon_id];
    case "type":
    case "alert_type":
      return [a.alert_type];
    case "category":
      return [a.category];
    case "device": {
      const v = [a.device_ip, a.device_name].filter((x): x is string => x !== null && x !== undefined);
      return v.length > 0 ? v : [""];
    }
    case "device_ip":
      return [a.device_ip ?? ""];
    case "device_name":
      return [a.device_name ?? ""];
    case "title":
      return [a.title];
    case "message":
      return [a.message];
    case "id":
      return [String(a.id)];
    default: {
      const field = name.startsWith("fields.") ? name.slice("fields.".length) : name;
      return [a.fields[field] ?? ""];
    }
  }
}

/** The lowercased text free-text terms search in, computed once per alert. */
export function searchText(a: Alert): string {
  const parts = [a.title, a.message, a.addon_id, a.alert_type, a.category, a.device_ip ?? "", a.device_name ?? ""];
  for (const v of Object.values(a.fields)) parts.push(v);
  // A separator that no term can contain (terms never span a space-free gap… but phrases
  // can hold spaces, so use a control character instead).
  return parts.join("\u0000").toLowerCase();
}

/** What a single-valued name reads from an alert; `null` for `device`, which has several. */
function reader(name: string): ((a: Alert) => string) | null {
  switch (name) {
    case "severity":
      return (a) => a.severity;
    case "status":
      return (a) => a.status;
    case "acknowledged":
      return (a) => (a.status === "acknowledged" ? "true" : "false");
    case "acknowledged_by":
      return (a) => a.acknowledged_by ?? "";
    case "addon":
      return (a) => a.addon_id;
    case "type":
    case "alert_type":
      return (a) => a.alert_type;
    case "category":
      return (a) => a.category;
    case "device":
      return null;
    case "device_ip":
      return (a) => a.device_ip ?? "";
    case "device_name":
      return (a) => a.device_name ?? "";
    case "title":
      return (a) => a.title;
    case "message":
      return (a) => a.message;
    case "id":
      return (a) => String(a.id);
    default: {
      const field = name.startsWith("fields.") ? name.slice("fields.".length) : name;
      return (a) => a.fields[field] ?? "";
    }
  }
}

/** Whether `test` holds for any of the alert's device values (IP, name, or "" for neither),
 * without making a list of them: this runs for every alert at every filter pass. */
function anyDevice(a: Alert, test: (v: string) => boolean): boolean {
  const ip = a.device_ip;
  const name = a.device_name;
  if ((ip === null || ip === undefined) && (name === null || name === undefined)) return test("");
  return (ip !== null && ip !== undefined && test(ip)) || (name !== null && name !== undefined && test(name));
}

function compileMatcher(m: Matcher): (a: Alert) => boolean {
  const { name, op, value } = m;
  if (op === ">=" || op === ">" || op === "<=" || op === "<") {
    const than = RANK[value];
    return (a) => {
      const r = RANK[a.severity];
      return op === ">=" ? r <= than : op === ">" ? r < than : op === "<=" ? r >= than : r > than;
    };
  }
  const read = reader(name);
  if (op === "=" || op === "!=") {
    const positive = op === "=";
    if (read === null) return (a) => anyDevice(a, (v) => v === value) === positive;
    return (a) => (read(a) === value) === positive;
  }
  const re = compile(value);
  const positive = op === "=~";
  if (read === null) return (a) => anyDevice(a, (v) => re.test(v)) === positive;
  return (a) => re.test(read(a)) === positive;
}

/**
 * Compiles `text`. `search` gives an alert's lowercased search text (the console caches it
 * per alert; by default it is computed on the spot).
 */
export function compileFilter(text: string, search: (a: Alert) => string = searchText): Filter {
  const terms = parseTerms(text);
  const tests = terms.map((t): ((a: Alert) => boolean) => {
    if (t.kind === "text") {
      const needle = t.text;
      return (a) => search(a).includes(needle);
    }
    return compileMatcher(t.matcher);
  });
  return {
    terms,
    matches: tests.length === 0 ? () => true : (a) => tests.every((f) => f(a)),
  };
}

// ---- editing expressions (facet clicks, "silence all matching") ----

/** A value as the filter writes it: bare when it can be, quoted otherwise. */
export function quote(value: string): string {
  if (value !== "" && !/[\s"\\]/.test(value) && !isOperatorChar(value[0])) return value;
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

export function matcherText(name: string, op: Op, value: string): string {
  return `${name}${op}${quote(value)}`;
}

/**
 * Adds `name<op>value` to `text`, or removes it when it is there already; other matchers of
 * `name` with `=`/`!=` on the same value are replaced (clicking "critical" after "!=critical"
 * flips it). Keeps the other terms as they were written.
 */
export function toggleMatcher(text: string, name: string, op: Op, value: string): string {
  let terms: Term[];
  try {
    terms = parseTerms(text);
  } catch {
    return text;
  }
  const same = (t: Term) =>
    t.kind === "matcher" && t.matcher.name === name && t.matcher.value === value && (t.matcher.op === "=" || t.matcher.op === "!=");
  const had = terms.find((t) => same(t) && t.kind === "matcher" && t.matcher.op === op);
  const kept = terms.filter((t) => !same(t)).map((t) => t.raw);
  if (!had) kept.push(matcherText(name, op, value));
  return kept.join(" ");
}

/** Whether `text` holds `name<op>value` (for showing a facet as active). */
export function hasMatcher(terms: Term[], name: string, op: Op, value: string): boolean {
  return terms.some((t) => t.kind === "matcher" && t.matcher.name === name && t.matcher.op === op && t.matcher.value === value);
}

/**
 * What a silence can take from a filter: its `=` matchers on addon, device, type and fields.
 * `left` lists the terms a silence cannot express (they would widen it).
 */
export function silenceMatchersOf(text: string): {
  addon?: string;
  device?: string;
  alert_type?: string;
  fields: Record<string, string>;
  left: string[];
} {
  const out: { addon?: string; device?: string; alert_type?: string; fields: Record<string, string>; left: string[] } = {
    fields: {},
    left: [],
  };
  for (const t of parseTerms(text)) {
    if (t.kind !== "matcher" || t.matcher.op !== "=") {
      out.left.push(t.raw);
      continue;
    }
    const { name, value } = t.matcher;
    if (name === "addon") out.addon = value;
    else if (name === "device") out.device = value;
    else if (name === "type" || name === "alert_type") out.alert_type = value;
    else if (NAMES.includes(name)) out.left.push(t.raw);
    else out.fields[name.startsWith("fields.") ? name.slice(7) : name] = value;
  }
  return out;
}
