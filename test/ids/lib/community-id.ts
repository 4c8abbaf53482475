/**
 * Community ID v1 of a TCP/UDP flow over IPv4, seed 0, computed independently of Suricata from Corelight's
 * community-id-spec: SHA-1 over the seed (2 bytes), the lower endpoint's address, the other's, the protocol, a
 * pad byte and the two ports (network order; the endpoint with the lower address, then port, first), base64,
 * prefixed "1:".
 */
import { createHash } from "node:crypto";

export function communityId(src: string, sport: number, dst: string, dport: number, proto: number): string {
  const endpoint = (a: string, p: number) => Buffer.from([...a.split(".").map(Number), p >> 8, p & 0xff]);
  const a = endpoint(src, sport);
  const b = endpoint(dst, dport);
  const [lo, hi] = Buffer.compare(a, b) <= 0 ? [a, b] : [b, a];
  const body = Buffer.concat([
    Buffer.from([0, 0]),
    lo.subarray(0, 4),
    hi.subarray(0, 4),
    Buffer.from([proto, 0]),
    lo.subarray(4),
    hi.subarray(4),
  ]);
  return `1:${createHash("sha1").update(body).digest("base64")}`;
}
