/**
 * The pack runs on every offline render: `npm run render` of a site that breaks a mandatory policy prints every
 * violation with the policy's name, exits non-zero and writes nothing (an earlier render stays as it was); a
 * site with advisory findings renders and prints them.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { ROOT } from "../helpers/stacks";
import { tempDir } from "../helpers/temp";

function render(args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "cli/render.ts"), ...args], {
    encoding: "utf8",
    cwd: ROOT,
    timeout: 90_000,
  });
}

describe("npm run render with the policy pack", () => {
  it("stops on a mandatory violation: every violation printed with its policy, nothing written", () => {
    const project = tempDir("review-policy-");
    copyFileSync(join(ROOT, "Pulumi.yaml"), join(project, "Pulumi.yaml"));
    const dev = parse(readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8"));
    // Valid config, bad intent: the internet straight into the servers zone, guests anywhere.
    dev.config["router:firewall"].policies.unshift({ from: "wan", to: "servers", action: "accept" });
    dev.config["router:firewall"].policies.find(
      (p: { from: string; to: string }) => p.from === "guest" && p.to === "any",
    ).action = "accept";
    writeFileSync(join(project, "Pulumi.open.yaml"), stringify(dev));
    const out = join(project, "out");
    mkdirSync(out);
    writeFileSync(join(out, "previous.txt"), "an earlier render");
    const r = render(["--dir", project, "--stack", "open", "--out", join(out, "open")]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/stack open: the policy pack found mandatory violations; nothing was written/);
    expect(r.stderr).toMatch(
      /\[mandatory\] wan-accepts-only-forwards: wan → servers accepts every new connection from the internet/,
    );
    expect(r.stderr).toMatch(
      /\[mandatory\] untrusted-zones-not-any-to-any: the zone policy guest → any accepts everything/,
    );
    expect(r.stderr).not.toMatch(/\[advisory\]/);
    expect(existsSync(join(out, "open"))).toBe(false);
    expect(readdirSync(out)).toEqual(["previous.txt"]);
  }, 120_000);

  it("renders a site with advisory findings and prints them", () => {
    const out = join(tempDir("review-policy-"), "dev");
    const r = render(["--stack", "dev", "--out", out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /stack dev: policy findings:\n\[advisory\] router-dns-ntp-served: segment mgmt tells its clients/,
    );
    expect(existsSync(join(out, "review.json"))).toBe(true);
  }, 120_000);
});
