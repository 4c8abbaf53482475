/**
 * Talos link aliases: on Talos, LinkAliasConfig names NICs (wan0, lan0) through the link's ifalias
 * while the kernel name stays enp1s0 & co. The loader resolves every configured interface by
 * kernel name, else by ifalias, and rewrites ruleset defines whose value is only an alias. Here a
 * veth named like a PCI NIC carries the alias wan0; links are renamed, appear late, swap aliases,
 * and an alias is given to two links at once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildProcess, spawnSync } from "node:child_process";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tier } from "../helpers/tier";
import {
  BUILD_COMMANDS,
  LOADER,
  buildEbpf,
  ensureBpffs,
  inNetns,
  ip,
  jsonLines,
  metricsUp,
  parseMetrics,
  spawnInNetns,
  stopProcess,
  tempDir,
  waitFor,
} from "./lib";

const t = tier("ebpf-aliases", { root: true, commands: [...BUILD_COMMANDS, "ip", "nsenter", "curl", "nft"] });

const ID = process.pid % 100000;
const RTR = `alr${ID}`;
const PEER = `alp${ID}`;
const PIN = `/sys/fs/bpf/router-dataplane-alias-${process.pid}`;
const PORT = 22000 + (process.pid % 1000);

interface LogLine {
  level: string;
  event: string;
  msg: string;
}

const RULESET = `# physical links are named by their Talos alias (rendered: define if_<alias> = "<alias>")
define if_wan0 = "wan0"
define if_lan0 = "lan0"

table inet router {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname $if_wan0 counter comment "from the WAN"
		iifname $if_lan0 counter comment "from the trunk"
	}
}
`;

describe.skipIf(!t.ok)(
  "Talos link aliases: interfaces and ruleset defines resolve by kernel name, else by ifalias",
  () => {
    let dir = "";
    let loader: ChildProcess | undefined;
    let log = "";

    const events = () => jsonLines<LogLine>(log);
    const metrics = () => parseMetrics(inNetns(RTR, "curl", ["-sf", `http://127.0.0.1:${PORT}/metrics`]));
    const table = () => inNetns(RTR, "nft", ["list", "table", "inet", "router"]);
    const xdpOn = (dev: string) => /prog\/xdp id \d+ name wan_guard/.test(ip("-n", RTR, "link", "show", dev));
    const pins = () => readdirSync(join(PIN, "links")).sort();

    /** A veth in the router namespace named name (peer in PEER), with an optional alias. */
    function link(name: string, alias?: string): void {
      ip("link", "add", name, "netns", RTR, "type", "veth", "peer", "name", `p${name}`.slice(0, 15), "netns", PEER);
      if (alias) ip("-n", RTR, "link", "set", "dev", name, "alias", alias);
      ip("-n", RTR, "link", "set", name, "up");
    }

    beforeAll(async () => {
      buildEbpf("loader");
      ensureBpffs();
      dir = tempDir("dp-alias-");
      for (const ns of [RTR, PEER]) spawnSync("ip", ["netns", "del", ns]);
      ip("netns", "add", RTR);
      ip("netns", "add", PEER);
      ip("-n", RTR, "link", "set", "lo", "up");
      link("enx0a1b2c", "wan0"); // the WAN NIC: kernel name and Talos alias differ
      link("enp2s0", "lan0"); // the trunk
      writeFileSync(join(dir, "router.nft"), RULESET);
      writeFileSync(
        join(dir, "dataplane.conf"),
        `[global]
pin_root = ${PIN}
metrics_address = 127.0.0.1
metrics_port = ${PORT}
state_dir = ${join(dir, "state")}
nft_ruleset = ${join(dir, "router.nft")}

[interface wan0]
role = wan

[interface lan0.30]        ; a VLAN link that appears after the loader started
role = segment
segment = iot
segment_id = 30
`,
      );
      loader = spawnInNetns(RTR, LOADER, ["--config", join(dir, "dataplane.conf")]);
      loader.stderr?.on("data", (d) => (log += d));
      await waitFor("the loader to start", () => {
        if (loader?.exitCode !== null) throw new Error(`loader exited:\n${log}`);
        return metricsUp(metrics);
      });
    }, 600_000);

    afterAll(async () => {
      await stopProcess(loader);
      for (const ns of [RTR, PEER]) spawnSync("ip", ["netns", "del", ns]);
      rmSync(PIN, { recursive: true, force: true });
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("attaches [interface wan0] to the link whose alias is wan0, and rewrites the ruleset's alias defines to kernel names", () => {
      expect(xdpOn("enx0a1b2c")).toBe(true);
      expect(pins()).toEqual(["xdp@wan0"]);
      expect(table()).toMatch(/iifname "enx0a1b2c" counter .*comment "from the WAN"/);
      expect(table()).toMatch(/iifname "enp2s0" counter .*comment "from the trunk"/);
      const m = metrics();
      expect(m.get('router_dataplane_interface_attached{interface="wan0",link="enx0a1b2c"}')).toBe(1);
      expect(m.get('router_dataplane_interface_attached{interface="lan0.30",link=""}')).toBe(0);
      // the missing link is named with file and line, and does not stop the loader
      expect(
        events().some(
          (e) => e.event === "link_missing" && /dataplane\.conf:\d+: \[interface lan0\.30\]: no link/.test(e.msg),
        ),
      ).toBe(true);
    });

    it("attaches a link that appears after the start", async () => {
      link("lan0.30");
      await waitFor(
        "tcx on lan0.30",
        () => pins().includes("tcx_ingress@lan0:30") && pins().includes("tcx_egress@lan0:30"),
      );
      await waitFor(
        "the metric",
        () => metrics().get('router_dataplane_interface_attached{interface="lan0.30",link="lan0.30"}') === 1,
      );
    });

    it("follows a rename of the aliased NIC: the guard stays on it and the ruleset names the new kernel name", async () => {
      const progBefore = ip("-n", RTR, "link", "show", "enx0a1b2c").match(/prog\/xdp id (\d+)/)?.[1];
      ip("-n", RTR, "link", "set", "enx0a1b2c", "down");
      ip("-n", RTR, "link", "set", "enx0a1b2c", "name", "enp1s0");
      ip("-n", RTR, "link", "set", "enp1s0", "up");
      await waitFor("the ruleset to follow", () => /iifname "enp1s0" counter .*comment "from the WAN"/.test(table()));
      expect(xdpOn("enp1s0")).toBe(true);
      expect(ip("-n", RTR, "link", "show", "enp1s0").match(/prog\/xdp id (\d+)/)?.[1]).toBe(progBefore);
      await waitFor(
        "the metric",
        () => metrics().get('router_dataplane_interface_attached{interface="wan0",link="enp1s0"}') === 1,
      );
    });

    it("moves the guard when the alias moves to another link", async () => {
      link("enp3s0");
      ip("-n", RTR, "link", "set", "dev", "enp1s0", "alias", "spare");
      ip("-n", RTR, "link", "set", "dev", "enp3s0", "alias", "wan0");
      await waitFor("XDP on enp3s0 only", () => xdpOn("enp3s0") && !xdpOn("enp1s0"));
      await waitFor("the ruleset to follow", () => /iifname "enp3s0" counter .*comment "from the WAN"/.test(table()));
      expect(pins()).toContain("xdp@wan0");
    });

    it("refuses an alias carried by two links, naming file, line and both links, and keeps what runs", async () => {
      const nftFailures = metrics().get('router_dataplane_reload_failures_total{kind="nftables"}') ?? 0;
      ip("-n", RTR, "link", "set", "dev", "enp1s0", "alias", "wan0"); // now enp1s0 and enp3s0 say wan0
      await waitFor("the interface error", () =>
        events().some(
          (e) =>
            e.event === "link_ambiguous" &&
            /dataplane\.conf:\d+: \[interface wan0\]: no link is named wan0 and several carry it as their alias \((enp1s0 and enp3s0|enp3s0 and enp1s0)\)/.test(
              e.msg,
            ),
        ),
      );
      await waitFor("the ruleset error", () =>
        events().some(
          (e) =>
            e.event === "nft_rejected" &&
            /router\.nft:2: define if_wan0 = "wan0": no link is named wan0 and several carry it as their alias/.test(
              e.msg,
            ),
        ),
      );
      expect(metrics().get('router_dataplane_reload_failures_total{kind="nftables"}')).toBe(nftFailures + 1);
      // the running state stays: the guard on enp3s0, the ruleset as it was
      expect(xdpOn("enp3s0")).toBe(true);
      expect(xdpOn("enp1s0")).toBe(false);
      expect(table()).toMatch(/iifname "enp3s0" counter .*comment "from the WAN"/);
    });
  },
);
