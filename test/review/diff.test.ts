/**
 * `npm run diff` on pairs of sites in a throwaway repository (a copy of this project with git history): the
 * working tree against a base ref, a committed change against the commit before it, a new stack, a Talos
 * upgrade, a change that breaks a mandatory policy and a base that is no commit — each with its exit code and
 * the summary lines a reviewer acts on, and the unified diff of the artifacts.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { tier } from "../helpers/tier";
import { cli, commitAll, GUEST_WEB_RULE, editStack, projectRepo } from "./repo";

const tools = tier("npm run diff (git worktrees, the diff tool)", { commands: ["git", "diff"] });

function diff(repo: string, ...args: string[]) {
  return cli("diff", ["--repo", repo, ...args]);
}

type Config = Record<string, unknown>;
const fw = (c: Config) => c["router:firewall"] as { policies: Config[]; rules: Config[] };

/** One change touching the firewall, the WAN, the segments, the DNS profile, the IDS and BGP. */
function change(c: Config): void {
  fw(c).rules.push(GUEST_WEB_RULE);
  (c["router:portForwards"] as Config[]).push({
    name: "web",
    protocol: "tcp",
    port: 8080,
    to: "10.50.0.12",
    toPort: 80,
  });
  (c["router:segments"] as Config[]).push({
    name: "lab",
    vlan: 60,
    zone: "guest",
    ipv4: { cidr: "10.60.0.0/24" },
    ipv6: { prefix: "fd12:3456:789a:60::/64" },
  });
  c["router:dns"] = { upstreams: [{ address: "9.9.9.9", protocol: "DoT", tlsServerName: "dns.quad9.net" }] };
  const ids = c["router:ids"] as { segments: string[]; rules?: Config };
  ids.segments.push("trusted");
  ids.rules = { ...ids.rules, updateInterval: "6h" };
  c["router:routing"] = {
    bgp: { asn: 65010, routerId: "10.50.0.1", neighbors: [{ address: "10.50.0.250", asn: 65020 }] },
  };
}

/** Moves a stack to Talos v1.14.7 (a new release: a new installer image). */
function talos1147(c: Config): void {
  c["router:talos"] = {
    version: "v1.14.7",
    kubernetesVersion: "v1.37.1",
    installerImage:
      "factory.talos.dev/metal-installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.14.7",
  };
}

let repo: string;
let uncommitted: ReturnType<typeof diff>;

beforeAll(() => {
  if (!tools.ok) return;
  repo = projectRepo("diff");
  editStack(repo, "dev", change);
  uncommitted = diff(repo, "--stack", "dev");
}, 240_000);

