/**
 * The observability image (images/observability): built from Debian packages into an OCI layout with a
 * reproducible digest and self-contained — every daemon and script runs from the image's own root. Then the
 * firewall's drop records end to end, from the image: the dev site's rendered ruleset in a router namespace, the
 * rendered log-collector pod (ulogd2 and syslog-ng from the image, their ConfigMap, volumes and command lines) and
 * the log-store pod (VictoriaLogs built from the Go module proxy at the version of the site's upstream image, at
 * the path that image runs it from); a connection attempt from the internet that the policy drops must be in the
 * store within 5 s as a record naming its source, destination, port, interface and rule.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { renderStackFiles } from "../../components/observability-stack/files";
import { renderObservabilityObjects, TEXTFILE_DIR, type ObsObject } from "../../components/observability-stack/k8s";
import { OSPF_STATUS_DIR, OSPF_STATUS_FILE } from "../../components/network-services/k8s";
import { OBSERVABILITY_PORTS } from "../../components/site/schema-observability";
import { siteRuleset } from "../../components/host-layers";
import { nthAddress } from "../../components/site/ip";
import { toolBinary } from "../../tools/go-tools";
import { Daemons, sh } from "../e2e/lib/exec";
import { waitFor } from "../helpers/wait";
import { devSite } from "../helpers/dev-site";
import { withoutNftQueue } from "../helpers/nft-queue";
import { ROOT } from "../helpers/stacks";
import { tempDir } from "../helpers/temp";
import { tier } from "../helpers/tier";
import { ociEnv, podArgv, type ImageRoot, type PodFiles } from "./lib/pods";

const VICTORIA_LOGS = toolBinary("victoria-logs");
const t = tier("observability image", {
  root: true,
  commands: ["buildah", "jq", "chroot", "unshare", "ip", "ss", "nft", "busybox", "curl", "openssl"],
  files: [VICTORIA_LOGS],
  hint: "VictoriaLogs: npm run build:tools",
});

interface Build {
  stage: string;
  out: string;
  digest: string;
}

function build(dir: string): Build {
  const stage = join(dir, "build");
  const out = join(dir, "out");
  const r = spawnSync(join(ROOT, "images/observability/build-image.sh"), [stage, out], {
    encoding: "utf8",
    timeout: 300_000,
  });
  if (r.status !== 0) throw new Error(`build-image.sh failed: ${r.stderr}`);
  return { stage, out, digest: readFileSync(join(out, "image-digest"), "utf8").trim() };
}

function inRoot(b: Build, cmd: string[]) {
  return spawnSync("chroot", [join(b.stage, "rootfs"), ...cmd], { encoding: "utf8", timeout: 20_000 });
}

let a: Build;
let bDigest = "";
beforeAll(() => {
  if (!t.ok) return;
  a = build(tempDir("obs-image-a-"));
  bDigest = build(tempDir("obs-image-b-")).digest;
}, 600_000);

describe.skipIf(!t.ok)("the observability image", () => {
  it("has the same digest from two clean builds", () => {
    expect(a.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(bDigest).toBe(a.digest);
  });

  it.each([
    ["Prometheus", ["prometheus", "--version"], /prometheus, version 2\./],
    ["Alertmanager", ["prometheus-alertmanager", "--version"], /alertmanager, version/],
    ["the node exporter", ["prometheus-node-exporter", "--version"], /node_exporter, version/],
    ["syslog-ng", ["syslog-ng", "--version"], /syslog-ng 3/],
    ["ulogd2", ["ulogd", "-V"], /ulogd Version 2/],
    ["softflowd", ["softflowd", "-h"], /softflowd version/],
    ["nfacctd", ["nfacctd", "-V"], /nfacctd/],
    ["the metric scripts' shell", ["sh", "-c", "echo x | awk '{print \"awk-\" $1}' | sort"], /awk-x/],
  ])("runs %s from its own root", (_name, cmd, expected) => {
    const r = inRoot(a, cmd);
    expect(r.error).toBeUndefined();
    expect(`${r.stdout}${r.stderr}`).toMatch(expected);
  });

  it("runs the BGP collector from its own root (busybox, jq, timeout), with the talosctl it mounts", () => {
    // The talosctl image volume stands in as a script printing one Talos BGPPeerStatus as `get -o json` does.
    const root = join(a.stage, "rootfs");
    mkdirSync(join(root, "opt/talosctl"), { recursive: true });
    const status = {
      node: "10.10.0.1",
      metadata: { namespace: "network", type: "BGPPeerStatuses.net.talos.dev", id: "default/10.50.0.250" },
      spec: { peer: "10.50.0.250", peerASN: 65020, state: "ESTABLISHED", received: 4, bfdState: "init" },
    };
    writeFileSync(
      join(root, "opt/talosctl/talosctl"),
      `#!/bin/sh\ncat <<'EOF'\n${JSON.stringify(status, null, 4)}\nEOF\n`,
      {
        mode: 0o755,
      },
    );
    writeFileSync(join(root, "tmp/bgp-neighbours"), "10.50.0.250 65020 1\nfd12:3456:789a:50::fe 65030 0\n");
    const r = inRoot(a, [
      "sh",
      "-c",
      "TALOSCTL=/opt/talosctl/talosctl router-bgp-metrics /tmp/bgp-neighbours 10.10.0.1 /tmp/bgp.prom 0",
    ]);
    expect(r.status, r.stderr).toBe(0);
    const out = readFileSync(join(root, "tmp/bgp.prom"), "utf8");
    expect(out).toContain('router_bgp_session_established{neighbour="10.50.0.250",asn="65020"} 1\n');
    expect(out).toContain('router_bgp_bfd_up{neighbour="10.50.0.250",asn="65020"} 0\n');
    expect(out).toContain('router_bgp_received_prefixes{neighbour="10.50.0.250",asn="65020"} 4\n');
    expect(out).toContain('router_bgp_session_established{neighbour="fd12:3456:789a:50::fe",asn="65030"} 0\n');
    expect(out).toContain("router_bgp_status_readable 1\n");
  });

  it("runs the OSPF collector as rendered from its own root (busybox, jq, head), on the status it mounts read only", () => {
    const { site, plan, policy } = devSite((raw) => {
      raw.routing = { ospf: { routerId: "10.50.0.1", segments: ["servers"] } };
    });
    const files = renderStackFiles(site, plan, policy, { webhookToken: false });
    const objects = renderObservabilityObjects(site, plan, files, { own: "own", logs: "logs", dashboards: "dash" }, {});
    const ds = objects.find((o) => o.kind === "DaemonSet" && o.metadata.name === "node-exporter") as ObsObject &
      IDaemonSet;
    const work = tempDir("obs-ospf-");
    const node = join(work, "node");
    // what the bird pod's status container wrote a moment ago, on the node
    mkdirSync(join(node, OSPF_STATUS_DIR), { recursive: true });
    const uptime = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
    const neighbour = { routerId: "10.50.0.254", interface: "lan0.50", address: "10.50.0.254" };
    writeFileSync(
      join(node, OSPF_STATUS_FILE),
      JSON.stringify({
        uptime,
        readable: true,
        neighbours: [{ ...neighbour, state: "Full", role: "DR", deadIn: 36.5 }],
      }),
    );
    const own: ImageRoot = { rootfs: join(a.stage, "rootfs"), env: ociEnv(join(a.out, "oci")) };
    const argv = podArgv(ds, "ospf-metrics", own, { configMaps: new Map(), node }, join(work, "ospf-metrics"));
    // It loops every scrape interval and writes its first file at once; the end of `timeout` is its SIGTERM.
    const r = spawnSync("timeout", ["5", ...argv], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(124);
    expect(r.stderr).toBe("");
    const out = readFileSync(join(node, TEXTFILE_DIR, "ospf.prom"), "utf8");
    const labels = 'router_id="10.50.0.254",interface="lan0.50",address="10.50.0.254"';
    expect(out).toContain(`router_ospf_neighbour_full{${labels}} 1\n`);
    expect(out).toContain(`router_ospf_neighbour_hello_age_seconds{${labels}} 3.5\n`);
    expect(out).toContain("router_ospf_status_readable 1\n");
  });

  it("loads syslog-ng's modules for the rendered collector configuration from its own root", () => {
    const { site, plan, policy } = devSite();
    const conf = renderStackFiles(site, plan, policy, { webhookToken: false }).configMaps["log-collector"][
      "syslog-ng.conf"
    ];
    // --syntax-only resolves every driver (network, http, json-parser, csv-parser) to its module.
    const r = spawnSync(
      "unshare",
      [
        "-m",
        "sh",
        "-c",
        `mount -t tmpfs none ${join(a.stage, "rootfs/tmp")} && cat > ${join(a.stage, "rootfs/tmp/s.conf")} && chroot ${join(a.stage, "rootfs")} syslog-ng --syntax-only -f /tmp/s.conf`,
      ],
      { input: conf, encoding: "utf8" },
    );
    expect(r.status, r.stderr).toBe(0);
  });

  it("carries the CA bundle TLS clients read (remote write, log forwarding, e-mail)", () => {
    const bundle = join(a.stage, "rootfs/etc/ssl/certs/ca-certificates.crt");
    const r = spawnSync("openssl", ["storeutl", "-noout", "-certs", bundle], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(Number(/Total found: (\d+)/.exec(r.stdout)?.[1] ?? 0)).toBeGreaterThan(50);
  });
});

const ID = `${process.pid % 100000}`;
const NS = { router: `obsdl${ID}-rtr`, inet: `obsdl${ID}-inet`, lan: `obsdl${ID}-lan` };
const WAN4 = "198.51.100.2";
const INET4 = "198.51.100.1";

describe.skipIf(!t.ok)("the firewall's drop records, from the image into the log store", () => {
  const { site, plan, policy } = devSite();
  const daemons = new Daemons();
  const mgmt = plan.segments.find((s) => s.name === plan.managementSegment)!;
  const trusted = plan.segments.find((s) => s.zone === "trusted")!;
  let work = "";
  const store = `http://${plan.managementAddress}:${OBSERVABILITY_PORTS.logs}`;

  const ip = (ns: string, args: string) => sh(["ip", "-n", ns, ...args.split(" ")]);
  const inNs = (ns: string, argv: string[], allowFail = false) =>
    sh(["ip", "netns", "exec", ns, ...argv], { allowFail, timeoutMs: 20_000 });

  /** Records of the log store matching a LogsQL query. */
  function query(q: string): Record<string, string>[] {
    const r = inNs(NS.router, ["curl", "-sf", `${store}/select/logsql/query`, "--data-urlencode", `query=${q}`], true);
    return r.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, string>);
  }

  beforeAll(async () => {
    work = tempDir("obs-droplogs-");
    for (const ns of Object.values(NS)) sh(["ip", "netns", "del", ns], { allowFail: true });
    for (const ns of Object.values(NS)) sh(["ip", "netns", "add", ns]);
    sh(["ip", "link", "add", "wan0", "netns", NS.router, "type", "veth", "peer", "name", "eth0", "netns", NS.inet]);
    sh(["ip", "link", "add", mgmt.link, "netns", NS.router, "type", "veth", "peer", "name", "eth0", "netns", NS.lan]);
    sh([
      "ip",
      "link",
      "add",
      trusted.link,
      "netns",
      NS.router,
      "type",
      "veth",
      "peer",
      "name",
      "eth1",
      "netns",
      NS.lan,
    ]);
    for (const [ns, links] of [
      [NS.router, ["lo", "wan0", mgmt.link, trusted.link]],
      [NS.inet, ["lo", "eth0"]],
      [NS.lan, ["lo", "eth0", "eth1"]],
    ] as const)
      for (const l of links) ip(ns, `link set ${l} up`);
    ip(NS.router, `address add ${WAN4}/24 dev wan0`);
    ip(NS.router, `address add ${mgmt.ipv4!.gatewayCidr} dev ${mgmt.link}`);
    ip(NS.router, `address add ${trusted.ipv4!.gatewayCidr} dev ${trusted.link}`);
    ip(NS.inet, `address add ${INET4}/24 dev eth0`);
    ip(NS.inet, `route add ${trusted.ipv4!.cidr} via ${WAN4}`);
    inNs(NS.router, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    // the IDS queue as this kernel can load it (test/helpers/nft-queue.ts)
    sh(["ip", "netns", "exec", NS.router, "nft", "-f", "-"], {
      input: withoutNftQueue(siteRuleset(site, plan, policy)),
    });

    const files = renderStackFiles(site, plan, policy, { webhookToken: false });
    const objects = renderObservabilityObjects(site, plan, files, { own: "own", logs: "logs", dashboards: "dash" }, {});
    const ds = (name: string) =>
      objects.find((o) => o.kind === "DaemonSet" && o.metadata.name === name) as ObsObject & IDaemonSet;
    const pod: PodFiles = {
      configMaps: new Map(
        objects.filter((o) => o.kind === "ConfigMap").map((o) => [o.metadata.name, o.data as Record<string, string>]),
      ),
      node: join(work, "node"),
    };
    const own: ImageRoot = { rootfs: join(a.stage, "rootfs"), env: ociEnv(join(a.out, "oci")) };
    const emptyRoot = join(work, "upstream-root");
    mkdirSync(emptyRoot, { recursive: true });
    // The upstream image runs its binary as /victoria-logs-prod (VictoriaLogs' app/victoria-logs/multiarch/Dockerfile).
    const logsImage: ImageRoot = { rootfs: emptyRoot, env: {}, binds: [[VICTORIA_LOGS, "/victoria-logs-prod"]] };
    const start = (name: string, container: string, image: ImageRoot) =>
      daemons.start(
        `${name}-${container}`,
        ["ip", "netns", "exec", NS.router, ...podArgv(ds(name), container, image, pod, join(work, container))],
        join(work, `${container}.log`),
      );
    start("logs", "victoria-logs", logsImage);
    // The kubelet starts a pod's containers without waiting for one to listen before the next: ulogd first.
    start("log-collector", "ulogd", own);
    await new Promise((r) => setTimeout(r, 500));
    start("log-collector", "syslog-ng", own);
    await waitFor(
      `the log store to answer\n${logs()}`,
      () => (inNs(NS.router, ["curl", "-sf", `${store}/health`], true).status === 0 ? true : undefined),
      20_000,
    );
    await waitFor(
      `the collector to take drop records\n${logs()}`,
      () => (/:6052\b/.test(inNs(NS.router, ["ss", "-Hunl"]).stdout) ? true : undefined),
      20_000,
    );
  }, 120_000);

  afterAll(async () => {
    await daemons.stopAll();
    for (const ns of Object.values(NS)) sh(["ip", "netns", "del", ns], { allowFail: true });
  });

  function logs(): string {
    return daemons
      .list()
      .map((d) => `--- ${d.name}${d.exited ? ` (exited ${d.exitCode})` : ""}\n${d.log().slice(-1500)}`)
      .join("\n");
  }

  it.each([
    ["to the router's own closed port", WAN4, 2222, "router input drop: "],
    ["through the router to a trusted host", nthAddress(trusted.ipv4!.cidr, 77), 445, "router wan>trusted drop: "],
  ])("logs a dropped connection attempt from the internet %s within 5 s", async (_what, target, port, rule) => {
    const sent = Date.now();
    inNs(NS.inet, ["busybox", "nc", "-w", "1", target, String(port)], true);
    const record = await waitFor(
      `the drop of ${INET4} → ${target}:${port} in the log store\n${logs()}`,
      () => query(`source:firewall dest_ip:"${target}"`).find((r) => r.dest_port === String(port)),
      5_000,
      200,
    );
    expect(Date.now() - sent).toBeLessThanOrEqual(5_000);
    expect(record).toMatchObject({
      _msg: rule,
      src_ip: INET4,
      dest_ip: target,
      dest_port: String(port),
      "ip.protocol": "6",
      "oob.in": "wan0",
    });
  });
});
