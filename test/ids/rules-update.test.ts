/**
 * Rule updates as the router runs them: the rendered update.yaml, disable.conf and suricata.yaml, the updater
 * container's one-update command (ruleUpdateCommand) run by a shell as nobody with the real suricata-update and
 * Suricata, on directories the kubelet created as root and the pod's init container handed over (its rendered
 * command). The only change to what ships: the rule source is a local file instead of ET Open's URL (not
 * reachable here). A good update replaces the live rules; a bad one (a rule Suricata refuses) keeps the last good
 * ones byte for byte — also when it fails again, on a first run (which runs on the site's local rules, seeded by
 * the init container), and when a source cannot be fetched at all. The updater's loop (ruleUpdateLoop, its first retry shortened to a second) retries a failed first
 * fetch long before its interval and asks every Suricata process to reload what it shipped.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tier } from "../helpers/tier";
import { idsPathsUnder } from "./lib/paths";
import { tempDir } from "../helpers/temp";
import { devSite } from "../helpers/dev-site";
import { planIds } from "../../components/ids-stack/plan";
import { renderIdsObjects, ruleUpdateCommand, ruleUpdateLoop } from "../../components/ids-stack/k8s";
import { waitFor } from "../helpers/wait";
import { ROUTER_IDS_PATHS, suricataFiles, type IdsPaths } from "../../components/ids-stack/suricata";

const t = tier("ids rule updates", { root: true, commands: ["suricata", "suricata-update", "setpriv", "chown"] });

const GOOD = 'alert http any any -> any any (msg:"update good"; content:"goodgood"; sid:9300001; rev:1;)';
const GOOD2 = 'alert http any any -> any any (msg:"update good 2"; content:"better"; sid:9300003; rev:1;)';
/** suricata-update's parser takes it; Suricata refuses the unknown keyword. */
const BAD = 'alert http any any -> any any (msg:"update bad"; content:"x"; nosuchkeyword; sid:9300002; rev:1;)';

/** The updater's directories as the kubelet and the init container leave them, with the rendered files. */
function bed(prefix: string): { paths: IdsPaths; source: string; init: string[] } {
  const root = tempDir(prefix);
  chmodSync(root, 0o755);
  const paths = idsPathsUnder(root);
  // the kubelet creates the host directories (DirectoryOrCreate) as root, mode 0755
  for (const d of Object.values(paths).slice(0, 6)) mkdirSync(d, { recursive: true, mode: 0o755 });
  const source = join(root, "source.rules");
  const { site, plan } = devSite();
  const ids = planIds(site, plan);
  for (const [name, text] of suricataFiles(site, ids, paths))
    writeFileSync(
      join(paths.config, name),
      name === "update.yaml" ? text.replace(/^ {2}- https:\/\/\S+$/m, `  - file://${source}`) : text,
    );
  // the init container's command as rendered, on the test's directories
  const ds = renderIdsObjects(ids, suricataFiles(site, ids), "img").find((o) => o.kind === "DaemonSet")!;
  const init = (ds.spec!.template.spec!.initContainers ?? [])[0].command!.map((a) =>
    a === ROUTER_IDS_PATHS.rules
      ? paths.rules
      : a === ROUTER_IDS_PATHS.data
        ? paths.data
        : a === ROUTER_IDS_PATHS.config
          ? paths.config
          : a,
  );
  const started = initAsPod(init);
  expect(started.status, started.stderr).toBe(0);
  return { paths, source, init };
}

/** The init container's command as root with CHOWN alone (its securityContext). */
function initAsPod(init: string[]) {
  return spawnSync("setpriv", ["--bounding-set=-all,+chown", "--inh-caps=-all", ...init], { encoding: "utf8" });
}

/** Suricata loads `rules` with the rendered suricata.yaml (`suricata -T`). */
function expectLoads(paths: IdsPaths, rules: string): void {
  const check = spawnSync("suricata", ["-T", "-c", join(paths.config, "suricata.yaml"), "-S", rules, "-l", paths.logs]);
  expect(check.status, String(check.stderr)).toBe(0);
}

/** The site's local rules as rendered (router:ids.rules.local). */
const localRules = (paths: IdsPaths) => readFileSync(join(paths.config, "local.rules"), "utf8");

