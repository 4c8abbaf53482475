/**
 * The IDS on the appliance: the rendered IDS pod's Suricata processes (AF_PACKET on the watched links, and NFQUEUE
 * for the inline pairs, as the DaemonSet runs them) and block agent (its own uid) beside the loader with the site's
 * `[dynamic_block]` section. From the internet host, each of the six attack samples (ids-samples.ts: a port scan,
 * an SSH burst, a JNDI lookup in HTTP, EICAR over HTTP, a C2 domain lookup, TLS to a known-bad server name), each
 * from its own internet source, is alerted and its source is blocked at the XDP guard within 2 s (counted by the
 * guard as `dynamic`); its benign look-alike from another internet source on the same path raises nothing and that
 * source still reaches the forwarded host; where the forward leads into an inline pair, the attacks through it are
 * dropped by Suricata's verdict while the look-alikes are answered. Where the site's block duration is short, a
 * block is seen to expire on time.
 *
 * Stand-ins: the rules are the site's local rules written where suricata-update leaves the last good rules (the
 * appliance has no rule source to fetch from, so the updater does not run); the forwarded host answers HTTP with
 * busybox (TLS with openssl s_server for the TLS sample) in place of its probe server for the area's length; this
 * kernel cannot load nft's queue (test/helpers/nft-queue.ts: it loads as accept), so the queue is the stack's
 * iptables-nft rendering of the same model (ids/ips.iptables, test/ids/queue.test.ts shows both take the same
 * packets). The internet sources are INTERNET.idsPool4, apart from the pool other areas probe from: a block lasts
 * the site's duration.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { nthAddress } from "../../../../components/site/ip";
import type { PortForward } from "../../../../components/site/schema";
import { IDS_DAEMONSET } from "../../../../components/ids-stack/k8s";
import { planIds } from "../../../../components/ids-stack/plan";
import { renderLocalRules, ROUTER_IDS_PATHS } from "../../../../components/ids-stack/suricata";
import { type Appliance, type Host, ROOT } from "../appliance";
import { metrics } from "../checks";
import type { Daemon } from "../exec";
import { INTERNET } from "../internet";
import type { Area } from "../suite";
import { sleep, waitFor } from "../../../helpers/wait";
import { forwardTarget } from "./common";
import { LIVE_SAMPLES, type LiveSample, startServer, type Target } from "./ids-samples";

const SURICATA = { ids: `${IDS_DAEMONSET}-suricata-ids`, ips: `${IDS_DAEMONSET}-suricata-ips` };
const AGENT = `${IDS_DAEMONSET}-block-agent`;
const DYNAMIC = 'router_dataplane_drop_packets_total{reason="dynamic"}';
const ENTRIES = "router_dataplane_dynamic_block_entries";
const REMOVED = "router_dataplane_dynamic_block_removed_total";
/** Sample i's attacker and benign neighbour; then the source whose block is watched until it expires. */
const source = (n: number) => nthAddress(INTERNET.idsPool4, n);
const attacker = (i: number) => source(1 + 2 * i);
const neighbour = (i: number) => source(2 + 2 * i);
const EXPIRING = source(1 + 2 * LIVE_SAMPLES.length);
/** Block durations up to this are waited out by the expiry test. */
const EXPIRY_WAIT_MAX_S = 120;
const JNDI_SID = 9100003;

/** The first TCP forward of a single port on every WAN. */
function forward(site: Appliance["site"]): PortForward | undefined {
  // open to any internet source on every WAN: the area's attackers and neighbours are arbitrary internet hosts
  return site.portForwards.find((p) => p.protocol === "tcp" && !String(p.port).includes("-") && !p.wans && !p.sources);
}

interface Running {
  started: Daemon[];
  /** The forwarded host's server now (HTTP or TLS). */
  server?: Daemon;
  /** The forwarded host's own probe server, stopped for the area's length. */
  serve?: Daemon;
  host: Host;
  toPort: number;
  target: Target;
  inline: boolean;
}

interface Alert {
  src_ip: string;
  dest_ip: string;
  alert: { signature_id: number; action: string };
}

