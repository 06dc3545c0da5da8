// How the addon screens name what an addon is written in (docs/rules.md: a rules addon shows as
// `rules 0.1.0` beside compiled addons).
import { describe, expect, it } from "vitest";
import { worldLabel } from "./worlds";

describe("worldLabel", () => {
  it("names compiled addons by their WIT world and rules addons as rules", () => {
    expect(worldLabel("opsconductor:addon/addon@0.2.0")).toBe("addon@0.2.0");
    expect(worldLabel("opsconductor:rules/engine@0.1.0")).toBe("rules 0.1.0");
    expect(worldLabel(null)).toBe("—");
  });
});
