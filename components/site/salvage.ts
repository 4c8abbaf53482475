/**
 * What parsed of a config value zod rejected, so that the cross-field rules check everything that did parse and
 * one run reports every problem: an element of a list that fails to parse is left out (the list is marked
 * incomplete at its path), an unknown key is ignored (it is reported on its own), and an object with a field
 * that fails is left out as a whole (a half-read object would make the rules guess). Lists keep the config
 * indices of the elements that survived (`indexed`), so issue paths still name the element an operator edits.
 * No Pulumi import.
 */
import type { z } from "zod";

/** Config indices of the elements of every list salvaged here (a list that parsed whole is not in the map). */
const ORIGIN = new WeakMap<readonly unknown[], number[]>();

/** Elements of a list with their config index (the index in the operator's list, not in the salvaged one). */
export function indexed<T>(list: readonly T[]): { index: number; value: T }[] {
  const origin = ORIGIN.get(list);
  return list.map((value, i) => ({ index: origin ? origin[i] : i, value }));
}

/** The result of salvaging one value: undefined data means nothing of it could be used. */
export interface Salvaged {
  ok: boolean;
  data?: unknown;
}

interface Def {
  type: string;
  innerType?: z.ZodType;
  element?: z.ZodType;
  shape?: Record<string, z.ZodType>;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

/** Config-path spelling of a child path (`segments[2].dhcp`). */
function child(path: string, key: string | number): string {
  return typeof key === "number" ? `${path}[${key}]` : path ? `${path}.${key}` : key;
}

/**
 * Salvages `value` against `schema`. `incomplete` collects the paths (without the `router:` namespace) of lists
 * that lost elements and of values that were left out.
 */
export function salvage(schema: z.ZodType, value: unknown, path: string, incomplete: Set<string>): Salvaged {
  const r = schema.safeParse(value);
  if (r.success) return { ok: true, data: r.data };
  const def = defOf(schema);
  switch (def.type) {
    case "optional":
    case "nullable":
    case "default":
    case "prefault":
      return value === undefined ? fail(path, incomplete) : salvage(def.innerType!, value, path, incomplete);
    case "array": {
      if (!Array.isArray(value)) return fail(path, incomplete);
      const out: unknown[] = [];
      const origin: number[] = [];
      value.forEach((v, i) => {
        const e = salvage(def.element!, v, child(path, i), incomplete);
        if (!e.ok) return;
        out.push(e.data);
        origin.push(i);
      });
      if (out.length < value.length) incomplete.add(path);
      ORIGIN.set(out, origin);
      return { ok: true, data: out };
    }
    case "object": {
      if (value === null || typeof value !== "object" || Array.isArray(value)) return fail(path, incomplete);
      const out: Record<string, unknown> = {};
      for (const [key, field] of Object.entries(def.shape!)) {
        const f = salvage(field, (value as Record<string, unknown>)[key], child(path, key), incomplete);
        if (!f.ok) return fail(path, incomplete);
        if (f.data !== undefined) out[key] = f.data;
      }
      return { ok: true, data: out };
    }
    default:
      return fail(path, incomplete);
  }
}

function fail(path: string, incomplete: Set<string>): Salvaged {
  incomplete.add(path);
  return { ok: false };
}
