/**
 * A model of pulumi-random (the Terraform random provider bridged; the Go module proxy does not serve it, see
 * tools/README.md) for the resources the node part creates: random:index/randomPassword:RandomPassword,
 * random:index/randomString:RandomString and random:index/randomBytes:RandomBytes. It follows hashicorp/terraform-provider-random internal/provider
 * resource_string.go / resource_password.go and internal/random/string.go (character sets lower, upper, numeric
 * and special `!@#$%&*()-_=+[]{}<>:?` or `override_special`; each enabled set defaults to true; `min_*` counts
 * met first, the rest drawn from all enabled sets, then shuffled, all from crypto/rand; a string's id is its
 * result, a password's id is "none" and its result sensitive) and
 * resource_bytes.go (`length` bytes from crypto/rand as `base64` and `hex`, both sensitive). Every input change
 * (keepers included) replaces the resource. The bridge marks sensitive outputs secret: RandomBytes' base64/hex,
 * RandomPassword's result. Not modelled: RandomPassword's bcryptHash output (the program does not use it).
 */
import { randomBytes, randomInt } from "node:crypto";
import type * as provider from "@pulumi/pulumi/provider";
import { changedKeys, plain, secret, urnType, type Props } from "./wire";

const LOWER = "abcdefghijklmnopqrstuvwxyz";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const NUMERIC = "0123456789";
const SPECIAL = "!@#$%&*()-_=+[]{}<>:?";

interface StringInputs {
  length: number;
  lower: boolean;
  upper: boolean;
  numeric: boolean;
  special: boolean;
  minLower: number;
  minUpper: number;
  minNumeric: number;
  minSpecial: number;
  overrideSpecial?: string;
}

const pick = (set: string) => set[randomInt(set.length)]!;

function randomString(i: StringInputs): string {
  const special = i.overrideSpecial ?? SPECIAL;
  const sets: [boolean, string, number][] = [
    [i.lower, LOWER, i.minLower],
    [i.upper, UPPER, i.minUpper],
    [i.numeric, NUMERIC, i.minNumeric],
    [i.special, special, i.minSpecial],
  ];
  const all = sets
    .filter(([on]) => on)
    .map(([, s]) => s)
    .join("");
  if (!all) throw new Error("random: at least one character set must be enabled");
  const chars = sets.flatMap(([, s, min]) => Array.from({ length: min }, () => pick(s)));
  while (chars.length < i.length) chars.push(pick(all));
  for (let k = chars.length - 1; k > 0; k--) {
    const j = randomInt(k + 1);
    [chars[k], chars[j]] = [chars[j]!, chars[k]!];
  }
  return chars.join("");
}

const STRING_DEFAULTS = {
  lower: true,
  upper: true,
  numeric: true,
  special: true,
  minLower: 0,
  minUpper: 0,
  minNumeric: 0,
  minSpecial: 0,
};
const STRING_INPUTS = [
  "keepers",
  "length",
  "lower",
  "upper",
  "numeric",
  "number",
  "special",
  "minLower",
  "minUpper",
  "minNumeric",
  "minSpecial",
  "overrideSpecial",
];

const STRING = "random:index/randomString:RandomString";
const PASSWORD = "random:index/randomPassword:RandomPassword";
const BYTES = "random:index/randomBytes:RandomBytes";
const MODELLED = [STRING, PASSWORD, BYTES];

/** The provider, as the `random` plugin at `version`. */
export function randomProvider(version: string): provider.Provider {
  const kind = (urn: string) => {
    const t = urnType(urn);
    if (!MODELLED.includes(t)) throw new Error(`this stand-in of pulumi-random does not model ${t}`);
    return t;
  };
  const isString = (urn: string) => kind(urn) !== BYTES;
  const inputsOf = (urn: string) => (isString(urn) ? STRING_INPUTS : ["keepers", "length"]);
  return {
    version,
    async check(urn, _olds, news: Props) {
      const failures =
        typeof plain(news.length) === "number" && (plain(news.length) as number) >= 1
          ? []
          : [{ property: "length", reason: "length must be at least 1" }];
      return { inputs: isString(urn) ? { ...STRING_DEFAULTS, ...news } : news, failures };
    },
    async diff(_id, urn, olds: Props, news: Props) {
      const changed = changedKeys(olds, news, inputsOf(urn));
      return { changes: changed.length > 0, replaces: changed };
    },
    async create(urn, news: Props) {
      const inputs = plain(news) as StringInputs;
      if (kind(urn) === PASSWORD) return { id: "none", outs: { ...news, result: secret(randomString(inputs)) } };
      if (kind(urn) === STRING) {
        const result = randomString(inputs);
        return { id: result, outs: { ...news, result } };
      }
      const b = randomBytes(inputs.length);
      return { id: "none", outs: { ...news, base64: secret(b.toString("base64")), hex: secret(b.toString("hex")) } };
    },
    async update(_id, _urn, olds: Props, news: Props) {
      return { outs: { ...olds, ...news } };
    },
    async delete() {},
  };
}
