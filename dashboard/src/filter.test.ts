// The filter language against the cases the runtime's implementation passes too
// (runtime/src/filter/cases.json), plus the editing helpers the facets and silences use.
import { describe, expect, it } from "vitest";
import cases from "../../runtime/src/filter/cases.json";
import type { Alert } from "./api/types";
import { compileFilter, hasMatcher, parseTerms, quote, silenceMatchersOf, toggleMatcher } from "./filter";

function alertOf(a: Record<string, unknown>): Alert {
  return {
    fingerprint: "",
    occurred_at: "",
    first_seen_at: "",
    last_seen_at: "",
    acknowledged_at: null,
    resolved_at: null,
    resolved_by: null,
    ...a,
  } as Alert;
}

const alerts = Object.entries(cases.alerts).map(([key, a]) => [key, alertOf(a)] as const);

describe("the shared cases", () => {
  for (const c of cases.cases as { filter: string; matches?: string[]; error?: string }[]) {
    it(JSON.stringify(c.filter), () => {
      if (c.error !== undefined) {
        expect(() => compileFilter(c.filter)).toThrow(c.error);
        return;
      }
      const f = compileFilter(c.filter);
      const got = alerts.filter(([, a]) => f.matches(a)).map(([k]) => k).sort();
      expect(got).toEqual([...(c.matches ?? [])].sort());
    });
  }
});

describe("editing filters", () => {
  it("toggles a matcher on and off, keeping the other terms as written", () => {
    let text = 'device=~"10.20.*" down';
    text = toggleMatcher(text, "severity", "=", "critical");
    expect(text).toBe('device=~"10.20.*" down severity=critical');
    expect(hasMatcher(parseTerms(text), "severity", "=", "critical")).toBe(true);
    // The negation replaces the matcher rather than contradicting it.
    text = toggleMatcher(text, "severity", "!=", "critical");
    expect(text).toBe('device=~"10.20.*" down severity!=critical');
    text = toggleMatcher(text, "severity", "!=", "critical");
    expect(text).toBe('device=~"10.20.*" down');
  });

  it("quotes what must be quoted, and the result parses back", () => {
    for (const v of ["plain", "with space", 'a "quote"', "back\\slash", "", "=starts"]) {
      const text = toggleMatcher("", "title", "=", v);
      const [term] = parseTerms(text);
      expect(term.kind === "matcher" && term.matcher.value).toBe(v);
    }
    expect(quote("10.20.0.1")).toBe("10.20.0.1");
  });

  it("takes the exact matchers a silence can hold and names the rest", () => {
    const m = silenceMatchersOf('addon=prtg device=core-1 type=down ifIndex=7 severity=critical "text" job=~"x.*"');
    expect(m).toEqual({
      addon: "prtg",
      device: "core-1",
      alert_type: "down",
      fields: { ifIndex: "7" },
      left: ["severity=critical", '"text"', 'job=~"x.*"'],
    });
  });
});

describe("regular expressions as the runtime reads them", () => {
  // The runtime's engine is Rust's `regex` crate; these are where JavaScript's differs, found
  // by comparing both over the same alerts (GET /api/v1/alerts/facets against this module).
  const one = (fields: Record<string, string>, extra: Record<string, unknown> = {}) =>
    alertOf({ id: 1, addon_id: "a", alert_type: "t", severity: "info", status: "active", category: "c", device_ip: null, device_name: null, title: "", message: "", fields, occurrence_count: 1, acknowledged_by: null, ...extra });
  // The regular expression as written in the filter bar, quoted as the filter needs.
  const reMatches = (re: string, a: Alert) => compileFilter(`x=~${quote(re)}`).matches(a);

  it("reads \\w, \\d, \\s and \\b as Unicode classes", () => {
    expect(reMatches(String.raw`\w+`, one({ x: "Störung_ï" }))).toBe(true);
    expect(reMatches(String.raw`[\w-]+`, one({ x: "naïve-1" }))).toBe(true);
    expect(reMatches(String.raw`\W+`, one({ x: "ö" }))).toBe(false);
    expect(reMatches(String.raw`\d+`, one({ x: "١٢٣" }))).toBe(true);
    expect(reMatches(String.raw`\D`, one({ x: "٣" }))).toBe(false);
    expect(reMatches(String.raw`a\sb`, one({ x: "a\u0085b" }))).toBe(true);
    expect(reMatches(String.raw`a\sb`, one({ x: "a\ufeffb" }))).toBe(false);
    expect(reMatches(String.raw`.*ö\b.*`, one({ x: "xö y" }))).toBe(true);
    expect(reMatches(String.raw`.*x\b.*`, one({ x: "xö y" }))).toBe(false);
    expect(reMatches(String.raw`x\Bö.*`, one({ x: "xö y" }))).toBe(true);
  });

  it("lets . stop at \\n only", () => {
    expect(reMatches(String.raw`a.b`, one({ x: "a\rb" }))).toBe(true);
    expect(reMatches(String.raw`a.b`, one({ x: "a\u2028b" }))).toBe(true);
    expect(reMatches(String.raw`a.b`, one({ x: "a\nb" }))).toBe(false);
    expect(reMatches(String.raw`[.]`, one({ x: "." }))).toBe(true);
    expect(reMatches(String.raw`[.]`, one({ x: "a" }))).toBe(false);
  });

  it("takes Rust's spellings", () => {
    expect(reMatches(String.raw`[]a]+`, one({ x: "]a" }))).toBe(true);
    expect(reMatches(String.raw`[^]a]+`, one({ x: "b" }))).toBe(true);
    expect(reMatches(String.raw`[^]a]+`, one({ x: "]" }))).toBe(false);
    expect(reMatches(String.raw`a\-b\#`, one({ x: "a-b#" }))).toBe(true);
    expect(reMatches(String.raw`[a\-c]+`, one({ x: "a-c" }))).toBe(true);
    expect(reMatches(String.raw`[a\-c]+`, one({ x: "b" }))).toBe(false);
    expect(reMatches(String.raw`\x{53}\pL+`, one({ x: "Sab" }))).toBe(true);
    expect(reMatches(String.raw`\Aab\z`, one({ x: "ab" }))).toBe(true);
    expect(reMatches(String.raw`(?P<n>a)b`, one({ x: "ab" }))).toBe(true);
    expect(reMatches(String.raw`a{2}b}`, one({ x: "aab}" }))).toBe(true);
    expect(reMatches(String.raw`ab]`, one({ x: "ab]" }))).toBe(true);
  });

  it("refuses what the runtime's engine refuses or reads otherwise", () => {
    for (const re of ["(?=a)a", "(?!a)b", "(?<=a)b", "(?<!a)b", "(a)\\1", "(?<n>a)\\k<n>", "\\cA", "[[:alpha:]]", "[a&&b]", "[a--b]", "[a~~b]", "[\\W]", "[\\b]"]) {
      expect(() => compileFilter(`x=~${quote(re)}`), re).toThrow("regular expression");
    }
  });

  it("reads ids as 64-bit numbers and whitespace as Unicode White_Space", () => {
    expect(() => compileFilter("id=9223372036854775807")).not.toThrow();
    expect(() => compileFilter("id=9223372036854775808")).toThrow("`id` is a number");
    expect(() => compileFilter("id=-9223372036854775809")).toThrow("`id` is a number");
    expect(parseTerms("severity=info\u0085addon=x")).toHaveLength(2);
    expect(() => compileFilter("severity=info\ufeff")).toThrow("unknown severity");
  });
});
