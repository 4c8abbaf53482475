/**
 * The local EVE file stays bounded (components/ids-stack/k8s.ts eveRotateLoop, the IDS pod's `eve-rotate`
 * container): the real Suricata, inline on the dev site's queues as the pod's `suricata-ips` container runs it (its
 * arguments, the rendered suricata.yaml, its command socket), in a network namespace of its own, writes its stats to
 * eve.json every second; the rotation loop, with a small size limit and a short period, moves the file aside and
 * has Suricata reopen it through its command socket. Over several rotations neither file outgrows the limit by
 * more than what Suricata writes between two checks, Suricata writes to the new file after each rotation, and no
 * second of stats is missing from the two files (records written between the move and the reopen land in the
 * moved file).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { tier } from "../helpers/tier";
import { tempDir } from "../helpers/temp";
import { devSite } from "../helpers/dev-site";
import { ip, sleep, spawnInNetns, stopProcess, waitFor } from "../ebpf/lib";
import { planIds } from "../../components/ids-stack/plan";
import { eveRotateLoop, renderIdsObjects } from "../../components/ids-stack/k8s";
import { ROUTER_IDS_PATHS, renderLocalRules, suricataFiles, type IdsPaths } from "../../components/ids-stack/suricata";
import { idsPathsUnder } from "./lib/paths";

const t = tier("ids eve rotation", {
  root: true,
  commands: ["ip", "nsenter", "suricata", "suricatasc", "stat", "/bin/sh"],
});

const NS = `idsrot${process.pid}`;
/** The test's limit: one stats record (about 8 kB). */
const MAX_BYTES = 8192;
const CHECK_SECONDS = 0.5;

describe.skipIf(!t.ok)("the local EVE file's rotation", () => {
  const { site, plan } = devSite();
  const ids = planIds(site, plan);
  let work = "";
  let paths: IdsPaths;
  let pod: IDaemonSet;
  let suricata: ChildProcess | undefined;
  let rotate: ChildProcess | undefined;
  let log = "";
  const eve = () => join(paths.logs, "ips", "eve.json");
  const size = (f: string) => (existsSync(f) ? statSync(f).size : 0);
  /** The stats records' timestamps (whole seconds) of a file. */
  const stamps = (f: string) =>
    existsSync(f)
      ? readFileSync(f, "utf8")
          .split("\n")
          .filter((l) => l.includes('"event_type":"stats"'))
          .map((l) => Math.round(Date.parse((JSON.parse(l) as { timestamp: string }).timestamp) / 1000))
      : [];

  beforeAll(async () => {
    work = tempDir("ids-rotation-");
    paths = idsPathsUnder(work);
    for (const d of [paths.config, paths.rules, paths.data, join(paths.logs, "ips"), paths.run])
      mkdirSync(d, { recursive: true });
    for (const [name, text] of suricataFiles(site, ids, paths)) writeFileSync(join(paths.config, name), text);
    writeFileSync(join(paths.rules, "suricata.rules"), renderLocalRules(site));
    pod = renderIdsObjects(ids, suricataFiles(site, ids), "ids").find((o) => o.kind === "DaemonSet") as IDaemonSet;
    const argv = pod
      .spec!.template.spec!.containers.find((c) => c.name === "suricata-ips")!
      .command!.map((a) =>
        a
          .replace(ROUTER_IDS_PATHS.config, paths.config)
          .replace(ROUTER_IDS_PATHS.run, paths.run)
          .replace(ROUTER_IDS_PATHS.logs, paths.logs),
      );
    ip("netns", "add", NS);
    // the EVE file only (no log collector, block agent or metrics agent here), stats every second
    const sockets = [1, 2, 3].flatMap((i) => ["--set", `outputs.${i}.eve-log.enabled=no`]);
    suricata = spawnInNetns(NS, argv[0], [...argv.slice(1), ...sockets, "--set", "stats.interval=1"]);
    suricata.stdout?.on("data", (d) => (log += d));
    suricata.stderr?.on("data", (d) => (log += d));
    await waitFor(
      "Suricata's engine",
      () => {
        if (suricata!.exitCode !== null) throw new Error(`Suricata exited:\n${log.slice(-3000)}`);
        return log.includes("Engine started");
      },
      90_000,
      200,
    );
  }, 120_000);

  afterAll(async () => {
    await stopProcess(rotate);
    await stopProcess(suricata);
    spawnSync("ip", ["netns", "del", NS]);
  });

  it("is the pod's container, for every Suricata process", () => {
    const c = pod.spec!.template.spec!.containers.find((x) => x.name === "eve-rotate");
    expect(c?.command).toEqual(["/bin/sh", "-c", eveRotateLoop(ROUTER_IDS_PATHS, ["ids", "ips"])]);
  });

  it("keeps eve.json and one older file within the limit, and loses no record", async () => {
    let rotateLog = "";
    rotate = spawn("/bin/sh", ["-c", eveRotateLoop(paths, ["ips"], MAX_BYTES, CHECK_SECONDS)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    rotate.stderr?.on("data", (d) => (rotateLog += d));
    const sizes: [number, number][] = [];
    let rotations = 0;
    let last = -1;
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      const now: [number, number] = [size(eve()), size(`${eve()}.1`)];
      sizes.push(now);
      // a rotation: the older file's first record is a new one
      const first = stamps(`${eve()}.1`)[0] ?? -1;
      if (first !== last) [rotations, last] = [rotations + 1, first];
      await sleep(100);
    }
    expect(rotateLog).toBe("");
    expect(rotations, `sizes seen: ${JSON.stringify(sizes)}`).toBeGreaterThanOrEqual(3);
    // a file may pass the limit by what Suricata writes until the next check: a stats record (8 kB here) a second
    const slack = 16_384;
    for (const [cur, old] of sizes) {
      expect(cur).toBeLessThanOrEqual(MAX_BYTES + slack);
      expect(old).toBeLessThanOrEqual(MAX_BYTES + slack);
    }
    // Suricata writes to the new file (it reopened it): with the rotation stopped (a rotation may have just moved
    // the file, and the next stats record is up to a second away), a record reaches eve.json, not only the moved
    // file; and the two files hold every second's stats since the older one began
    await stopProcess(rotate);
    await waitFor("a stats record in the reopened eve.json", () => stamps(eve()).length > 0, 5_000, 100);
    const all = [...stamps(`${eve()}.1`), ...stamps(eve())];
    for (let i = 1; i < all.length; i++)
      expect(all[i] - all[i - 1], `stats at ${all.join(", ")}`).toBeLessThanOrEqual(2);
    expect(log).not.toContain('"log_level":"Error"');
  }, 30_000);
});
