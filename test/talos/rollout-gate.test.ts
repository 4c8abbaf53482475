/**
 * The network services' rollout gate (components/network-services/rollout.ts) against the fake node's Kubernetes
 * API (test/fixtures/fake-node/kube-api.js: DaemonSet status, ControllerRevisions, ConfigMaps). The objects are the
 * program's own (renderServiceObjects); the test applies them as `pulumi up` would, then runs the gate.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { selfSigned } from "../helpers/tls";
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { PROBE_STATE, rolloutGateScript } from "../../components/network-services/rollout";
import { segmentProbes, servicesProbeStep } from "../../components/network-services/probe";
import { daemonNames, renderServiceObjects, type K8sObject } from "../../components/network-services/k8s";
import { ROUTER_NAMESPACE } from "../../components/talos-node/machine-config";
import { planDns } from "../../components/dns-stack/plan";
import { renderDnsObjects } from "../../components/dns-stack/k8s";
import { DNS_PROBE_STATE, dnsProbeStep, dnsProbes } from "../../components/dns-stack/probe";
import { FakeNode } from "../helpers/fake-node";
import { devSite, type Raw } from "../helpers/dev-site";
import { nodeOptions, OSPF_NEIGHBOURS, rendered, withOspf } from "../helpers/lifecycle-fixtures";
import type { OspfNeighbour } from "../helpers/fake-node";
import { tempDir } from "../helpers/temp";
import { tier } from "../helpers/tier";

const t = tier("rollout gate", { commands: ["openssl", "jq", "curl"] });
const IMAGE = "registry.lab:5000/router/router-services@sha256:" + "1".repeat(64);
const BAD = "registry.lab:5000/router/router-services@sha256:" + "bad0".repeat(16);
const DNS_IMAGE = "registry.lab:5000/router/router-dns@sha256:" + "2".repeat(64);

let client: { crt: string; key: string; fingerprint: string };
/** The site's DNS CA certificate as the DNS gate gets it (the fake kdig loads it; it checks no certificate). */
let dnsCa: string;
let node: FakeNode | undefined;

beforeAll(() => {
  if (!t.ok) return;
  const dir = tempDir("kube-client-");
  selfSigned(dir, "/O=system:masters/CN=admin", "crt.pem", "key.pem", 1);
  const crt = readFileSync(`${dir}/crt.pem`, "utf8");
  selfSigned(dir, "/CN=lab DNS CA", "dns-ca.pem", "dns-ca.key", 1);
  dnsCa = readFileSync(`${dir}/dns-ca.pem`, "utf8");
  client = {
    crt,
    key: readFileSync(`${dir}/key.pem`, "utf8"),
    fingerprint: createHash("sha256").update(new X509Certificate(crt).raw).digest("hex"),
  };
});

afterEach(async () => {
  await node?.stop();
  node = undefined;
});

const b64 = (s: string) => Buffer.from(s).toString("base64");

function site(edit?: (raw: Raw) => void) {
  const s = devSite(edit);
  const gate = {
    namespace: ROUTER_NAMESPACE,
    daemons: daemonNames(s.site, s.plan, s.policy),
    subnets: s.plan.segments.flatMap((x) => [...(x.ipv4 ? [x.ipv4.cidr] : []), ...(x.ipv6 ? [x.ipv6.prefix] : [])]),
    timeout: 2,
  };
  const probes = segmentProbes(s.site, s.plan);
  return {
    objects: (image: string) => renderServiceObjects(s.site, s.plan, s.policy, image),
    gate: rolloutGateScript(gate),
    /** The gate as NetworkServices runs it: with the segment probe. */
    probed: rolloutGateScript({ ...gate, probe: servicesProbeStep(IMAGE, probes) }),
    probes,
  };
}

/**
 * A site with OSPF on servers and trusted (withOspf), then `edit`; its gate with the segment probe, whose OSPF hold
 * waits 3 s instead of OSPF_REFORM_S (the fake's BIRD is Full as soon as its pod is available).
 */
function ospfSite(edit?: (raw: Raw) => void) {
  const s = site((raw) => {
    withOspf(raw);
    edit?.(raw);
  });
  const g = devSite((raw) => {
    withOspf(raw);
    edit?.(raw);
  });
  return {
    ...s,
    probed: rolloutGateScript({
      namespace: ROUTER_NAMESPACE,
      daemons: daemonNames(g.site, g.plan, g.policy),
      subnets: g.plan.segments.flatMap((x) => [...(x.ipv4 ? [x.ipv4.cidr] : []), ...(x.ipv6 ? [x.ipv6.prefix] : [])]),
      timeout: 2,
      probe: servicesProbeStep(IMAGE, s.probes, 3),
    }),
  };
}

