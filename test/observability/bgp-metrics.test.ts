/**
 * router-bgp-metrics (images/observability) against the fake Talos node, whose BGPPeerStatuses follow its running
 * configuration and the neighbours around it (test/fixtures/fake-node/bgp.js): what the node exporter gets for
 * established, lost and BFD-stuck sessions and for a Talos API that does not answer. `promtool check metrics`
 * checks the exposition format.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FakeNode, type BgpNeighbour, type Faults } from "../helpers/fake-node";
import { BGP_NEIGHBOURS, nodeOptions, rendered, talosconfig, target, withBgp } from "../helpers/lifecycle-fixtures";
import { tempDir } from "../helpers/temp";
import { tier } from "../helpers/tier";
import { bgpNeighboursFile } from "../../components/observability-stack/files";
import { devSite } from "../helpers/dev-site";

const SCRIPT = join(__dirname, "../../images/observability/router-bgp-metrics");
const t = tier("BGP session metrics (the script, jq, promtool)", { commands: ["jq", "timeout", "promtool"] });

let node: FakeNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

/** Runs the script once against a node running the BGP site; returns the metrics file. */
async function scrape(
  opts: { neighbours?: BgpNeighbour[]; faults?: Faults; config?: string; address?: string } = {},
): Promise<string> {
  node = await FakeNode.start(
    nodeOptions({
      installed: true,
      bootstrapped: true,
      savedConfig: rendered(withBgp).config,
      bgpNeighbours: opts.neighbours ?? BGP_NEIGHBOURS,
      bgpEstablishMs: 200,
    }),
  );
  await node.fault(opts.faults ?? {});
  if (opts.config) {
    // A new configuration becomes the running one (its sessions start over), then the sessions settle.
    const file = join(tempDir("bgp-metrics-config-"), "config.yaml");
    writeFileSync(file, opts.config, { mode: 0o600 });
    const run = await node.run(
      `talosctl --talosconfig "$TALOSCONFIG" -n ${target.address} -e ${target.address} apply-config --mode=no-reboot --file ${file}`,
      { env: { TALOSCONFIG: writeTalosconfig() } },
    );
    expect(run.code, run.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
  }
  const dir = tempDir("bgp-metrics-");
  const { site } = devSite(withBgp);
  writeFileSync(join(dir, "neighbours"), bgpNeighboursFile(site));
  const out = join(dir, "bgp.prom");
  const run = await node.run(`${SCRIPT} ${dir}/neighbours ${opts.address ?? target.address} ${out} 0`, {
    env: { TALOSCONFIG: writeTalosconfig() },
  });
  expect(run.code, run.stderr).toBe(0);
  const text = readFileSync(out, "utf8");
  const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  expect(check.status, `${check.stdout}${check.stderr}\n${text}`).toBe(0);
  return text;
}

function writeTalosconfig(): string {
  const file = join(tempDir("bgp-metrics-tc-"), "config");
  writeFileSync(file, talosconfig(), { mode: 0o600 });
  return file;
}

/** The samples of the file, `name{labels}` → value. */
function samples(text: string): Record<string, number> {
  return Object.fromEntries(
    text
      .split("\n")
      .filter((l) => l && !l.startsWith("#") && !l.startsWith("router_bgp_metrics_timestamp"))
      .map((l) => {
        const i = l.lastIndexOf(" ");
        return [l.slice(0, i), Number(l.slice(i + 1))];
      }),
  );
}

const V4 = '{neighbour="10.50.0.250",asn="65020"}';
const V6 = '{neighbour="fd12:3456:789a:50::fe",asn="65030"}';

describe.skipIf(!t.ok)("router-bgp-metrics", () => {
  it("reports every neighbour's session, its BFD and what it sent", async () => {
    expect(samples(await scrape())).toEqual({
      [`router_bgp_session_established${V4}`]: 1,
      [`router_bgp_session_established${V6}`]: 1,
      [`router_bgp_bfd_up${V4}`]: 1,
      [`router_bgp_received_prefixes${V4}`]: 3,
      [`router_bgp_received_prefixes${V6}`]: 1,
      router_bgp_status_readable: 1,
    });
  });

  it("a neighbour that does not answer is down, with nothing received", async () => {
    const s = samples(await scrape({ neighbours: [BGP_NEIGHBOURS[0]] }));
    expect(s[`router_bgp_session_established${V6}`]).toBe(0);
    expect(s[`router_bgp_received_prefixes${V6}`]).toBe(0);
    expect(s[`router_bgp_session_established${V4}`]).toBe(1);
  });

  it("a session that came back with its BFD stuck in Init is established with BFD down", async () => {
    const s = samples(
      await scrape({
        faults: { bfdStuckInit: ["10.50.0.250"] },
        config: rendered((r) => withBgp(r, { routerId: "10.50.0.9" })).config,
      }),
    );
    expect(s[`router_bgp_session_established${V4}`]).toBe(1);
    expect(s[`router_bgp_bfd_up${V4}`]).toBe(0);
  });

  it("a Talos API that does not answer writes no session (unknown is not down) and says so", async () => {
    const s = samples(await scrape({ address: "10.10.0.99" }));
    expect(s).toEqual({ router_bgp_status_readable: 0 });
  });
});
