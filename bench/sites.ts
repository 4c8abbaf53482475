/**
 * Deterministic sites of any size for benchmarks: the dev site (its whole policy, forwards and services) with
 * extra segments added until it has N.
 */
import { stringify, parse } from "yaml";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(__dirname, "..");

/** Pulumi.<stack>.yaml text of the dev site grown to `n` segments (5 ≤ n ≤ 200), each with IPv4, IPv6 and a reservation. */
export function siteWithSegments(n: number): string {
  const dev = parse(readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, unknown> };
  const segments = [...(dev.config["router:segments"] as unknown[])];
  // Extra segments go to zones outside the mDNS reflection group (Avahi names a group's links on one line).
  const zones = ["servers", "guest", "mgmt"];
  for (let i = 0; segments.length < n; i++) {
    const vlan = 100 + i;
    segments.push({
      name: `seg${vlan}`,
      vlan,
      zone: zones[i % zones.length],
      ipv4: { cidr: `172.${16 + Math.floor(i / 256)}.${i % 256}.0/24` },
      ipv6: { prefix: `fd12:3456:789b:${vlan.toString(16)}::/64` },
      dhcp: {
        reservations: [
          {
            name: `host${vlan}`,
            mac: `00:1a:2b:01:${(vlan >> 8).toString(16).padStart(2, "0")}:${(vlan & 255).toString(16).padStart(2, "0")}`,
            ipv4: `172.${16 + Math.floor(i / 256)}.${i % 256}.10`,
          },
        ],
      },
    });
  }
  return stringify({ ...dev, config: { ...dev.config, "router:segments": segments } });
}