describe.skipIf(!tools.ok)("npm run diff", () => {
  it("says what the working tree changes, section by section, and exits 1", () => {
    const { status, out, err } = uncommitted;
    expect(status, err).toBe(1);
    expect(out).toMatch(/^## Stack dev: \d+ artifacts change \(HEAD \([0-9a-f]{12}\) → working tree\)/);
    const sections = out.split("\n### ").map((s) => s.split("\n")[0]);
    expect(sections).toEqual(
      expect.arrayContaining([
        "Zone matrix (new connections)",
        "Newly reachable from the WAN",
        "Segments, addresses and pools",
        "Port forwards",
        "DNS, IDS and other profiles",
        "Host (Talos)",
        "Resources",
        "Artifacts",
        "Unified diffs",
      ]),
    );
    expect(out).toContain("- guest → servers: reject → reject + accept tcp/443 (guest-web)");
    expect(out).toContain("- tcp/8080 → 10.50.0.12:80 in servers (forward web)");
    expect(out).toMatch(
      /- added lab \(VLAN 60 on lan0\.60, zone guest\): 10\.60\.0\.0\/24 \(router 10\.60\.0\.1\), fd12:3456:789a:60::\/64 \(router fd12:3456:789a:60::1\); pools 10\.60\.0\.\d+-10\.60\.0\.\d+/,
    );
    expect(out).toContain("- added web: tcp/8080 on wan0, wan1 → 10.50.0.12:80 (servers), from anywhere");
    expect(out).toMatch(
      /- node\.dns\.upstreams: 1\.1\.1\.1 DoT cloudflare-dns\.com, .* → 9\.9\.9\.9 DoT dns\.quad9\.net/,
    );
    expect(out).toMatch(/- ids\.links: wan0, wan1, lan0\.50 → wan0, wan1, lan0\.50, lan0\.20\n/);
    expect(out).toMatch(/- ids\.rules: et-open every 24h; [^\n]* → et-open every 6h; /);
    expect(out).toContain("- now inspected: trusted → iot (detect)");
    expect(out).toMatch(/- configuration layers that change: .*\b(segments|firewall|dataplane|node)\b/);
    for (const l of ["segments", "firewall", "dataplane", "node"])
      expect(out).toMatch(new RegExp(`layers that change: [^\\n]*\\b${l}\\b`));
    expect(out).toMatch(/- talos\/lab-rtr1\.yaml: [^\n]*VLANConfig\/lan0\.60 added[^\n]*— applied with the try path/);
    expect(out).toContain(
      "- talos/lab-rtr1.yaml: BGP sessions start (new neighbour, not held by the try): 10.50.0.250",
    );
    expect(out).not.toMatch(/NEEDS A REBOOT|TALOS UPGRADE|BGP SESSIONS RESTART/);
    expect(out).toContain("- + lab-segment-lab (router:network:VlanSegment)");
    expect(out).toContain("--- base/dataplane/router.nft\n+++ head/dataplane/router.nft");
    expect(out).toMatch(/^\+\t\t# rule guest-web$/m);
  });

  it("compares a committed change with the commit before it, and finds nothing between a commit and itself", () => {
    commitAll(repo, "the change");
    const before = diff(repo, "--stack", "dev", "--base", "HEAD~1", "--summary-only");
    expect(before.status, before.err).toBe(1);
    expect(before.out).toContain("- guest → servers: reject → reject + accept tcp/443 (guest-web)");
    expect(before.out).not.toContain("### Unified diffs");
    const same = diff(repo, "--stack", "dev");
    expect(same.status, same.err).toBe(0);
    expect(same.out).toMatch(/^## Stack dev: no change/);
  }, 240_000);

  it("shows a new stack as new, and a Talos release change as an upgrade with a reboot", () => {
    editStack(repo, "branch", talos1147);
    const fresh = diff(repo, "--stack", "branch", "--summary-only");
    expect(fresh.status, fresh.err).toBe(1);
    expect(fresh.out).toContain("The stack is new: it does not exist at HEAD");
    commitAll(repo, "a branch site");
    editStack(repo, "dev", talos1147);
    const upgrade = diff(repo, "--stack", "dev", "--summary-only");
    expect(upgrade.status, upgrade.err).toBe(1);
    expect(upgrade.out).toMatch(
      /- TALOS UPGRADE \(reboot into a new installer image, rolled back if unhealthy\): talos\.version: v1\.14\.6 → v1\.14\.7; lab-dataplane-installer rebuilds/,
    );
  }, 400_000);

  it("exits 2 when the working tree breaks a mandatory policy, and when the base is no commit", () => {
    editStack(repo, "dev", (c) => fw(c).policies.unshift({ from: "wan", to: "trusted", action: "accept" }));
    const open = diff(repo, "--stack", "dev", "--summary-only");
    expect(open.status).toBe(2);
    expect(open.out).toContain("- wan → trusted: drop → accept");
    expect(open.out).toContain(
      "- [mandatory] wan-accepts-only-forwards: wan → trusted accepts every new connection from the internet",
    );
    expect(open.err).toMatch(/stack dev: the working tree breaks 1 mandatory policies/);
    const bad = diff(repo, "--stack", "dev", "--base", "no-such-ref");
    expect(bad.status).toBe(2);
    expect(bad.err).toMatch(/--base no-such-ref is not a commit of /);
  }, 240_000);
});
