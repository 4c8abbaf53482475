import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import {
  applyTryScript,
  bootstrapScript,
  destroyScript,
  healthScript,
  installScript,
  kubeconfigScript,
  upgradeScript,
  type NodeTarget,
} from "../../components/talos-node/scripts";
import { flag, runWithFakeTalos, subs, type ScriptRun } from "../helpers/fake-talos";

const target: NodeTarget = { address: "10.10.0.1", maintenanceAddress: "192.168.1.150", healthTimeout: 3 };
const TALOSCONFIG = "context: lab\n# canary-talosconfig-7f3a\n";
const CONFIG = "version: v1alpha1\n# canary-machine-config-91bd\n";

/** No secret may leave through argv, stdout (except a kubeconfig) or the log. */
function expectNoSecretsLeaked(run: ScriptRun, opts: { stdoutAllowed?: boolean } = {}): void {
  for (const c of run.calls) {
    expect(c.argv.join(" ")).not.toContain("canary");
  }
  expect(run.stderr).not.toContain("canary");
  if (!opts.stdoutAllowed) expect(run.stdout).not.toContain("canary");
}

/** Secret files are private (0600) and gone once the script ends. */
function expectPrivateTempFiles(run: ScriptRun): void {
  for (const c of run.calls)
    for (const f of Object.values(c.files)) {
      expect(f.mode).toBe("600");
      expect(existsSync(f.path)).toBe(false);
    }
}

