/**
 * Raw prerouting: anti-spoofing before connection tracking, so forged sources never create state. Pure.
 */
import { chain } from "./common";

export function rawChains(f: { wanLinks: string[]; internal6: string[] }): string[] {
  return chain(
    "raw_prerouting",
    [
      "# a segment may only source addresses routed back through it (DHCP discovery and DAD excepted)",
      "iifname @lan_links ip saddr 0.0.0.0 udp dport 67 accept",
      "iifname @lan_links ip6 saddr :: accept",
      "iifname @lan_links fib saddr . iif oif missing drop",
      "# the internet never sources our own prefixes",
      ...(f.wanLinks.length ? ["iifname @wan_links ip saddr @internal4 drop"] : []),
      ...(f.wanLinks.length && f.internal6.length ? ["iifname @wan_links ip6 saddr @internal6 drop"] : []),
    ],
    "type filter hook prerouting priority raw; policy accept;",
  );
}
