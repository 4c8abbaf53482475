/**
 * Rule updates as the router runs them: the rendered update.yaml, disable.conf and suricata.yaml, the updater
 * container's one-update command (ruleUpdateCommand) run by a shell as nobody with the real suricata-update and
 * Suricata, on directories the kubelet created as root and the pod's init container handed over (its rendered
 * command). The only change to what ships: the rule source is a local file instead of ET Open's URL (not
 * reachable here). A good update replaces the live rules; a bad one (a rule Suricata refuses) keeps the last good
 * ones byte for byte — also when it fails again, and on a first run with no rules yet.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tier } from "../helpers/tier";
import { tempDir } from "../helpers/temp";
import { devSite } from "../helpers/dev-site";
import { planIds } from "../../components/ids-stack/plan";
import { renderIdsObjects, ruleUpdateCommand } from "../../components/ids-stack/k8s";
import { ROUTER_IDS_PATHS, suricataFiles, type IdsPaths } from "../../components/ids-stack/suricata";

const t = tier("ids rule updates", { root: true, commands: ["suricata", "suricata-update", "setpriv", "chown"] });

const GOOD = 'alert http any any -> any any (msg:"update good"; content:"goodgood"; sid:9300001; rev:1;)';
const GOOD2 = 'alert http any any -> any any (msg:"update good 2"; content:"better"; sid:9300003; rev:1;)';
/** suricata-update's parser takes it; Suricata refuses the unknown keyword. */
const BAD = 'alert http any any -> any any (msg:"update bad"; content:"x"; nosuchkeyword; sid:9300002; rev:1;)';

describe.skipIf(!t.ok)("a rule update", () => {
  let paths: IdsPaths;
  let source = "";
  const live = () => join(paths.rules, "suricata.rules");

  /** One update as the updater container runs it: nobody, the rendered command; its exit status. */
  const update = (rules: string[]) => {
    writeFileSync(source, rules.join("\n") + "\n");
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
    const root = tempDir("ids-rules-update-");
    chmodSync(root, 0o755);
    paths = {
      config: join(root, "etc"),
      rules: join(root, "rules"),
      data: join(root, "data"),
      logs: join(root, "logs"),
      run: join(root, "run"),
      alerts: join(root, "alerts"),
      share: "/etc/suricata",
    };
    // the kubelet creates the host directories (DirectoryOrCreate) as root, mode 0755
    for (const d of Object.values(paths).slice(0, 6)) mkdirSync(d, { recursive: true, mode: 0o755 });
    source = join(root, "source.rules");
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
      a === ROUTER_IDS_PATHS.rules ? paths.rules : a === ROUTER_IDS_PATHS.data ? paths.data : a,
    );
    expect(spawnSync(init[0], init.slice(1)).status).toBe(0);
  }, 60_000);

  it("on a first run with a bad source, ships nothing", () => {
    const r = update([GOOD, BAD]);
    expect(r.out).toMatch(/Suricata test failed/);
    expect(r.status).not.toBe(0);
    expect(existsSync(live())).toBe(false);
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
    const check = spawnSync("suricata", [
      "-T",
      "-c",
      join(paths.config, "suricata.yaml"),
      "-S",
      live(),
      "-l",
      paths.logs,
    ]);
    expect(check.status, String(check.stderr)).toBe(0);
  }, 240_000);

  it("the next good update goes through", () => {
    const r = update([GOOD, GOOD2]);
    expect(r.status, r.out).toBe(0);
    expect(readFileSync(live(), "utf8")).toContain("sid:9300003;");
  }, 120_000);
});