describe("talosctl scripts", () => {
  it("are valid bash", () => {
    for (const s of [
      installScript(target),
      bootstrapScript(target),
      kubeconfigScript(target),
      applyTryScript(target, 60),
      upgradeScript(target, "registry.example/installer:v1.14.6"),
      healthScript(target),
      destroyScript(target, true),
      destroyScript(target, false),
    ]) {
      const r = spawnSync("bash", ["-n", "-c", s], { encoding: "utf8" });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
    }
  });

  it("install applies the configuration to the maintenance address, then waits for the secured API", () => {
    const run = runWithFakeTalos(installScript(target), { stdin: CONFIG, talosconfig: TALOSCONFIG });
    expect(run.code, run.stderr).toBe(0);
    expect(subs(run)).toEqual(["version", "get", "apply-config", "version"]);
    const [probe, disks, apply, up] = run.calls;
    expect(probe.code).not.toBe(0);
    expect(flag(disks, "--nodes")).toBe("192.168.1.150");
    expect(disks.argv).toContain("--insecure");
    expect(flag(apply, "--nodes")).toBe("192.168.1.150");
    expect(apply.argv).toContain("--insecure");
    expect(apply.files["--file"].content).toBe(CONFIG);
    expect(flag(up, "--nodes")).toBe("10.10.0.1");
    expect(up.files["--talosconfig"].content).toBe(TALOSCONFIG);
    expectNoSecretsLeaked(run);
    expectPrivateTempFiles(run);
  });

  it("install does not touch maintenance mode when the node already runs the site's configuration", () => {
    const run = runWithFakeTalos(installScript(target), {
      stdin: CONFIG,
      talosconfig: TALOSCONFIG,
      env: { FAKE_TALOS_INSTALLED: "1" },
    });
    expect(run.code).toBe(0);
    expect(run.calls.some((c) => c.argv.includes("--insecure"))).toBe(false);
    expect(run.stderr).toMatch(/skipping the maintenance-mode apply/);
  });

  it("install refuses to run without the talosconfig secret", () => {
    const run = runWithFakeTalos(installScript(target), { stdin: CONFIG });
    expect(run.code).toBe(2);
    expect(run.calls).toEqual([]);
  });

  it("bootstrap succeeds once and tolerates an already bootstrapped node", () => {
    const first = runWithFakeTalos(bootstrapScript(target), {
      talosconfig: TALOSCONFIG,
      env: { FAKE_TALOS_INSTALLED: "1" },
    });
    expect(first.code).toBe(0);
    const again = runWithFakeTalos(bootstrapScript(target), {
      talosconfig: TALOSCONFIG,
      env: { FAKE_TALOS_INSTALLED: "1" },
      state: first.state,
    });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/already bootstrapped/);
  });

  it("kubeconfig prints only the kubeconfig on stdout, after the API server answers", () => {
    const run = runWithFakeTalos(kubeconfigScript(target), {
      talosconfig: TALOSCONFIG,
      env: { FAKE_TALOS_INSTALLED: "1" },
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe("apiVersion: v1\nkind: Config\nclusters: []\n# fake kubeconfig\n");
    expect(subs(run)).toEqual(["kubeconfig", "curl"]);
    expect(run.calls[1].argv).toContain("https://10.10.0.1:6443/readyz");
    expectNoSecretsLeaked(run);
  });

  it("a configuration change is tried, checked and then confirmed with the same file", () => {
    const run = runWithFakeTalos(applyTryScript(target, 60), {
      stdin: CONFIG,
      talosconfig: TALOSCONFIG,
      env: { FAKE_TALOS_INSTALLED: "1" },
    });
    expect(run.code, run.stderr).toBe(0);
    expect(subs(run)).toEqual(["apply-config", "version", "curl", "get", "health", "apply-config"]);
    const [tryCall, , , probe, , confirm] = run.calls;
    expect(tryCall.argv).toContain("--mode=try");
    expect(flag(tryCall, "--timeout")).toBe("60s");
    expect(probe.argv).toContain("probestatus");
    expect(confirm.argv).toContain("--mode=no-reboot");
    expect(confirm.files["--file"].content).toBe(CONFIG);
    expect(tryCall.files["--file"].content).toBe(CONFIG);
    expect(run.stderr).toMatch(/configuration confirmed/);
    expectNoSecretsLeaked(run);
    expectPrivateTempFiles(run);
  });

  it("a change whose health check fails is never confirmed; the update waits for the revert and fails saying so", () => {
    const tryTimeout = 4;
    const run = runWithFakeTalos(applyTryScript(target, tryTimeout), {
      stdin: CONFIG,
      talosconfig: TALOSCONFIG,
      env: { FAKE_TALOS_INSTALLED: "1", FAKE_TALOS_FAIL: "health" },
    });
    expect(run.code).toBe(1);
    const applies = run.calls.filter((c) => c.sub === "apply-config");
    expect(applies).toHaveLength(1);
    expect(applies[0].argv).toContain("--mode=try");
    expect(run.stderr).toMatch(/health checks failed: cluster-health/);
    expect(run.stderr).toMatch(/NOT confirmed.*reverts to its previous configuration by itself/);
    expect(run.stderr).toMatch(/the node reverted and answers again; this update failed and changed nothing/);
    // It waited for the try window to end before declaring the node reverted.
    expect(run.seconds).toBeGreaterThanOrEqual(tryTimeout);
    expect(subs(run).at(-1)).toBe("version");
    expectNoSecretsLeaked(run);
  });

  it("a change that cuts the WAN is not confirmed either", () => {
    const run = runWithFakeTalos(applyTryScript(target, 4), {
      stdin: CONFIG,
      talosconfig: TALOSCONFIG,
      env: { FAKE_TALOS_INSTALLED: "1", FAKE_TALOS_PROBE: "false" },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/health checks failed: WAN-probe/);
    expect(run.calls.filter((c) => c.argv.includes("--mode=no-reboot"))).toEqual([]);
  });

  it("a change that loses the Kubernetes API is not confirmed", () => {
    const run = runWithFakeTalos(applyTryScript(target, 4), {
      stdin: CONFIG,
      talosconfig: TALOSCONFIG,
      env: { FAKE_TALOS_INSTALLED: "1", FAKE_CURL_FAIL: "1" },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/Kubernetes-API/);
    expect(run.calls.filter((c) => c.argv.includes("--mode=no-reboot"))).toEqual([]);
  });

  it("a change the node refuses to try (it needs a reboot) fails at once and changes nothing", () => {
    const run = runWithFakeTalos(applyTryScript(target, 60), {
      stdin: CONFIG,
      talosconfig: TALOSCONFIG,
      env: { FAKE_TALOS_INSTALLED: "1", FAKE_TALOS_TRY_REFUSE: "1" },
    });
    expect(run.code).toBe(1);
    expect(subs(run)).toEqual(["apply-config"]);
    expect(run.stderr).toMatch(/requires a reboot/);
    expect(run.stderr).toMatch(/nothing was changed/);
  });

  it("an empty configuration on stdin is rejected before talosctl runs", () => {
    const run = runWithFakeTalos(applyTryScript(target, 60), { stdin: "", talosconfig: TALOSCONFIG });
    expect(run.code).toBe(2);
    expect(run.calls).toEqual([]);
  });

  it("an installer image change upgrades the node and checks its health", () => {
    const image = "registry.lab:5000/router/installer:v1.14.7";
    const run = runWithFakeTalos(upgradeScript(target, image), {
      talosconfig: TALOSCONFIG,
      env: { FAKE_TALOS_INSTALLED: "1" },
    });
    expect(run.code, run.stderr).toBe(0);
    expect(subs(run)).toEqual(["upgrade", "version", "curl", "get", "health"]);
    expect(flag(run.calls[0], "--image")).toBe(image);
    expect(run.calls[0].argv).toContain("--wait");
  });

  it("a failed upgrade fails the update and says how to roll back", () => {
    const run = runWithFakeTalos(upgradeScript(target, "r/i:v1.14.7"), {
      talosconfig: TALOSCONFIG,
      env: { FAKE_TALOS_INSTALLED: "1", FAKE_TALOS_FAIL: "health" },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/talosctl rollback/);
  });

  it("destroy leaves the router alone unless the site allows wiping it", () => {
    const keep = runWithFakeTalos(destroyScript(target, false), { talosconfig: TALOSCONFIG });
    expect(keep.code).toBe(0);
    expect(keep.calls).toEqual([]);
    expect(keep.stderr).toMatch(/leaving the router at 10.10.0.1 running/);
    const wipe = runWithFakeTalos(destroyScript(target, true), {
      talosconfig: TALOSCONFIG,
      env: { FAKE_TALOS_INSTALLED: "1" },
    });
    expect(wipe.code).toBe(0);
    expect(subs(wipe)).toEqual(["reset"]);
    expect(flag(wipe.calls[0], "--wipe-mode")).toBe("all");
  });

  it("scripts address IPv6 management endpoints in brackets", () => {
    const v6: NodeTarget = { ...target, address: "fd12:3456:789a:10::1" };
    const run = runWithFakeTalos(kubeconfigScript(v6), {
      talosconfig: TALOSCONFIG,
      env: { FAKE_TALOS_INSTALLED: "1" },
    });
    expect(run.calls[1].argv).toContain("https://[fd12:3456:789a:10::1]:6443/readyz");
  });
});