/** The DNS stack's objects and its gate with the DNS probe, as DnsStack runs it. */
function dnsSite(edit?: (raw: Raw) => void) {
  const s = devSite(edit);
  const dns = planDns(s.site, s.plan, s.policy);
  const objects = renderDnsObjects(s.site, s.plan, dns, DNS_IMAGE) as unknown as K8sObject[];
  const probes = dnsProbes(s.plan, dns);
  return {
    objects,
    probes,
    gate: rolloutGateScript({
      namespace: ROUTER_NAMESPACE,
      daemons: objects.filter((o) => o.kind === "DaemonSet").map((o) => o.metadata.name),
      subnets: s.plan.segments.flatMap((x) => [...(x.ipv4 ? [x.ipv4.cidr] : []), ...(x.ipv6 ? [x.ipv6.prefix] : [])]),
      timeout: 2,
      what: "DNS daemon",
      probe: dnsProbeStep(DNS_IMAGE, probes, dnsCa),
    }),
  };
}

async function cluster(ospfNeighbours?: OspfNeighbour[]) {
  node = await FakeNode.start(
    nodeOptions({
      installed: true,
      bootstrapped: true,
      savedConfig: rendered().config,
      kubeClientFingerprint: client.fingerprint,
      ...(ospfNeighbours ? { ospfNeighbours } : {}),
    }),
  );
  const ca = readFileSync(`${node.dir}/kube-ca.pem`, "utf8");
  const kubeconfig = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: lab",
    "  cluster:",
    "    server: https://10.10.0.1:6443",
    `    certificate-authority-data: ${b64(ca)}`,
    "users:",
    "- name: admin@lab",
    "  user:",
    `    client-certificate-data: ${b64(client.crt)}`,
    `    client-key-data: ${b64(client.key)}`,
    "",
  ].join("\n");
  const n = node;
  return {
    apply: (objects: K8sObject[]) =>
      n.request({ op: "kube", sub: "apply", objects: objects.filter((o) => o.kind !== "Namespace") }),
    failing: (failing: string[]) => n.request({ op: "kube", sub: "failing", failing }),
    silent: (links: string[]) => n.request({ op: "kube", sub: "silent", links }),
    probePods: (fault: "refused" | "crash" | undefined) => n.request({ op: "kube", sub: "probePods", fault }),
    ospfNeighbours: (neighbours: OspfNeighbour[]) => n.request({ op: "kube", sub: "ospfNeighbours", neighbours }),
    state: () =>
      n.request<{
        daemonsets: Record<string, { spec: { template: unknown }; status: { numberAvailable: number } }>;
        configmaps: string[];
        pods: { name: string }[];
        revisions: { metadata: { name: string }; revision: number }[];
        requests: { method: string; path: string; contentType: string | null }[];
      }>({ op: "kube", sub: "state" }),
    gate: (script: string) => n.run(script, { env: { ROUTER_KUBECONFIG: kubeconfig } }),
  };
}

const cmOf = (ds: { spec: { template: unknown } }) =>
  (ds.spec.template as { spec: { volumes: { name: string; configMap?: { name: string } }[] } }).spec.volumes.find(
    (v) => v.name === "config",
  )!.configMap!.name;

