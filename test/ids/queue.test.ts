/**
 * The IPS queue's two renderings take the same packets (components/ids-stack/queue.ts): the nft `ips` chain for
 * the router and the iptables-nft rules (ids/ips.iptables) this test machine's kernel loads. Both are loaded at
 * once in a router namespace whose links carry the dev site's names — nft's queue verdict as `counter accept`
 * (this kernel has no nft queue expression; the match is what is compared), iptables' NFQUEUE with bypass and no
 * listener, so every packet goes on through both. For every ordered pair of links, UDP datagrams (IPv4 and IPv6)
 * cross the router one way, from one link's host to the other's, which drops them unanswered; both renderings must
 * count the same packets for every pair, and count them exactly for the pairs the site makes inline (from the
 * plan's zones, by link, in that direction only).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { tier } from "../helpers/tier";
import { devSite } from "../helpers/dev-site";
import { inNetns, ip } from "../ebpf/lib";
import { planIds } from "../../components/ids-stack/plan";
import { ipsIptables, ipsRuleset } from "../../components/ids-stack/queue";

const t = tier("ids queue renderings", {
  root: true,
  commands: [
    "ip",
    "nft",
    "iptables-restore",
    "ip6tables-restore",
    "iptables-save",
    "ip6tables-save",
    "busybox",
    "sysctl",
  ],
});

const TAG = `idsq${process.pid}`;
const ROUTER = `${TAG}-r`;
const PACKETS = 3;
/** PACKETS UDP datagrams to port 9 of argv[1], IPv4 or IPv6. */
const SEND = [
  "import socket, sys",
  "s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)",
  `for _ in range(${PACKETS}): s.sendto(b'ips', (sys.argv[1], 9))`,
].join("\n");

describe.skipIf(!t.ok)("the IPS queue, nft and iptables-nft", () => {
  const { site, plan } = devSite();
  const ids = planIds(site, plan);
  const inline = new Set(
    ids.pairs.flatMap((p) => p.inLinks.flatMap((i) => p.outLinks.filter((o) => o !== i).map((o) => `${i}>${o}`))),
  );
  // the inline pairs' links and one link outside them
  const links = [
    ...new Set([...ids.pairs.flatMap((p) => [...p.inLinks, ...p.outLinks]), ...plan.segments.map((s) => s.link)]),
  ].slice(0, 5);
  const host = (i: number) => `${TAG}-h${i}`;

  const nftCount = () => {
    const out = inNetns(ROUTER, "nft", ["list", "chain", "inet", "router", "ips"]);
    return [...out.matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  };
  const iptCount = () => {
    let n = 0;
    for (const save of ["iptables-save", "ip6tables-save"])
      for (const m of inNetns(ROUTER, save, ["-c", "-t", "security"]).matchAll(/^\[(\d+):\d+\] -A ROUTER-IPS /gm))
        n += Number(m[1]);
    return n;
  };

  beforeAll(() => {
    ip("netns", "add", ROUTER);
    inNetns(ROUTER, "sysctl", ["-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
    links.forEach((link, i) => {
      ip("netns", "add", host(i));
      ip("link", "add", `${TAG}x${i}`, "type", "veth", "peer", "name", `${TAG}y${i}`);
      ip("link", "set", `${TAG}x${i}`, "netns", ROUTER);
      ip("-n", ROUTER, "link", "set", `${TAG}x${i}`, "name", link);
      ip("link", "set", `${TAG}y${i}`, "netns", host(i));
      ip("-n", ROUTER, "addr", "add", `10.99.${i}.1/24`, "dev", link);
      ip("-n", ROUTER, "addr", "add", `fd99:${i}::1/64`, "dev", link, "nodad");
      ip("-n", host(i), "addr", "add", `10.99.${i}.2/24`, "dev", `${TAG}y${i}`);
      ip("-n", host(i), "addr", "add", `fd99:${i}::2/64`, "dev", `${TAG}y${i}`, "nodad");
      for (const [ns, l] of [
        [ROUTER, link],
        [host(i), `${TAG}y${i}`],
        [host(i), "lo"],
      ])
        ip("-n", ns, "link", "set", l, "up");
      ip("-n", host(i), "route", "add", "default", "via", `10.99.${i}.1`);
      ip("-n", host(i), "-6", "route", "add", "default", "via", `fd99:${i}::1`);
      // the test's datagrams end here, unanswered (no ICMP error travels back through the router)
      inNetns(
        host(i),
        "nft",
        ["-f", "-"],
        "table inet h {\n chain i {\n  type filter hook input priority 0\n  udp dport 9 drop\n }\n}\n",
      );
    });
    const contribution = ipsRuleset(ids, (l) => `"${l}"`);
    const table = `table inet router {\n${contribution.objects!.join("\n")}\n}\n`;
    inNetns(ROUTER, "nft", ["-f", "-"], table.replace(/queue flags bypass to \S+/g, "counter accept"));
    for (const restore of ["iptables-restore", "ip6tables-restore"]) inNetns(ROUTER, restore, [], ipsIptables(ids));
  });

  afterAll(() => {
    for (const ns of [ROUTER, ...links.map((_, i) => host(i))]) spawnSync("ip", ["netns", "del", ns]);
  });

  it("covers inline pairs and links outside them", () => {
    expect(inline.size).toBeGreaterThan(0);
    expect(links.length).toBeGreaterThan(new Set([...inline].flatMap((p) => p.split(">"))).size);
  });

  it("counts the same packets in both renderings for every ordered pair of links", () => {
    const seen: string[] = [];
    links.forEach((from, a) =>
      links.forEach((to, b) => {
        if (a === b) return;
        const [n0, i0] = [nftCount(), iptCount()];
        for (const dst of [`10.99.${b}.2`, `fd99:${b}::2`]) {
          const r = spawnSync("ip", ["netns", "exec", host(a), "/usr/bin/python3", "-c", SEND, dst]);
          expect(r.status, `${from} > ${to}: ${dst}: ${String(r.stderr)}`).toBe(0);
        }
        const [n, i] = [nftCount() - n0, iptCount() - i0];
        seen.push(`${from}>${to}: nft ${n}, iptables ${i}`);
        expect(i, `${from} > ${to}`).toBe(n);
        // one way only (the receiver drops them without a reply): each rendering must tell the pair's direction
        const expected = inline.has(`${from}>${to}`) ? 2 * PACKETS : 0;
        expect(n, `${from} > ${to}`).toBe(expected);
      }),
    );
    expect(seen.length).toBe(links.length * (links.length - 1));
  });
});
