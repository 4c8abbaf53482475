/** Stack configurations for program-level tests: the dev site, with key-level overrides. */
import { join } from "node:path";
import { readStackConfig, type StackConfig } from "../../cli/stack-config";

export const ROOT = join(__dirname, "../..");

/** The dev stack's config; `edit` may change the parsed value of any `router:` key, `secrets` adds secret keys. */
export function devStack(
  edit?: (raw: Record<string, unknown>) => void,
  secrets: Record<string, string> = {},
): StackConfig {
  const cfg = readStackConfig(ROOT, "dev");
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cfg.values)) {
    if (!k.startsWith("router:")) continue;
    try {
      raw[k.slice(7)] = JSON.parse(v);
    } catch {
      raw[k.slice(7)] = v;
    }
  }
  edit?.(raw);
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw))
    if (v !== undefined) values[`router:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
  const secretKeys = [...cfg.secretKeys];
  for (const [k, v] of Object.entries(secrets)) {
    values[`router:${k}`] = v;
    if (!secretKeys.includes(`router:${k}`)) secretKeys.push(`router:${k}`);
  }
  return { ...cfg, values, secretKeys };
}
