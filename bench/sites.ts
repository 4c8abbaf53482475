/** Deterministic sites of any size for benchmarks: the dev site with N segments instead of five. */
import { stringify, parse } from "yaml";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(__dirname, "..");

/** Pulumi.<stack>.yaml text of a site with `n` segments (n ≤ 200), each with IPv4, IPv6 and a reservation. */
export function siteWithSegments(n: number): string {
  const dev = parse(readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, unknown> };
  const zones = ["mgmt", "trusted", "iot", "guest", "servers"];
  const segments = Array.from({ length: n }, (_, i) => {
    const vlan = 10 + i;
    const third = i; // 172.<16+i/256>.<i%256>.0/24
    return {
      name: i === 0 ? "mgmt" : `seg${vlan}`,
      vlan,
      zone: i === 0 ? "mgmt" : zones[1 + (i % 4)],
      ipv4: { cidr: `172.${16 + Math.floor(third / 256)}.${third % 256}.0/24` },
      ipv6: { prefix: `fd12:3456:789a:${vlan.toString(16)}::/64` },
      dhcp: {
        reservations: [
          {
            name: `host${vlan}`,
            mac: `00:1a:2b:00:${(vlan >> 8).toString(16).padStart(2, "0")}:${(vlan & 255).toString(16).padStart(2, "0")}`,
            ipv4: `172.${16 + Math.floor(third / 256)}.${third % 256}.10`,
          },
        ],
      },
    };
  });
  const config: Record<string, unknown> = { ...dev.config, "router:segments": segments };
  config["router:node"] = {
    ...(dev.config["router:node"] as Record<string, unknown>),
    managementAddress: "172.16.0.1",
  };
  return stringify({ config });
}
