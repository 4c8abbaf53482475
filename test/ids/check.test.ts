/**
 * `suricata -T` before the IDS stack ships (components/ids-stack/check.ts): the script the stack's `${name}-check`
 * command runs at `pulumi up`, run here by bash with its environment and the real Suricata. The dev site's files
 * load; a local rule or a threshold line Suricata refuses fails it with Suricata's error and the site key named.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { tier } from "../helpers/tier";
import { devSite, type Raw } from "../helpers/dev-site";
import { planIds } from "../../components/ids-stack/plan";
import { rulesCheck } from "../../components/ids-stack/check";

const t = tier("ids rule check", { commands: ["suricata", "bash", "base64"] });

function runCheck(edit?: (raw: Raw) => void) {
  const { site, plan } = devSite(edit);
  const { script, environment } = rulesCheck(site, planIds(site, plan));
  const r = spawnSync("bash", ["-c", script], {
    encoding: "utf8",
    env: { PATH: process.env.PATH, ...environment },
    timeout: 120_000,
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe.skipIf(!t.ok)("suricata -T before the rules ship", () => {
  it("passes the dev site's rules, thresholds and configuration", () => {
    const r = runCheck();
    expect(r.status, r.err).toBe(0);
    expect(r.out).toMatch(/the site's rules and thresholds load/);
  });

  it("fails on a local rule Suricata refuses, with its error and the site key", () => {
    const r = runCheck((raw) =>
      raw["ids"].rules.local.push('alert http any any -> any any (msg:"x"; nosuchkeyword; sid:9400001; rev:1;)'),
    );
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/nosuchkeyword/);
    expect(r.err).toMatch(/router:ids\.rules: suricata -T refuses/);
  });
});
