/**
 * Property values as a provider plugin sees them over the provider protocol once it accepts secrets
 * (pulumi/pulumi sdk/nodejs/runtime/rpc.ts, sdk/go/common/resource/plugin/rpc.go): a secret is an object carrying
 * Pulumi's secret signature and its value; a value the engine does not know yet (preview) is the unknown sentinel.
 */
import { randomBytes } from "node:crypto";

/** The key and value marking a special object (a secret) in a property map. */
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
/** The engine's sentinel for a value not known yet. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export type Props = Record<string, unknown>;

/** Whether a property value is a secret. */
export function isSecret(v: unknown): boolean {
  return typeof v === "object" && v !== null && (v as Props)[SIG_KEY] === SECRET_SIG;
}

/** A value marked secret (unchanged when it is one already). */
export function secret(v: unknown): unknown {
  return isSecret(v) ? v : { [SIG_KEY]: SECRET_SIG, value: v };
}

/** The value with every secret marker removed, however deep. */
export function plain(v: unknown): unknown {
  if (isSecret(v)) return plain((v as Props).value);
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** Whether the value holds a secret anywhere. */
export function holdsSecret(v: unknown): boolean {
  if (isSecret(v)) return true;
  if (Array.isArray(v)) return v.some(holdsSecret);
  if (typeof v === "object" && v !== null) return Object.values(v).some(holdsSecret);
  return false;
}

/** Whether the value holds an unknown anywhere. */
export function holdsUnknown(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(holdsUnknown);
  if (typeof v === "object" && v !== null) return Object.values(v).some(holdsUnknown);
  return false;
}

/** Structural equality of plain values (secret markers ignored; an unknown equals nothing). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (holdsUnknown(a) || holdsUnknown(b)) return false;
  return JSON.stringify(sorted(plain(a))) === JSON.stringify(sorted(plain(b)));
}

function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (typeof v === "object" && v !== null)
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sorted((v as Props)[k])]),
    );
  return v;
}

/** The input keys among `keys` whose value differs between the old state and the new inputs. */
export function changedKeys(olds: Props, news: Props, keys: readonly string[]): string[] {
  return keys.filter((k) => !sameValue(olds[k], news[k]));
}

/** The resource's name: the last part of its URN. */
export function urnName(urn: string): string {
  return urn.split("::").at(-1)!;
}

/** The resource's type token: the last type of the URN's type chain. */
export function urnType(urn: string): string {
  return urn.split("::")[2]!.split("$").at(-1)!;
}

/** A resource id as resource.NewUniqueHex makes it (pulumi/pulumi sdk/go/common/resource/names.go): name + random hex. */
export function uniqueHex(name: string, bytes = 8): string {
  return `${name}${randomBytes(bytes).toString("hex")}`;
}