describe.skipIf(!t.ok)("the rollout gate", () => {
  it("passes when every DaemonSet becomes available, and prunes configurations older than the previous one", async () => {
    const c = await cluster();
    const v1 = site();
    await c.apply(v1.objects(IMAGE));
    const first = await c.gate(v1.gate);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/every network service rolled out/);
    // Two more chrony changes: the first configuration is neither current nor previous afterwards.
    const chronyCms: string[] = [];
    for (const servers of [
      ["162.159.200.1", "ntp1.example"],
      ["162.159.200.1", "ntp2.example"],
    ]) {
      const v = site((raw) => (raw.ntp = { ...(raw.ntp ?? {}), servers }));
      await c.apply(v.objects(IMAGE));
      const run = await c.gate(v.gate);
      expect(run.code, run.stderr).toBe(0);
      chronyCms.push(cmOf((await c.state()).daemonsets["router-system/chrony"]));
    }
    const st = await c.state();
    const chrony = st.configmaps.filter((n) => n.startsWith("router-system/chrony-"));
    expect(chrony.sort()).toEqual(chronyCms.map((n) => `router-system/${n}`).sort());
    // Every request carried the client certificate and used the documented content types.
    expect(st.requests.filter((r) => r.method === "PATCH")).toEqual([]);
  });

  it("rolls a DaemonSet whose new revision never becomes available back to its previous revision, and fails saying so", async () => {
    const c = await cluster();
    const v1 = site();
    await c.apply(v1.objects(IMAGE));
    expect((await c.gate(v1.gate)).code).toBe(0);
    const before = await c.state();
    await c.failing([BAD]);
    await c.apply(v1.objects(BAD));
    const run = await c.gate(v1.gate);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /the rollout of kea-dhcp4 chrony radvd kea-dhcp6 avahi-casting did not become available/,
    );
    expect(run.stderr).toMatch(/kea-dhcp4 rolled back to revision 1; chrony rolled back to revision 1/);
    const after = await c.state();
    for (const [k, ds] of Object.entries(after.daemonsets)) {
      expect(ds.spec.template, k).toEqual(before.daemonsets[k].spec.template);
      expect(ds.status.numberAvailable, k).toBe(1);
    }
    const patches = after.requests.filter((r) => r.method === "PATCH");
    expect(patches).toHaveLength(5);
    for (const p of patches) expect(p.contentType).toBe("application/strategic-merge-patch+json");
  });

  it("never rolls Kea back into a subnet the node no longer has: the renumbered segment is left out, and the message says so", async () => {
    const c = await cluster();
    const v1 = site();
    await c.apply(v1.objects(IMAGE));
    expect((await c.gate(v1.gate)).code).toBe(0);
    const renumber = (raw: Raw) => {
      const iot = raw.segments.find((s: Raw) => s.name === "iot");
      iot.ipv4 = { cidr: "10.31.0.0/23" };
    };
    const v2 = site(renumber);
    const objects = v2.objects(IMAGE);
    const keaCm = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("kea-dhcp4-"))!;
    await c.failing([keaCm.metadata.name]); // the new Kea does not come up
    await c.apply(objects);
    const run = await c.gate(v2.gate);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /kea-dhcp4 rolled back to revision 1 without 10\.30\.0\.0\/23 \(no longer on the node: that segment gets no service from it until the next good update\)/,
    );
    const st = await c.state();
    const cm = cmOf(st.daemonsets["router-system/kea-dhcp4"]);
    expect(st.daemonsets["router-system/kea-dhcp4"].status.numberAvailable).toBe(1);
    const kea = await node!.request<{ configmaps: string[] }>({ op: "kube", sub: "state" });
    expect(kea.configmaps).toContain(`router-system/${cm}`);
    // What the rolled-back Kea serves: the old subnets the node still has, never 10.30.0.0/23.
    const served = await servedSubnets(cm);
    expect(served).not.toContain("10.30.0.0/23");
    expect(served).toEqual(["10.10.0.0/24", "10.20.0.0/24", "10.40.0.0/24", "10.50.0.0/24"]);
  });

  it("does not roll radvd back when its previous revision would announce a prefix the node no longer has", async () => {
    const c = await cluster();
    const v1 = site();
    await c.apply(v1.objects(IMAGE));
    expect((await c.gate(v1.gate)).code).toBe(0);
    const v2 = site((raw) => {
      const iot = raw.segments.find((s: Raw) => s.name === "iot");
      iot.ipv6 = { prefix: "fd12:3456:789a:31::/64" };
    });
    const objects = v2.objects(IMAGE);
    const radvdCm = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("radvd-"))!;
    await c.failing([radvdCm.metadata.name]);
    await c.apply(objects);
    const run = await c.gate(v2.gate);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /radvd was NOT rolled back: its previous revision 1 announces fd12:3456:789a:30::\/64, which the node no longer has/,
    );
    expect(cmOf((await c.state()).daemonsets["router-system/radvd"])).toBe(radvdCm.metadata.name);
  });

  describe("with the segment probe", () => {
    const posts = async (c: Awaited<ReturnType<typeof cluster>>) =>
      (await c.state()).requests.filter((r) => r.method === "POST" && r.path.endsWith("/pods")).length;

    it("probes every segment from the node once the services rolled out, then only the segments a change touched", async () => {
      const c = await cluster();
      const v1 = site();
      await c.apply(v1.objects(IMAGE));
      const first = await c.gate(v1.probed);
      expect(first.code, first.stderr).toBe(0);
      const all = v1.probes.map((p) => p.segment);
      expect(first.stderr).toContain(`probing the segments this change touched: ${all.join(" ")}`);
      for (const p of v1.probes) {
        if (p.dhcp4) expect(first.stderr).toMatch(new RegExp(`ok segment ${p.segment}: DHCPv4 on ${p.link}: offer `));
        if (p.ra) expect(first.stderr).toContain(`ok segment ${p.segment}: router advertisement on ${p.link}`);
        if (p.dhcp6)
          expect(first.stderr).toMatch(new RegExp(`ok segment ${p.segment}: DHCPv6 on ${p.link}: advertise `));
      }
      expect(v1.probes.some((p) => p.dhcp6)).toBe(true);
      let st = await c.state();
      expect(st.pods, "the probe pod is deleted").toEqual([]);
      expect(st.configmaps).toContain(`${ROUTER_NAMESPACE}/${PROBE_STATE}`);
      expect(await posts(c)).toBe(1);

      // Nothing a segment depends on changed: no pod at all.
      const again = await c.gate(v1.probed);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toMatch(/no segment's services changed since they last answered: nothing to probe/);
      const ntp = site((raw) => (raw.ntp = { ...(raw.ntp ?? {}), servers: ["162.159.200.1", "ntp9.example"] }));
      await c.apply(ntp.objects(IMAGE));
      const chrony = await c.gate(ntp.probed);
      expect(chrony.code, chrony.stderr).toBe(0);
      expect(chrony.stderr).toMatch(/nothing to probe/);
      expect(await posts(c)).toBe(1);

      // One segment's own settings changed (not the daemons'): that segment alone.
      const iot = v1.probes.find((p) => p.segment === "iot")!;
      const edited = site((raw) => {
        raw.ntp = { ...(raw.ntp ?? {}), servers: ["162.159.200.1", "ntp9.example"] };
        raw.segments.find((x: Raw) => x.name === "iot").description = "Things, renamed";
      });
      expect(edited.probes.find((p) => p.segment === "iot")!.fingerprint).not.toBe(iot.fingerprint);
      await c.apply(edited.objects(IMAGE));
      const one = await c.gate(edited.probed);
      expect(one.code, one.stderr).toBe(0);
      expect(one.stderr).toContain("probing the segments this change touched: iot\n");
      st = await c.state();
      expect(st.requests.filter((r) => r.method === "PATCH")).toEqual([]);
    });

    it("fails naming the segment when the new Kea offers outside its subnet, and rolls Kea back to what answered", async () => {
      const c = await cluster();
      const v1 = site();
      await c.apply(v1.objects(IMAGE));
      expect((await c.gate(v1.probed)).code).toBe(0);
      const before = await c.state();
      // A Kea revision that serves iot a subnet the node does not have there.
      const wrong = site((raw) => (raw.segments.find((x: Raw) => x.name === "iot").ipv4 = { cidr: "10.31.0.0/23" }));
      await c.apply(wrong.objects(IMAGE).filter((o) => o.metadata.name.startsWith("kea-dhcp4")));
      const run = await c.gate(v1.probed);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        /the services rolled out but the segments did not all answer: segment iot: DHCPv4 on lan0\.30: offered 10\.31\.\d+\.\d+ \(from 10\.31\.0\.1\), which is outside 10\.30\.0\.0\/23\. kea-dhcp4 rolled back to revision 1\. This update failed\./,
      );
      const after = await c.state();
      const kea = `${ROUTER_NAMESPACE}/kea-dhcp4`;
      expect(after.daemonsets[kea].spec.template).toEqual(before.daemonsets[kea].spec.template);
      expect(after.daemonsets[`${ROUTER_NAMESPACE}/radvd`].spec.template).toEqual(
        before.daemonsets[`${ROUTER_NAMESPACE}/radvd`].spec.template,
      );
      expect(after.pods).toEqual([]);
    });

    it("fails naming the segment when the new Kea DHCPv6 advertises outside the pool, and rolls only kea-dhcp6 back", async () => {
      const c = await cluster();
      const v1 = site();
      await c.apply(v1.objects(IMAGE));
      expect((await c.gate(v1.probed)).code).toBe(0);
      const before = await c.state();
      // A kea-dhcp6 revision whose servers pool is not the one the segment is probed for.
      const wrong = site((raw) => {
        raw.segments.find((x: Raw) => x.name === "servers").dhcpv6.range = {
          start: "fd12:3456:789a:50::2000",
          end: "fd12:3456:789a:50::2fff",
        };
      });
      await c.apply(wrong.objects(IMAGE).filter((o) => o.metadata.name.startsWith("kea-dhcp6")));
      const run = await c.gate(v1.probed);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(
        "the services rolled out but the segments did not all answer: segment servers: DHCPv6 on lan0.50: advertised fd12:3456:789a:50::2000 (from fe80::1), which is outside fd12:3456:789a:50::1000-fd12:3456:789a:50::1fff. kea-dhcp6 rolled back to revision 1. This update failed.",
      );
      const after = await c.state();
      for (const d of ["kea-dhcp6", "kea-dhcp4", "radvd"])
        expect(after.daemonsets[`${ROUTER_NAMESPACE}/${d}`].spec.template, d).toEqual(
          before.daemonsets[`${ROUTER_NAMESPACE}/${d}`].spec.template,
        );
      expect(after.requests.filter((r) => r.method === "PATCH").map((r) => r.path)).toEqual([
        `/apis/apps/v1/namespaces/${ROUTER_NAMESPACE}/daemonsets/kea-dhcp6`,
      ]);
    });

    it("fails naming the segment and each service that did not answer, and rolls back nothing that did not change", async () => {
      const c = await cluster();
      const v1 = site();
      await c.apply(v1.objects(IMAGE));
      expect((await c.gate(v1.probed)).code).toBe(0);
      await c.silent(["lan0.30"]);
      const edited = site((raw) => (raw.segments.find((x: Raw) => x.name === "iot").description = "Things, renamed"));
      await c.apply(edited.objects(IMAGE));
      const run = await c.gate(edited.probed);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(
        "segment iot: DHCPv4 on lan0.30: no DHCPv4 offer on lan0.30 within 3000 ms; segment iot: RA on lan0.30: no router advertisement answered a solicitation. kea-dhcp4 did not change since it last answered: not rolled back; radvd did not change since it last answered: not rolled back. This update failed.",
      );
      expect((await c.state()).requests.filter((r) => r.method === "PATCH")).toEqual([]);
      // What did not answer is probed again on the next run.
      await c.silent([]);
      const next = await c.gate(edited.probed);
      expect(next.code, next.stderr).toBe(0);
      expect(next.stderr).toContain("probing the segments this change touched: iot\n");
    });
  });

  describe("the OSPF hold: BIRD's neighbours are Full again after a routing change restarts it", () => {
    const [servers, trusted] = OSPF_NEIGHBOURS;
    const bird = `${ROUTER_NAMESPACE}/bird`;

    it("rolls BIRD back when a change it accepts loses a neighbour (an area typo), naming the neighbour", async () => {
      const c = await cluster(OSPF_NEIGHBOURS);
      const v1 = ospfSite();
      expect(v1.probes.filter((p) => p.ospf).map((p) => p.link)).toEqual(["lan0.50", "lan0.20"]);
      await c.apply(v1.objects(IMAGE));
      const first = await c.gate(v1.probed);
      expect(first.code, first.stderr).toBe(0);
      // BIRD's first start: nothing to hold yet
      expect(first.stderr).toContain(
        "ok segment servers: OSPF on lan0.50: no status from before BIRD last started (its first start)",
      );
      const before = await c.state();

      // The same routers, but the site's area mistyped: BIRD starts, its neighbours drop its hellos.
      const typo = ospfSite((raw) => (raw.routing.ospf.area = "0.0.0.1"));
      await c.apply(typo.objects(IMAGE));
      const run = await c.gate(typo.probed);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toContain(
        `segment servers: OSPF on lan0.50: neighbour ${servers.routerId} (${servers.address}) was Full before BIRD restarted and is gone (after 3s)`,
      );
      expect(run.stderr).toContain(
        `segment trusted: OSPF on lan0.20: neighbour ${trusted.routerId} (${trusted.address}) was Full before BIRD restarted and is gone`,
      );
      expect(run.stderr).toMatch(/bird rolled back to revision 1\. This update failed\./);
      // nothing else was blamed, and BIRD runs what it ran before
      const after = await c.state();
      expect(after.daemonsets[bird].spec.template).toEqual(before.daemonsets[bird].spec.template);
      expect(after.requests.filter((r) => r.method === "PATCH")).toHaveLength(1);
    });

    it("keeps a change whose neighbours come back, and holds nothing on a segment made passive", async () => {
      const c = await cluster(OSPF_NEIGHBOURS);
      const v1 = ospfSite();
      await c.apply(v1.objects(IMAGE));
      expect((await c.gate(v1.probed)).code).toBe(0);
      // servers becomes passive (advertised, no hellos): its neighbour is let go on purpose; trusted's is held
      const passive = ospfSite((raw) => {
        raw.routing.ospf.segments = ["trusted"];
        raw.routing.ospf.passive = ["servers"];
      });
      await c.apply(passive.objects(IMAGE));
      const run = await c.gate(passive.probed);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain(
        `ok segment trusted: OSPF on lan0.20: ${trusted.routerId} Full again since BIRD restarted`,
      );
      expect(run.stderr).not.toMatch(/OSPF on lan0\.50/);
      expect((await c.state()).requests.filter((r) => r.method === "PATCH")).toEqual([]);
    });

    it("holds nothing when BIRD did not restart: a DHCP change passes though a neighbour went away since", async () => {
      const c = await cluster(OSPF_NEIGHBOURS);
      const v1 = ospfSite();
      await c.apply(v1.objects(IMAGE));
      expect((await c.gate(v1.probed)).code).toBe(0);
      // a bird change that keeps its neighbours: they are held, and Full again
      const cost = ospfSite((raw) => (raw.routing.ospf.redistribute = []));
      await c.apply(cost.objects(IMAGE));
      const kept = await c.gate(cost.probed);
      expect(kept.code, kept.stderr).toBe(0);
      expect(kept.stderr).toContain(
        `ok segment servers: OSPF on lan0.50: ${servers.routerId} Full again since BIRD restarted`,
      );
      // The router on servers is switched off; then a reservation is added there: Kea restarts, BIRD does not.
      await c.ospfNeighbours([trusted]);
      const kea = ospfSite((raw) => {
        raw.routing.ospf.redistribute = [];
        raw.segments
          .find((x: Raw) => x.name === "servers")
          .dhcp.reservations.push({ name: "printer", mac: "00:1a:2b:00:50:03", ipv4: "10.50.0.12" });
      });
      await c.apply(kea.objects(IMAGE));
      const run = await c.gate(kea.probed);
      expect(run.code, run.stderr).toBe(0);
      // Kea's new revision touches every segment it serves, servers among them
      expect(run.stderr).toMatch(/probing the segments this change touched: .*servers/);
      expect(run.stderr).toMatch(/ok segment servers: DHCPv4 on lan0\.50/);
      expect(run.stderr).not.toContain("OSPF on");
    });
  });

  describe("the DNS stack's gate, with the DNS probe", () => {
    it("asks every served segment's gateways for the router's name, records what answered apart from the services, then only what a change touched", async () => {
      const c = await cluster();
      const v1 = dnsSite();
      await c.apply(v1.objects);
      const first = await c.gate(v1.gate);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stderr).toContain(
        `probing the segments this change touched: ${v1.probes.map((p) => p.segment).join(" ")}\n`,
      );
      for (const p of v1.probes)
        for (const s of p.servers)
          expect(first.stderr).toContain(`ok segment ${p.segment}: DNS at ${s} answers ${p.name}`);
      expect(first.stderr).toMatch(/every DNS daemon rolled out/);
      let st = await c.state();
      expect(st.configmaps).toContain(`${ROUTER_NAMESPACE}/${DNS_PROBE_STATE}`);
      expect(st.configmaps).not.toContain(`${ROUTER_NAMESPACE}/${PROBE_STATE}`);
      expect(st.requests.filter((r) => r.method === "POST" && r.path.endsWith("/pods"))).toHaveLength(1);
      expect(st.pods).toEqual([]);

      // The trusted segment's gateways stop answering and its settings change: it alone is probed, fails naming
      // it and its addresses, and no DNS daemon changed, so none is rolled back.
      await c.silent(["10.20.0.1", "fd12:3456:789a:20::1"]);
      const edited = dnsSite((raw) => (raw.segments.find((x: Raw) => x.name === "trusted").description = "Renamed"));
      await c.apply(edited.objects);
      const run = await c.gate(edited.gate);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain("probing the segments this change touched: trusted\n");
      expect(run.stderr).toMatch(
        /the DNS daemons rolled out but the segments did not all answer: segment trusted: DNS at 10\.20\.0\.1: no answer for lab-rtr1\.trusted\.lab\.home\.arpa a within 1s \(;; connection timed out; no servers could be reached\); resolver answers, front does not → dns-front; segment trusted: DNS at fd12:3456:789a:20::1: no answer for lab-rtr1\.trusted\.lab\.home\.arpa aaaa within 1s \(.*\); resolver answers, front does not → dns-front\. dns-front did not change since it last answered: not rolled back\. This update failed\./,
      );
      st = await c.state();
      expect(st.requests.filter((r) => r.method === "PATCH")).toEqual([]);
    });

    it("fails naming the segment when a new front no longer listens there, and rolls the front back to what answered", async () => {
      const c = await cluster();
      const v1 = dnsSite();
      await c.apply(v1.objects);
      expect((await c.gate(v1.gate)).code).toBe(0);
      const before = await c.state();
      // A dnsdist revision rendered for a site whose iot zone has no DNS: it does not listen on iot's gateways.
      const deaf = dnsSite((raw) => {
        raw.zones.find((z: Raw) => z.name === "iot").services = raw.zones
          .find((z: Raw) => z.name === "iot")
          .services.filter((x: string) => x !== "dns");
        raw.dns.zones = raw.dns.zones.filter((z: Raw) => z.zone !== "iot");
      });
      await c.apply(deaf.objects.filter((o) => o.metadata.name.startsWith("dns-front")));
      const run = await c.gate(v1.gate);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        /the DNS daemons rolled out but the segments did not all answer: segment iot: DNS at 10\.30\.0\.1: no answer for lab-rtr1\.iot\.lab\.home\.arpa a within 1s \(.*\); resolver answers, front does not → dns-front/,
      );
      expect(run.stderr).toMatch(/\. dns-front rolled back to revision 1\. This update failed\./);
      expect(run.stderr).not.toMatch(/FAIL segment (guest|mgmt|trusted)/);
      const after = await c.state();
      const front = `${ROUTER_NAMESPACE}/dns-front`;
      expect(after.daemonsets[front].spec.template).toEqual(before.daemonsets[front].spec.template);
      expect(after.daemonsets[front].status.numberAvailable).toBe(1);
      // The front that answered is back: the next run probes the segments again (the front's revision is new) and passes.
      const next = await c.gate(v1.gate);
      expect(next.code, next.stderr).toBe(0);
    });
  });

  it("fails naming DoT and DoH when a new front has no TLS listeners, and rolls the front back to what answered", async () => {
    const c = await cluster();
    const v1 = dnsSite();
    expect(v1.probes.filter((p) => p.encrypted).map((p) => p.segment)).toEqual(["mgmt", "trusted"]);
    await c.apply(v1.objects);
    const first = await c.gate(v1.gate);
    expect(first.code, first.stderr).toBe(0);
    const before = await c.state();
    // A dnsdist revision rendered for a site without encrypted DNS: plain DNS answers, DoT and DoH do not.
    const plain = dnsSite((raw) => {
      for (const z of raw.dns.zones) delete z.encrypted;
    });
    await c.apply(plain.objects.filter((o) => o.metadata.name.startsWith("dns-front")));
    const run = await c.gate(v1.gate);
    expect(run.code).toBe(1);
    for (const [seg, at] of [
      ["mgmt", "10\\.10\\.0\\.1"],
      ["trusted", "10\\.20\\.0\\.1"],
    ])
      for (const proto of ["DoT", "DoH"])
        expect(run.stderr).toMatch(
          new RegExp(
            `segment ${seg}: ${proto} at ${at}: no answer for lab-rtr1\\.${seg}\\.lab\\.home\\.arpa a \\(WARNING: can't connect .*\\), plain DNS answers → dns-front`,
          ),
        );
    expect(run.stderr).not.toMatch(/FAIL segment [a-z]+: DNS at /);
    expect(run.stderr).toMatch(/\. dns-front rolled back to revision 1\. This update failed\./);
    const after = await c.state();
    const front = `${ROUTER_NAMESPACE}/dns-front`;
    expect(after.daemonsets[front].spec.template).toEqual(before.daemonsets[front].spec.template);
    const next = await c.gate(v1.gate);
    expect(next.code, next.stderr).toBe(0);
  });

  it("reads the DNS probe's verdict: a line implicates the daemon it names, a line naming none every DNS daemon", () => {
    const { blame } = dnsProbeStep(DNS_IMAGE, []);
    const lines = {
      "dns-front": "FAIL segment iot: DNS at 10.30.0.1: no answer (x; y); resolver answers, front does not → dns-front",
      "dns-auth": "FAIL segment iot: DNS at fd12::1: a is 1.2.3.4 not fd12::1; resolver …, authoritative … → dns-auth",
      none: "FAIL segment iot: DNS at 10.30.0.1: no answer for lab-rtr1.iot.lab.home.arpa a within 1s (timed out)",
      other: "FAIL segment iot: not a segment the router answers DNS on",
      dot: "FAIL segment trusted: DoT at 10.20.0.1: no answer for x a (WARNING: TLS; ERROR: y), plain DNS answers → dns-front",
      doh: "FAIL segment trusted: DoH at 10.20.0.1: x a is 10.9.9.9 not 10.20.0.1, plain DNS answers → dns-front",
    };
    // The gate's own test of a FAIL line (rollout.ts PROBE_SEGMENTS), by grep in both locales a run may have.
    const implicated = (line: string, locale: string) =>
      blame
        .filter(
          ({ pattern }) =>
            spawnSync("grep", ["-qE", `^FAIL segment [^:]*: (${pattern})`], {
              input: `${line}\n`,
              env: { ...process.env, LC_ALL: locale },
            }).status === 0,
        )
        .map((b) => b.daemon);
    for (const locale of ["C", "C.UTF-8"]) {
      expect(implicated(lines["dns-front"], locale), locale).toEqual(["dns-front"]);
      expect(implicated(lines["dns-auth"], locale), locale).toEqual(["dns-auth"]);
      expect(implicated(lines.none, locale), locale).toEqual(["dns-front", "dns-resolver", "dns-auth"]);
      expect(implicated(lines.other, locale), locale).toEqual([]);
      expect(implicated(lines.dot, locale), locale).toEqual(["dns-front"]);
      expect(implicated(lines.doh, locale), locale).toEqual(["dns-front"]);
    }
  });

  describe("the DNS gate rolls back only the daemon the probe blames", () => {
    // A change of every DNS daemon (front threads, a private domain, the zones' TTL) that leaves the segments as
    // they were; then one link of the chain stops answering where the next one asks it.
    const everyDaemon = (raw: Raw) => {
      raw.dns.frontThreads = 3;
      raw.dns.privateDomains = ["corp.example"];
      raw.dns.ttl = 600;
    };
    it.each([
      { daemon: "dns-front", silent: ["10.20.0.1", "fd12:3456:789a:20::1"] },
      { daemon: "dns-resolver", silent: ["127.0.0.1#5335"] },
      { daemon: "dns-auth", silent: ["127.0.0.1#5300"] },
    ])("$daemon, when it does not answer", async ({ daemon, silent }) => {
      const c = await cluster();
      const v1 = dnsSite();
      await c.apply(v1.objects);
      expect((await c.gate(v1.gate)).code).toBe(0);
      const before = await c.state();
      const v2 = dnsSite(everyDaemon);
      const changed = ["dns-front", "dns-resolver", "dns-auth"];
      const cm = (objects: K8sObject[], d: string) =>
        objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith(`${d}-`))!.metadata.name;
      for (const d of changed) expect(cm(v2.objects, d), d).not.toBe(cm(v1.objects, d));
      await c.apply(v2.objects);
      const updated = await c.state();
      await c.silent(silent);
      const run = await c.gate(v2.gate);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toMatch(new RegExp(`segment [a-z]+: DNS at [^;]*;.* → ${daemon}(;|\\.)`));
      expect(run.stderr).toMatch(new RegExp(`${daemon} rolled back to revision 1`));
      for (const d of changed.filter((x) => x !== daemon))
        expect(run.stderr).toContain(`${d} changed but no failure points at it: it keeps its new revision`);
      const after = await c.state();
      for (const d of changed) {
        const key = `${ROUTER_NAMESPACE}/${d}`;
        expect(after.daemonsets[key].spec.template, d).toEqual(
          (d === daemon ? before : updated).daemonsets[key].spec.template,
        );
      }
      expect(after.requests.filter((r) => r.method === "PATCH")).toHaveLength(1);
    });
  });

  describe("a probe that names no segment confirms nothing: every daemon that changed is rolled back", () => {
    it.each([
      { fault: "refused" as const, says: /the probe pod could not be created: .*forbidden: exceeded quota/ },
      { fault: "crash" as const, says: /the probe pod failed without naming a segment \(.*not found\)/ },
    ])("a probe pod $fault", async ({ fault, says }) => {
      const c = await cluster();
      const v1 = dnsSite();
      await c.apply(v1.objects);
      expect((await c.gate(v1.gate)).code).toBe(0);
      const before = await c.state();
      // Two of the three DNS daemons change (the front's threads, the zones' TTL); the resolver does not.
      const v2 = dnsSite((raw) => {
        raw.dns.frontThreads = 3;
        raw.dns.ttl = 600;
      });
      await c.apply(v2.objects);
      await c.probePods(fault);
      const run = await c.gate(v2.gate);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toMatch(says);
      expect(run.stderr).toContain("the probe named no segment, so nothing confirms the change");
      expect(run.stderr).toMatch(/dns-front rolled back to revision 1/);
      expect(run.stderr).toMatch(/dns-auth rolled back to revision 1/);
      expect(run.stderr).toContain("dns-resolver did not change since it last answered: not rolled back");
      const after = await c.state();
      for (const d of ["dns-front", "dns-resolver", "dns-auth"]) {
        const key = `${ROUTER_NAMESPACE}/${d}`;
        expect(after.daemonsets[key].spec.template, d).toEqual(before.daemonsets[key].spec.template);
      }
      expect(after.requests.filter((r) => r.method === "PATCH")).toHaveLength(2);
    });
  });

  async function servedSubnets(cm: string): Promise<string[]> {
    const out = await node!.run(
      `curl -sS --cacert ${node!.dir}/kube-ca.pem --cert <(printf '%s' "$C") --key <(printf '%s' "$K") https://10.10.0.1:6443/api/v1/namespaces/router-system/configmaps/${cm} | jq -r '.data["kea-dhcp4.json"] | fromjson | .Dhcp4.subnet4[].subnet'`,
      { env: { C: client.crt, K: client.key } },
    );
    return out.stdout.trim().split("\n");
  }
});