/** The EVE alerts a Suricata process of the pod wrote (by its log subdirectory). */
function alerts(app: Appliance, run: "ids" | "ips"): Alert[] {
  const eve = join(app.pods.hostPath(ROUTER_IDS_PATHS.logs), run, "eve.json");
  if (!existsSync(eve)) return [];
  return readFileSync(eve, "utf8")
    .split("\n")
    .filter((l) => l.includes('"event_type":"alert"'))
    .map((l) => JSON.parse(l) as Alert);
}

const allAlerts = (app: Appliance) => [...alerts(app, "ids"), ...alerts(app, "ips")];

/** Starts a pod of the render and waits for its Suricata engine. */
export async function startSuricata(app: Appliance, name: string): Promise<Daemon> {
  const d = app.pods.start(app.pods.spec(name));
  await waitFor(
    `${name}'s engine`,
    () => {
      if (d.exited) throw new Error(`${name} exited:\n${d.log().slice(-3000)}`);
      return d.log().includes("Engine started");
    },
    90_000,
    200,
  );
  return d;
}

/** The block agent as its container runs it: its own uid, no capability of its own. */
function startAgent(app: Appliance): Daemon {
  const agent = app.pods.spec(AGENT);
  const uid = agent.runAs!;
  // the harness runs a pod's command as root with the container's capabilities; the agent's runAsUser is a second
  // setpriv, which alone holds SETUID and SETGID (a process of another uid keeps no capability across execve)
  return app.pods.start(
    {
      ...agent,
      command: [
        ...["setpriv", "--reuid", String(uid.uid), "--regid", String(uid.gid), "--clear-groups"],
        join(ROOT, "images/ids", agent.command[0]),
        ...agent.command.slice(1),
      ],
    },
    [...agent.capabilities, "SETGID", "SETUID"],
  );
}

/** Has the forwarded host serve `kind` on the forward's target port, replacing what served before. */
async function serve(app: Appliance, r: Running, kind: Target["serve"]): Promise<void> {
  if (r.server && r.target.serve === kind && !r.server.exited) return;
  await r.server?.stop();
  r.server = startServer(app, r.host.ns, r.host.addr4!, r.toPort, kind);
  r.target.serve = kind;
  await waitFor(`the forwarded host's ${kind} server`, () => connects(app, r, neighbour(0), 1), 10_000, 200);
}

async function setUp(app: Appliance, r: Running): Promise<void> {
  for (let n = 1; n <= 1 + 2 * LIVE_SAMPLES.length; n++)
    app.exec(app.inet, ["ip", "addr", "add", `${source(n)}/32`, "dev", "lo"]);
  // the last good rules, as an earlier update would have left them on the node
  writeFileSync(join(app.pods.hostPath(ROUTER_IDS_PATHS.rules), "suricata.rules"), renderLocalRules(app.site));
  r.started.push(startAgent(app));
  r.started.push(await startSuricata(app, SURICATA.ids));
  if (r.inline) {
    const queue = app.opts.rendered.files.get("ids/ips.iptables");
    if (!queue) throw new Error("the site has inline pairs but the render has no ids/ips.iptables");
    for (const restore of ["iptables-restore", "ip6tables-restore"])
      app.exec(app.router, [restore, "--noflush"], { input: queue });
    r.started.push(await startSuricata(app, SURICATA.ips));
  }
  // the forwarded host serves for the area's length
  await r.serve?.stop();
  const www = join(app.work, "ids-www");
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, "index.html"), "ok\n");
  await serve(app, r, "http");
}

/**
 * Whether an internet source's TCP connection to the forward is established within `timeout` seconds, whatever
 * the server then does with it (curl's connect time is 0 when it never connected). A source blocked at the guard
 * gets no SYN-ACK.
 */
async function connects(app: Appliance, r: Running, src: string, timeout: number): Promise<boolean> {
  const url = `http://${r.target.wan}:${r.target.port}/index.html`;
  const argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{time_connect}", "-m", String(timeout), "--interface", src];
  const res = await app.run(app.inet, [...argv, url], { allowFail: true });
  return Number(res.stdout) > 0;
}

