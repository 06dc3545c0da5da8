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
