/**
 * "Filters malicious traffic samples", offline: each sample capture (test/ids/lib/samples.ts, written by our own
 * generator) goes through the real Suricata (`suricata -r`) with the dev site's rendered configuration and its
 * rules; the attack must raise exactly its rule's alert — blocked when Suricata runs inline (--simulate-ips) and
 * the rule drops — and the benign look-alike must raise none. The rules file is what suricata-update builds from
 * the site's local rules (the ET Open download is not reachable here).
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tier } from "../helpers/tier";
import { idsPathsUnder } from "./lib/paths";
import { tempDir } from "../helpers/temp";
import { devSite } from "../helpers/dev-site";
import { planIds } from "../../components/ids-stack/plan";
import { suricataFiles, type IdsPaths } from "../../components/ids-stack/suricata";
import { Capture } from "./lib/pcap";
import { SAMPLES, type Sample } from "./lib/samples";

const t = tier("ids samples", { commands: ["suricata"] });

interface Alert {
  sid: number;
  action: string;
  src: string;
  severity: number;
}

/** The dev site's Suricata files in a fresh directory tree; the local rules as suricata.rules. */
function rendered(): IdsPaths {
  const root = tempDir("router-ids-samples-");
  const paths = idsPathsUnder(root);
  for (const d of [paths.config, paths.rules, paths.data, paths.run]) mkdirSync(d, { recursive: true });
  const { site, plan } = devSite();
  const files = suricataFiles(site, planIds(site, plan), paths);
  for (const [name, text] of files) writeFileSync(join(paths.config, name), text);
  writeFileSync(join(paths.rules, "suricata.rules"), files.get("local.rules")!);
  return paths;
}

/** Runs one capture through Suricata; returns its alerts. */
function run(paths: IdsPaths, sample: Sample, kind: "attack" | "benign", inline: boolean): Alert[] {
  const dir = join(paths.logs, `${sample.sid}-${kind}-${inline ? "ips" : "ids"}`);
  mkdirSync(dir, { recursive: true });
  const pcap = join(dir, "sample.pcap");
  const c = new Capture();
  sample[kind](c);
  c.write(pcap);
  const args = ["-r", pcap, "-c", join(paths.config, "suricata.yaml"), "-l", dir, "-k", "none"];
  // The block agent's socket is not there offline; that output stays off.
  args.push("--set", "outputs.1.eve-log.enabled=no", ...(inline ? ["--simulate-ips"] : []));
  const r = spawnSync("suricata", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`suricata -r failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return readFileSync(join(dir, "eve.json"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((e) => e.event_type === "alert")
    .map((e) => ({ sid: e.alert.signature_id, action: e.alert.action, src: e.src_ip, severity: e.alert.severity }));
}

describe.skipIf(!t.ok)("malicious traffic samples through Suricata with the rendered configuration", () => {
  const paths = t.ok ? rendered() : undefined;
  const blockAt = devSite().site.ids.block.severity;

  for (const sample of SAMPLES) {
    it(`${sample.name}: alerted once by sid ${sample.sid}, from the attacker, severe enough to block it`, () => {
      const alerts = run(paths!, sample, "attack", false);
      expect(alerts.map((a) => [a.sid, a.action, a.src])).toEqual([[sample.sid, "allowed", "203.0.113.66"]]);
      expect(alerts[0]!.severity).toBeLessThanOrEqual(blockAt);
    });

    it(`${sample.name}: inline, ${sample.drops ? "dropped" : "alerted and let through (an alert rule)"}`, () => {
      const alerts = run(paths!, sample, "attack", true);
      expect(alerts.map((a) => [a.sid, a.action])).toEqual([[sample.sid, sample.drops ? "blocked" : "allowed"]]);
    });

    it(`${sample.name}: the benign look-alike raises no alert, inline or not`, () => {
      expect(run(paths!, sample, "benign", false)).toEqual([]);
      expect(run(paths!, sample, "benign", true)).toEqual([]);
    });
  }
});