/** The loader's log line of the entry it added for src (its time: the loader's clock, ms since the epoch). */
function blockLine(app: Appliance, src: string): { time: number; msg: string } | undefined {
  for (const line of app.loader!.log().split("\n")) {
    // a line being written is not complete yet
    if (!line.startsWith("{") || !line.endsWith("}")) continue;
    const j = JSON.parse(line) as { time: string; event: string; msg: string };
    if (j.event === "dynamic_block" && j.msg.startsWith(`${src} blocked for `))
      return { time: Date.parse(j.time), msg: j.msg };
  }
  return undefined;
}

/** Waits up to 5 s for the loader's entry for src; the ms from t0 until it was added. */
async function blockedAfter(app: Appliance, src: string, t0: number, sid: number): Promise<number> {
  const line = await waitFor(`the loader's block of ${src}`, () => blockLine(app, src), 5_000, 50);
  expect(line.msg).toContain(`IDS alert sid ${sid};`);
  return line.time - t0;
}

export const ids: Area = {
  title: "ids",
  appliesTo: (site) => site.ids.enabled && site.ids.block !== undefined && forward(site) !== undefined,
  tests(ctx) {
    let r: Running | undefined;
    beforeAll(async () => {
      const app = ctx.app;
      const pf = forward(app.site)!;
      const host = forwardTarget(app, pf)!;
      r = {
        started: [],
        serve: app.daemons.list().find((d) => d.name === `${host.ns}-serve` && !d.exited),
        host,
        toPort: pf.toPort ?? Number(pf.port),
        target: { wan: app.wans[0].addr4!, port: Number(pf.port), serve: "http" },
        // the forward leads from the WAN's zone into the target's: an inline pair when the site names it
        inline: app.site.ids.ips.pairs.some((p) => p.from === app.plan.wans[0].zone && p.to === host.segment.zone),
      };
      await setUp(app, r);
    }, 240_000);
    afterAll(async () => {
      const app = ctx.app;
      for (const d of (r?.started ?? []).reverse()) await d.stop();
      await r?.server?.stop();
      if (r?.serve) app.serve(r.host.ns, r.host.name);
      for (const tool of ["iptables", "ip6tables"])
        for (const op of ["-F", "-X"]) app.exec(app.router, [tool, "-t", "security", op], { allowFail: true });
    }, 60_000);

    const diagnosis = (app: Appliance) =>
      [
        ...[...r!.started, ...(r!.server ? [r!.server] : [])].map((d) => `--- ${d.name}\n${d.log().slice(-1200)}`),
        `--- alerts: ${JSON.stringify(allAlerts(app).slice(-6))}`,
        `--- loader\n${app.loader!.log().slice(-800)}`,
      ].join("\n");

    LIVE_SAMPLES.forEach((sample, i) => {
      it(`${sample.name} from the internet is alerted and its source blocked at the XDP guard within 2 s; its look-alike from another source raises nothing and is answered; inline, the attack through the forward is dropped`, async () => {
        const took = await liveSample(ctx.app, r!, sample, attacker(i), neighbour(i), diagnosis);
        const verdict = r!.inline && sample.inline ? "; dropped inline" : "";
        console.log(
          `${ctx.title}: ${sample.name}: ${attacker(i)} blocked at XDP after ${took} ms${verdict}; ${neighbour(i)} unaffected`,
        );
      }, 60_000);
    });

    it("a block expires on time: the source is dropped until the site's block duration has passed and reaches the forward again right after", async (t) => {
      const app = ctx.app;
      const seconds = planIds(app.site, app.plan).blockSeconds;
      if (seconds > EXPIRY_WAIT_MAX_S) {
        console.log(`${ctx.title}: block duration ${seconds} s: not waited out here (the branch site's is short)`);
        t.skip();
      }
      await serve(app, r!, "http");
      const removed = (await metrics(app)).get(REMOVED) ?? 0;
      const t0 = Date.now();
      const attack = LIVE_SAMPLES.find((s) => s.sid === JNDI_SID)!.attack(app, r!.target, EXPIRING);
      const took = await blockedAfter(app, EXPIRING, t0, JNDI_SID).catch((e: Error) => {
        throw new Error(`${e.message}:\n${diagnosis(app)}`);
      });
      await attack;
      expect(took).toBeLessThan(2_000);
      expect(await connects(app, r!, EXPIRING, 1.5), "the blocked source").toBe(false);
      // the guard stops dropping at the entry's expiry by itself: polled from 1.5 s before it
      const expiry = t0 + took + seconds * 1000;
      await sleep(Math.max(0, expiry - 1_500 - Date.now()));
      let back: number | undefined;
      while (back === undefined && Date.now() < expiry + 5_000) {
        if (await connects(app, r!, EXPIRING, 0.3)) back = Date.now();
        else await sleep(100);
      }
      expect(back, `${EXPIRING} still blocked 5 s after its block expired:\n${diagnosis(app)}`).toBeDefined();
      // the entry is written just before its log line (the loader's clock is this machine's)
      expect(back!).toBeGreaterThanOrEqual(expiry - 250);
      expect(back!).toBeLessThanOrEqual(expiry + 2_500);
      await waitFor("the loader's removal of the entry", () => app.loader!.log().includes(`${EXPIRING} unblocked`));
      expect((await metrics(app)).get(REMOVED) ?? 0).toBeGreaterThan(removed);
      console.log(`${ctx.title}: ${EXPIRING} blocked for ${seconds} s, back ${back! - expiry} ms after its expiry`);
    }, 240_000);
  },
};

