/**
 * The frr pod restarts without a routing outage. Its processes end the way the kubelet ends a container (SIGTERM
 * to PID 1, SIGKILL to every process of the container once terminationGracePeriodSeconds pass): zebra has no
 * chance to remove its routes, and at the next start it reads the kernel's routes of its own protocols and sweeps
 * those left from the previous run (zebra/rt_netlink.c is_selfroute, zebra/zebra_rib.c rib_sweep_table) — at
 * once by default, which would take the router's OSPF-learned routes away until the new ospfd's adjacency is
 * Full again. frr-start runs zebra with `-K` (zebra/main.c: the sweep waits that many seconds), so the old
 * routes keep forwarding until the new ospfd installs its own over them (a netlink replace, no gap), and only
 * what it did not learn again is swept.
 * Proven here, in namespaces: the real frr-start with the rendered frr.conf, as the node runs it (a mount
 * namespace holding the pod's /etc/frr, /var/run/frr, /var/tmp and the image's /etc/group, and a PID namespace
 * of its own, whose PID 1 ending ends the rest as the container runtime does), and a neighbour FRR that
 * advertises a prefix over OSPF with the default timers (the rendered config sets none, and both ends must
 * agree). Through a restart the learned route is in the router's kernel table at every 100 ms poll, pings over
 * it get every answer, and once the shortened sweep delay has passed the route is still there: the new ospfd
 * learned it again, while a route of zebra's that OSPF no longer learns is gone (the sweep ran).
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Shell, type Daemon } from "../e2e/lib/exec";
import { devSite } from "../helpers/dev-site";
import { tier } from "../helpers/tier";
import { sleep, waitFor } from "../helpers/wait";
import { FRR_DAEMONS, FrrInstance, frrPodScript } from "./frr";
import { Netns } from "./netns";

const t = tier("the frr pod's restart and stop", {
  root: true,
  commands: ["ip", "mount", "unshare", "node", "vtysh"],
  files: ["zebra", "staticd", "ospfd", "watchfrr"].map((d) => `${FRR_DAEMONS}/${d}`),
});

const ROUTER = "10.50.0.1";
const PEER = "10.50.0.254";
/** The neighbour's prefix, learned over OSPF, and an address in it that answers pings. */
const LEARNED = "172.30.9.0/24";
const TARGET = "172.30.9.1";
/** The sweep delay frr-start is given here (FRR_RESTART_GRACE): longer than the re-convergence, shorter than its default. */
const GRACE_S = 25;
/** The pods' terminationGracePeriodSeconds (components/daemonset.ts). */
const KUBELET_GRACE_MS = 10_000;

const dev = devSite((raw) => {
  raw.routing = { ospf: { routerId: "10.10.0.1", segments: ["servers"], redistribute: ["connected"] } };
});

const PEER_CONF = [
  "frr defaults traditional",
  "hostname peer",
  "interface eth0",
  " ip ospf area 0.0.0.0",
  "!",
  "router ospf",
  ` ospf router-id ${PEER}`,
  " redistribute connected",
  "!",
  "",
].join("\n");

/** A UDP echo server: sends every datagram back. */
const ECHO = `
const s = require("node:dgram").createSocket("udp4");
s.on("message", (m, r) => s.send(m, r.port, r.address));
s.bind(Number(process.argv[3]), process.argv[2], () => console.log("ready"));
`;

/** Sends a numbered datagram every 100 ms; prints "ok N" for each echo and "err N CODE" for each failed send. */
const SENDER = `
const s = require("node:dgram").createSocket("udp4");
const [host, port] = process.argv.slice(2);
let n = 0;
s.on("message", (m) => console.log("ok " + m.toString()));
setInterval(() => {
  const seq = String(++n);
  s.send(seq, Number(port), host, (e) => e && console.log("err " + seq + " " + e.code));
}, 100);
`;
const ECHO_PORT = 7007;
/** A route of zebra's that OSPF no longer learns (as a withdrawn prefix leaves behind): the sweep removes it. */
const GONE = "172.30.99.0/24";

interface KernelRoute {
  dst: string;
  protocol?: string;
  gateway?: string;
}

