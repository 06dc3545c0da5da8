// What an addon is written in, as the addon screens name it.

/** What an addon is written in, short: `addon@0.2.0` for a component, `rules 0.1.0` for a rules
 * addon (docs/rules.md), which runs on the runtime's rules engine. */
export function worldLabel(world: string | null | undefined): string {
  if (!world) return "—";
  if (world.startsWith("opsconductor:rules/engine@")) return `rules ${world.split("@")[1]}`;
  return world.replace("opsconductor:addon/", "");
}