describe.skipIf(!t.ok)("a rule update", () => {
  let paths: IdsPaths;
  let source = "";
  let init: string[] = [];
  const live = () => join(paths.rules, "suricata.rules");

  /** One update as the updater container runs it: nobody, the rendered command; its exit status. */
  const update = (rules: string[] | undefined) => {
    if (rules) writeFileSync(source, rules.join("\n") + "\n");
    else rmSync(source, { force: true });
    // suricata-update fetches a source at most every 15 minutes; the router's interval is longer than that
    rmSync(join(paths.data, "update", "cache"), { recursive: true, force: true });
    const r = spawnSync(
      "setpriv",
      ["--reuid", "65534", "--regid", "65534", "--clear-groups", "/bin/sh", "-c", ruleUpdateCommand(paths)],
      { encoding: "utf8", cwd: "/", env: { PATH: process.env.PATH, HOME: "/nonexistent" } },
    );
    return { status: r.status, out: r.stdout + r.stderr };
  };

  beforeAll(() => {
    ({ paths, source, init } = bed("ids-rules-update-"));
  }, 60_000);

  it("a first start runs on the site's local rules, which Suricata loads, before any update", () => {
    expect(localRules(paths)).toMatch(/sid:\d+;/);
    expect(readFileSync(live(), "utf8")).toBe(localRules(paths));
    expectLoads(paths, live());
  }, 120_000);

  it("on a first run with a bad source, ships nothing: the local rules stay byte for byte", () => {
    const r = update([GOOD, BAD]);
    expect(r.out).toMatch(/Suricata test failed/);
    expect(r.status).not.toBe(0);
    expect(readFileSync(live(), "utf8")).toBe(localRules(paths));
  }, 120_000);

  it("a good update replaces the live rules, as nobody, tested by Suricata", () => {
    const r = update([GOOD]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/Testing Suricata configuration with: suricata -T/);
    expect(readFileSync(live(), "utf8")).toContain("sid:9300001;");
  }, 120_000);

  it("a bad update keeps the last good rules byte for byte, and so does the same bad update again", () => {
    const good = readFileSync(live(), "utf8");
    for (let i = 0; i < 2; i++) {
      const r = update([GOOD2, BAD]);
      expect(r.out).toMatch(/Suricata test failed/);
      expect(r.status).not.toBe(0);
      expect(readFileSync(live(), "utf8")).toBe(good);
    }
    // what the router keeps loads
    expectLoads(paths, live());
  }, 240_000);

  it("the next good update goes through", () => {
    const r = update([GOOD, GOOD2]);
    expect(r.status, r.out).toBe(0);
    expect(readFileSync(live(), "utf8")).toContain("sid:9300003;");
  }, 120_000);

  it("a source that cannot be fetched keeps the last good rules, not the other sources' rules alone", () => {
    const good = readFileSync(live(), "utf8");
    const r = update(undefined);
    expect(r.out).toMatch(/Failed to fetch/);
    expect(r.status).not.toBe(0);
    expect(readFileSync(live(), "utf8")).toBe(good);
  }, 120_000);

  it("a restart keeps the updated rules: the init container seeds only a start with no live rules", () => {
    const good = readFileSync(live(), "utf8");
    expect(good).not.toBe(localRules(paths));
    const r = initAsPod(init);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(live(), "utf8")).toBe(good);
  });

  it("a start that finds no live rules in the updater's directory (deleted by hand) seeds them again", () => {
    rmSync(live());
    const r = initAsPod(init);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(live(), "utf8")).toBe(localRules(paths));
    // and the directory is the updater's again
    expect(statSync(paths.rules).uid).toBe(65534);
  });
});

describe.skipIf(!t.ok)("the updater's loop", () => {
  it("retries a failed first fetch soon, not after the whole interval, and reloads Suricata when it succeeds", async () => {
    const { paths, source } = bed("ids-rules-loop-");
    // suricatasc stands in for Suricata's unix socket (no Suricata runs here): it records what it was asked
    const shims = join(paths.data, "shims");
    mkdirSync(shims, { recursive: true });
    const asked = join(paths.data, "suricatasc.log");
    writeFileSync(join(shims, "suricatasc"), `#!/bin/sh\necho "$*" >> ${asked}\n`, { mode: 0o755 });
    chmodSync(paths.data, 0o777);
    // the interval is an hour, the first retry a second: the rendered loop with a shorter first wait
    const loop = ruleUpdateLoop(paths, { pairs: [], updateSeconds: 3600 }, 1);
    const child = spawn("setpriv", ["--reuid", "65534", "--regid", "65534", "--clear-groups", "/bin/sh", "-c", loop], {
      cwd: "/",
      env: { PATH: `${shims}:${process.env.PATH}`, HOME: "/nonexistent" },
      detached: true,
    });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    try {
      // the uplink is not up yet: the source cannot be fetched, nothing ships, and the loop says when it tries again
      await waitFor(
        "a failed update",
        () => /rule update failed: the last good rules stay; next try in 1 s/.test(err),
        90_000,
      );
      expect(readFileSync(join(paths.rules, "suricata.rules"), "utf8")).toBe(localRules(paths));
      writeFileSync(source, GOOD + "\n");
      await waitFor(
        "the retried update to ship the rules",
        () =>
          existsSync(join(paths.rules, "suricata.rules")) &&
          readFileSync(join(paths.rules, "suricata.rules"), "utf8").includes("sid:9300001;"),
        120_000,
      );
      await waitFor("the reload", () => existsSync(asked), 10_000);
      expect(readFileSync(asked, "utf8")).toBe(`-c reload-rules ${paths.run}/ids.socket\n`);
    } finally {
      process.kill(-child.pid!, "SIGKILL");
    }
  }, 300_000);
});
