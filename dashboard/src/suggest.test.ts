// Filter bar completions: names, then values, replacing just the term being typed.
import { describe, expect, it } from "vitest";
import { accept, complete } from "./suggest";

const values = (name: string) =>
  name === "severity"
    ? ["critical", "major", "minor", "warning", "info"].map((value) => ({ value }))
    : name === "device"
      ? [{ value: "core-1", count: 3 }, { value: "edge 7", count: 1 }, { value: "10.20.0.1", count: 2 }]
      : [];

describe("complete", () => {
  it("offers names for a term without an operator, fields too", () => {
    const c = complete("sev", 3, ["site"], values);
    expect(c.items.map((i) => i.text)).toEqual(["severity="]);
    expect(complete("si", 2, ["site", "severity"], values).items.map((i) => i.text)).toEqual(["site="]);
    expect(complete("", 0, [], values).items).toEqual([]);
    expect(complete('"link', 5, [], values).items).toEqual([]);
  });

  it("offers values after the operator, those that start with the typed part first", () => {
    const c = complete("addon=x severity=m", 18, [], values);
    expect(c.from).toBe(8);
    expect(c.items.map((i) => i.text)).toEqual(["severity=major ", "severity=minor "]);
    expect(complete("device=1", 8, [], values).items.map((i) => i.label)).toEqual(["10.20.0.1", "core-1"]);
    // Values with spaces come quoted; contained matches follow.
    expect(complete("device!=e", 9, [], values).items.map((i) => i.text)).toEqual(['device!="edge 7" ', "device!=core-1 "]);
  });

  it("replaces only the term at the caret", () => {
    const text = "severity=cr down";
    const c = complete(text, 11, [], values);
    expect(accept(text, c, c.items[0])).toEqual({ text: "severity=critical down", caret: 18 });
    const t2 = "sev";
    const c2 = complete(t2, 3, [], values);
    expect(accept(t2, c2, c2.items[0])).toEqual({ text: "severity=", caret: 9 });
  });
});
