/**
 * The appliance's kubelet (lib/kubelet.ts and tools/kubelet-stand-in.mjs) behaves like the kubelet it stands in
 * for, so that a scrape that works against it works against a node's: bearer tokens only (401 otherwise), the
 * kubelet's authorization of a /metrics path as get on nodes/metrics under RBAC (a role that grants only the
 * non-resource URL is refused, as a real kubelet refuses it), and cAdvisor's memory of a container equal to what
 * the kernel accounts for the process the harness put in its cgroup: a process holding 64 MiB of anonymous memory
 * is a container whose working set is at least that and at most its whole resident set plus slack, under a pod
 * series (container="") that holds it. The node ports' probes still get their answer.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { tier } from "../helpers/tier";
import { tempDir } from "../helpers/temp";
import { waitFor } from "../helpers/wait";
import { Shell, type Daemon } from "./lib/exec";
import { Kubelet } from "./lib/kubelet";
import { ROOT } from "./lib/pods";
import type { PodSpec } from "./lib/rendered";

const t = tier("appliance kubelet", { root: true, commands: ["ip", "nsenter", "openssl", "curl", "socat"] });

const NS = `kubelet${process.pid}`;
const MIB = 1 << 20;

/** The render's RBAC, as files: `reader` may get nodes/metrics, `urls` has only the non-resource URL. */
function rbacFiles(): Map<string, string> {
  const role = (name: string, rules: unknown[]) => ({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name },
    rules,
  });
  const binding = (name: string, sa: string) => ({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
    subjects: [{ kind: "ServiceAccount", name: sa, namespace: "monitoring" }],
  });
  const objects = [
    role("reader", [{ apiGroups: [""], resources: ["nodes/metrics"], verbs: ["get"] }]),
    binding("reader", "reader"),
    role("urls", [{ nonResourceURLs: ["/metrics", "/metrics/cadvisor"], verbs: ["get"] }]),
    binding("urls", "urls"),
  ];
  return new Map(objects.map((o, i) => [`k8s/rbac-${i}.yaml`, stringify(o)]));
}

function pod(container: string): PodSpec {
  return {
    name: `metrics-${container}`,
    daemonSet: "metrics",
    namespace: "monitoring",
    container,
    image: "example/metrics@sha256:0",
    command: [],
    env: {},
    volumes: [],
    hostNetwork: true,
    capabilities: [],
    noNewPrivs: true,
  };
}

describe.skipIf(!t.ok)("the appliance's kubelet", () => {
  let shell: Shell;
  let kubelet: Kubelet;
  let hog: Daemon;
  let token = (_sa: string) => "";

  const get = (path: string, bearer?: string) => {
    const r = shell.exec(NS, [
      "curl",
      "-sk",
      "--max-time",
      "5",
      "-w",
      "\n%{http_code}",
      ...(bearer === undefined ? [] : ["-H", `Authorization: Bearer ${bearer}`]),
      `https://127.0.0.1:10250${path}`,
    ]);
    const i = r.stdout.lastIndexOf("\n");
    return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
  };

  beforeAll(async () => {
    shell = new Shell(tempDir("kubelet-"));
    const ipr = (argv: string[]) => {
      const r = spawnSync("ip", argv, { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`ip ${argv.join(" ")}: ${r.stderr}`);
    };
    ipr(["netns", "add", NS]);
    ipr(["-n", NS, "link", "set", "lo", "up"]);
    kubelet = new Kubelet(shell, `kubelet${process.pid}`, "node1", rbacFiles());
    const d = kubelet.start(NS, join(ROOT, "test/e2e/tools/kubelet-stand-in.mjs"));
    await waitFor("the kubelet's port", () => d.log().includes("listening"), 10_000);
    token = (sa) => readFileSync(join(kubelet.serviceAccountDir("monitoring", sa), "token"), "utf8");
    // a container whose process holds 64 MiB of anonymous memory
    hog = shell.daemon(
      "hog",
      NS,
      [
        process.execPath,
        "-e",
        "globalThis.b = Buffer.alloc(64 << 20, 1); console.log('held'); setInterval(() => {}, 1e6)",
      ],
      undefined,
      kubelet.cgroupOf(pod("hog")),
    );
    await waitFor("the memory to be held", () => hog.log().includes("held"), 10_000);
  }, 30_000);

  afterAll(async () => {
    await shell?.daemons.stopAll();
    spawnSync("ip", ["netns", "del", NS]);
    kubelet?.stop();
  });

  it("refuses a request without a token, or with one it does not know (401)", () => {
    expect(get("/metrics/cadvisor").status).toBe(401);
    expect(get("/metrics/cadvisor", "not-a-token").status).toBe(401);
  });

  it("authorizes /metrics/cadvisor as get on nodes/metrics: a role with only the non-resource URL is refused (403)", () => {
    const r = get("/metrics/cadvisor", token("urls"));
    expect(r.status).toBe(403);
    expect(r.body).toBe(
      "Forbidden (user=system:serviceaccount:monitoring:urls, verb=get, resource=nodes, subresource=metrics)",
    );
    expect(get("/metrics/cadvisor", token("reader")).status).toBe(200);
  });

  it("gives the container's working set as the kernel accounts its process's memory, under its pod's", () => {
    const r = get("/metrics/cadvisor", token("reader"));
    const series = (name: string) =>
      r.body
        .split("\n")
        .filter((l) => l.startsWith(`${name}{`))
        .map((l) => {
          const m = /^[a-z_]+\{(.*)\} (\d+)$/.exec(l)!;
          const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
          return { labels, value: Number(m[2]) };
        });
    const ws = series("container_memory_working_set_bytes");
    const container = ws.find((s) => s.labels.container === "hog");
    const podSeries = ws.find((s) => s.labels.container === "" && s.labels.pod === "metrics-node1");
    expect(container, r.body).toBeDefined();
    expect(container?.labels).toMatchObject({
      namespace: "monitoring",
      pod: "metrics-node1",
      image: "example/metrics@sha256:0",
    });
    // the process's resident set, as the kernel reports it for the process itself
    const status = readFileSync(`/proc/${hog.pid}/status`, "utf8");
    const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) * 1024;
    expect(container!.value).toBeGreaterThanOrEqual(64 * MIB);
    expect(container!.value).toBeLessThanOrEqual(rss + 64 * MIB);
    expect(podSeries!.value).toBeGreaterThanOrEqual(container!.value);
  });

  it("answers a probe that waits for the server to speak, as the other node ports do", () => {
    const r = shell.exec(NS, ["socat", "-u", "TCP:127.0.0.1:10250", "-"], { timeoutMs: 5000 });
    expect(r.stdout).toBe("router tcp 10250 127.0.0.1\n");
  });
});