/** One sample: the attack, the block and its timing, the alert, the inline verdict, then the look-alike. */
async function liveSample(
  app: Appliance,
  r: Running,
  sample: LiveSample,
  src: string,
  other: string,
  diagnosis: (app: Appliance) => string,
): Promise<number> {
  await serve(app, r, sample.serve);
  expect(await connects(app, r, src, 2), "the attacker reaches the forward before its attack").toBe(true);
  // the look-alike first: inline, the dropped attack would hold the TLS server's one connection
  const benign = await sample.benign(app, r.target, other);
  if (benign.answered !== undefined) expect(benign.answered, `the look-alike: ${benign.detail}`).toBe(true);
  const before = await metrics(app);
  const t0 = Date.now();
  // not awaited: where the pair is inline, Suricata drops the attack itself and the client waits out its timeout
  const attack = sample.attack(app, r.target, src);
  const took = await blockedAfter(app, src, t0, sample.sid).catch(async (e: Error) => {
    throw new Error(`${e.message} (the attack: ${(await attack).detail}):\n${diagnosis(app)}`);
  });
  const outcome = await attack;
  expect(took).toBeLessThan(2_000);
  expect(await connects(app, r, src, 1.5), "the blocked attacker").toBe(false);
  const after = await metrics(app);
  // where the pair is inline the IPS process raises the dropped ones: what it dropped is never acknowledged, and the
  // IDS process inspects a direction's data once the other side acknowledges it
  await waitFor(`the alert ${sample.sid} from ${src}`, () =>
    allAlerts(app).some((a) => a.src_ip === src && a.alert.signature_id === sample.sid),
  );
  expect(after.get(DYNAMIC) ?? 0).toBeGreaterThan(before.get(DYNAMIC) ?? 0);
  // one entry added: the entries' change plus those removed meanwhile (earlier samples' may expire where the
  // duration is short)
  const delta = (m: string) => (after.get(m) ?? 0) - (before.get(m) ?? 0);
  expect(delta(ENTRIES) + delta(REMOVED)).toBe(1);
  if (r.inline && sample.inline) {
    expect(outcome.answered, `the attack was answered (${outcome.detail}):\n${diagnosis(app)}`).toBe(false);
    expect(
      alerts(app, "ips").some(
        (a) => a.src_ip === src && a.alert.signature_id === sample.sid && a.alert.action === "blocked",
      ),
    ).toBe(true);
  }
  // the neighbour on the same path: nothing raised, nothing blocked, still connecting
  expect(await connects(app, r, other, 2), "the neighbour on the same path").toBe(true);
  expect(allAlerts(app).filter((a) => a.src_ip === other || a.dest_ip === other)).toEqual([]);
  expect(app.loader!.log()).not.toContain(`${other} blocked`);
  return took;
}