describe.skipIf(!t.ok)("the frr pod's restart and stop", () => {
  const lab = new Netns("fg");
  const shell = new Shell(lab.dir);
  const pod = join(lab.dir, "pod");
  const peer = new FrrInstance(lab, "peer", lab.name("frrp"));
  let frr: Daemon | undefined;

  /** The router's main-table IPv4 routes (`-d` names every protocol). */
  const routes = (): KernelRoute[] =>
    JSON.parse(
      lab.exec("rtr", ["ip", "-d", "-j", "-4", "route", "show", "table", "main"]).stdout || "[]",
    ) as KernelRoute[];
  const learned = () => routes().filter((r) => r.dst === LEARNED);
  const adjacencyFull = () => {
    const n = peer.json<{ neighbors: Record<string, { nbrState?: string }[]> }>("show ip ospf neighbor json");
    return n?.neighbors?.["10.10.0.1"]?.[0]?.nbrState?.startsWith("Full") === true;
  };

  /** A new frr pod: fresh writable directories, frr-start in its own mount and PID namespaces. */
  function startFrrPod(): Daemon {
    const script = frrPodScript(pod, dev.site, dev.plan);
    const env = { ...process.env, FRR_RESTART_GRACE: String(GRACE_S) };
    return shell.daemon(
      "frr-pod",
      lab.name("rtr"),
      ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script],
      env,
    );
  }

  /** The pod's PID 1 (the child unshare forked), seen from here. */
  function podInit(d: Daemon): number {
    const children = readFileSync(`/proc/${d.pid}/task/${d.pid}/children`, "utf8").trim().split(/\s+/);
    return Number(children[0]);
  }

  /** Ends the pod as the kubelet does: SIGTERM to PID 1, SIGKILL to all once the grace period passes. */
  async function killAsKubelet(d: Daemon): Promise<void> {
    const init = podInit(d);
    process.kill(init, "SIGTERM");
    const end = Date.now() + KUBELET_GRACE_MS;
    while (!d.exited && Date.now() < end) await sleep(100);
    // PID 1's end takes every process of its PID namespace with it (the runtime kills the container's cgroup)
    if (!d.exited) process.kill(init, "SIGKILL");
    await waitFor("the frr pod's end", () => d.exited, 5_000, 50);
  }

  beforeAll(async () => {
    lab.add("rtr", "peer");
    lab.link("rtr", "lan0.50", "peer", "eth0");
    lab.ip("rtr", [`address add ${ROUTER}/24 dev lan0.50`]);
    lab.ip("peer", [`address add ${PEER}/24 dev eth0`, `address add ${TARGET}/24 dev lo`]);
    chmodSync(lab.dir, 0o755);
    mkdirSync(pod, { recursive: true, mode: 0o755 });
    writeFileSync(join(lab.dir, "peer.conf"), PEER_CONF, { mode: 0o644 });
    writeFileSync(join(lab.dir, "echo.js"), ECHO);
    writeFileSync(join(lab.dir, "sender.js"), SENDER);
    const echo = shell.daemon("udp-echo", lab.name("peer"), [
      "node",
      join(lab.dir, "echo.js"),
      TARGET,
      String(ECHO_PORT),
    ]);
    await waitFor("the echo server", () => echo.log().includes("ready"), 10_000, 50);
    peer.start(["zebra", "ospfd"], join(lab.dir, "peer.conf"));
    frr = startFrrPod();
    await waitFor("the learned route in the router's kernel", () => learned().length > 0, 90_000, 250).catch(
      (e: Error) => {
        throw new Error(`${e.message}\nfrr pod:\n${frr?.log()}`);
      },
    );
  }, 100_000);

  afterAll(async () => {
    if (frr && !frr.exited) process.kill(podInit(frr), "SIGKILL");
    await shell.daemons.stopAll();
    peer.stop();
    lab.close();
  });

  it("keeps the learned route and the traffic over it through a restart, and the new ospfd keeps it after the sweep", async () => {
    expect(learned()).toEqual([expect.objectContaining({ protocol: "ospf", gateway: PEER })]);
    const sender = shell.daemon("udp-sender", lab.name("rtr"), [
      "node",
      join(lab.dir, "sender.js"),
      TARGET,
      String(ECHO_PORT),
    ]);
    const gaps: number[] = [];
    let polling = true;
    const start = Date.now();
    const poller = (async () => {
      while (polling) {
        if (learned().length === 0) gaps.push(Date.now() - start);
        await sleep(100);
      }
    })();
    await sleep(1_000);
    await killAsKubelet(frr!);
    // the stop left zebra's routes in place: what the next start keeps
    expect(learned()).toEqual([expect.objectContaining({ protocol: "ospf", gateway: PEER })]);
    lab.ip("rtr", [`route add ${GONE} via ${PEER} proto ospf metric 20`]);
    frr = startFrrPod();
    const restarted = Date.now();
    await waitFor("the adjacency Full again", adjacencyFull, 60_000, 250);
    // past the new zebra's sweep: what is left is what the new ospfd installed
    await sleep(Math.max(0, restarted + (GRACE_S + 3) * 1000 - Date.now()));
    polling = false;
    await poller;
    await sleep(500); // the last echoes
    await sender.stop();
    expect(gaps, `the learned route was missing at these ms:\n${frr.log()}`).toEqual([]);
    expect(learned()).toEqual([expect.objectContaining({ protocol: "ospf", gateway: PEER })]);
    expect(routes().filter((r) => r.dst === GONE)).toEqual([]);
    // every datagram sent before the end (the last few may still be in flight) came back
    const lines = sender.log().split("\n");
    const sent = Math.max(...lines.map((l) => Number(/^(?:ok|err) (\d+)/.exec(l)?.[1] ?? 0)));
    const answered = new Set(lines.flatMap((l) => (l.startsWith("ok ") ? [Number(l.slice(3))] : [])));
    const lost = Array.from({ length: sent - 5 }, (_, i) => i + 1).filter((i) => !answered.has(i));
    expect(sent).toBeGreaterThan(100);
    expect(
      lost,
      lines
        .filter((l) => l.startsWith("err"))
        .slice(0, 20)
        .join("\n"),
    ).toEqual([]);
  }, 120_000);
});
