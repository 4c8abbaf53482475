/**
 * Address arithmetic for the site model, on top of the `ip-address` library. Every function here is pure and
 * works on canonical text forms (IPv4 dotted quad, IPv6 lower-case compressed), so rendered files are stable.
 */
import { Address4, Address6 } from "ip-address";

export type Family = 4 | 6;

/** A parsed prefix: its family, length and first/last address as integers. */
export interface Prefix {
  family: Family;
  /** Canonical text, network address and length: `10.0.10.0/24`, `fd00:10::/64`. */
  cidr: string;
  length: number;
  first: bigint;
  last: bigint;
}

// Sites are validated pairwise (every prefix against every other), so the same strings are parsed many times:
// parsing goes through one memo. ip-address validates by throwing, which is slow; a colon decides the family
// to try first.
const familyMemo = new Map<string, Family | undefined>();
const valueMemo = new Map<string, bigint>();
const textMemo = new Map<string, string>();
const prefixMemo = new Map<string, Prefix>();

function parse(text: string): Address4 | Address6 | undefined {
  const f = familyOf(text);
  return f === 4 ? new Address4(text) : f === 6 ? new Address6(text) : undefined;
}

/** Family of an address or prefix in text form, or undefined when it is neither. */
export function familyOf(text: string): Family | undefined {
  if (typeof text !== "string") return undefined;
  if (familyMemo.has(text)) return familyMemo.get(text);
  let f: Family | undefined;
  if (text.includes(":")) f = !text.includes("%") && Address6.isValid(text) ? 6 : undefined;
  else f = Address4.isValid(text) ? 4 : undefined;
  if (familyMemo.size > 100_000) familyMemo.clear();
  familyMemo.set(text, f);
  return f;
}

/** True when `text` is a plain address (no prefix length) of the given family (or either family). */
export function isAddress(text: string, family?: Family): boolean {
  if (typeof text !== "string" || text.includes("/")) return false;
  const f = familyOf(text);
  return f !== undefined && (family === undefined || f === family);
}

/** True when `text` is `address/length` of the given family (or either family). */
export function isCidr(text: string, family?: Family): boolean {
  if (typeof text !== "string" || !/^[^/]+\/\d{1,3}$/.test(text)) return false;
  const f = familyOf(text);
  if (f === undefined || (family !== undefined && f !== family)) return false;
  const len = Number(text.split("/")[1]);
  return len >= 0 && len <= (f === 4 ? 32 : 128);
}

/** True when a CIDR has no host bits set (`10.0.0.0/24`, not `10.0.0.1/24`). */
export function isNetworkAligned(cidr: string): boolean {
  const p = parsePrefix(cidr);
  return toBigInt(cidr.split("/")[0]) === p.first;
}

/** Integer value of an address (prefix length ignored). */
export function toBigInt(address: string): bigint {
  const host = address.split("/")[0];
  const hit = valueMemo.get(host);
  if (hit !== undefined) return hit;
  const a = parse(host);
  if (!a) throw new Error(`not an IP address: ${address}`);
  const v = a.bigInt();
  if (valueMemo.size > 100_000) valueMemo.clear();
  valueMemo.set(host, v);
  return v;
}

/** Canonical text of an integer address of a family. */
export function fromBigInt(value: bigint, family: Family): string {
  const key = `${family}:${value}`;
  const hit = textMemo.get(key);
  if (hit !== undefined) return hit;
  const text = family === 4 ? Address4.fromBigInt(value).address : Address6.fromBigInt(value).correctForm();
  if (textMemo.size > 100_000) textMemo.clear();
  textMemo.set(key, text);
  return text;
}

/** Canonical text of an address: IPv6 lower-case and compressed. */
export function canonicalAddress(address: string): string {
  const f = familyOf(address);
  if (f === undefined) throw new Error(`not an IP address: ${address}`);
  return fromBigInt(toBigInt(address), f);
}

/** Parses `address/length`; the network is the address with host bits cleared. */
export function parsePrefix(cidr: string): Prefix {
  const hit = prefixMemo.get(cidr);
  if (hit) return hit;
  const p = computePrefix(cidr);
  if (prefixMemo.size > 100_000) prefixMemo.clear();
  prefixMemo.set(cidr, p);
  return p;
}

function computePrefix(cidr: string): Prefix {
  const f = familyOf(cidr);
  if (f === undefined || !cidr.includes("/")) throw new Error(`not a CIDR prefix: ${cidr}`);
  const length = Number(cidr.split("/")[1]);
  const bits = f === 4 ? 32n : 128n;
  const value = toBigInt(cidr);
  const hostBits = bits - BigInt(length);
  const first = (value >> hostBits) << hostBits;
  const last = first + (1n << hostBits) - 1n;
  return { family: f, cidr: `${fromBigInt(first, f)}/${length}`, length, first, last };
}

/** Canonical text of a prefix (`FD00:10:0::/64` → `fd00:10::/64`). */
export function canonicalCidr(cidr: string): string {
  return parsePrefix(cidr).cidr;
}

/** True when the two prefixes share at least one address. */
export function overlaps(a: string, b: string): boolean {
  const pa = parsePrefix(a);
  const pb = parsePrefix(b);
  return pa.family === pb.family && pa.first <= pb.last && pb.first <= pa.last;
}

/** True when `address` lies inside `cidr`. */
export function contains(cidr: string, address: string): boolean {
  const p = parsePrefix(cidr);
  if (familyOf(address) !== p.family) return false;
  const v = toBigInt(address);
  return v >= p.first && v <= p.last;
}

/** The address `offset` positions after the start of the prefix (offset may be negative from the end: -1 = last). */
export function nthAddress(cidr: string, offset: bigint | number): string {
  const p = parsePrefix(cidr);
  const o = BigInt(offset);
  const v = o >= 0n ? p.first + o : p.last + o + 1n;
  if (v < p.first || v > p.last) throw new Error(`offset ${offset} is outside ${cidr}`);
  return fromBigInt(v, p.family);
}

/** Number of addresses in a prefix. */
export function prefixSize(cidr: string): bigint {
  const p = parsePrefix(cidr);
  return p.last - p.first + 1n;
}

/** Dotted-quad netmask of an IPv4 prefix length. */
export function netmask4(length: number): string {
  const mask = length === 0 ? 0n : ((1n << 32n) - 1n) ^ ((1n << BigInt(32 - length)) - 1n);
  return fromBigInt(mask, 4);
}

/** Compares two addresses of the same family numerically (for stable sorting). */
export function compareAddresses(a: string, b: string): number {
  const x = toBigInt(a);
  const y = toBigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * The prefixes of a list that no other prefix of the list covers, in input order (duplicates once): what an
 * interval set may hold without "conflicting intervals".
 */
export function mergePrefixes(list: readonly string[]): string[] {
  const parsed = [...new Set(list)].map((c) => ({
    c,
    p: parsePrefix(c.includes("/") ? c : `${c}/${familyOf(c) === 4 ? 32 : 128}`),
  }));
  return parsed
    .filter(
      ({ p }, i) =>
        !parsed.some(
          ({ p: q }, j) =>
            j !== i &&
            q.family === p.family &&
            q.first <= p.first &&
            q.last >= p.last &&
            (q.length < p.length || j < i),
        ),
    )
    .map(({ c }) => c);
}
