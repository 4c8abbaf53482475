/** The talosctl scripts against the fake node (test/fixtures/fake-node): install, bootstrap, kubeconfig, try/confirm. */
import { afterEach, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
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
import { FakeNode, flag, sha256, subs, type NodeOptions, type ScriptRun } from "../helpers/fake-node";
import { CANARY, firewallChange, nodeOptions, rendered, talosconfig, target } from "../helpers/lifecycle-fixtures";

const TALOSCONFIG = talosconfig();
const base = rendered();
const changed = rendered(firewallChange);
const env = { ROUTER_TALOSCONFIG: TALOSCONFIG };

let node: FakeNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

async function start(over: Partial<NodeOptions> = {}): Promise<FakeNode> {
  node = await FakeNode.start(nodeOptions(over));
  return node;
}
const running = (over: Partial<NodeOptions> = {}) =>
  start({ installed: true, bootstrapped: true, savedConfig: base.config, ...over });

/** No secret leaves through argv, stdout (except a kubeconfig) or the log; none was handed over in a file. */
function expectNoSecretsLeaked(run: ScriptRun, opts: { stdoutAllowed?: boolean } = {}): void {
  for (const c of run.calls) {
    expect(c.argv.join(" ")).not.toMatch(/canary|BEGIN/);
    for (const f of Object.values(c.files)) expect(f.kind, `${c.sub} ${f.path}`).toBe("pipe");
  }
  expect(run.stderr).not.toMatch(/canary/);
  if (!opts.stdoutAllowed) expect(run.stdout).not.toMatch(/canary/);
}

describe("talosctl scripts", () => {
  it("are valid bash", () => {
    const c = base.checks;
    for (const s of [
      installScript(target, base.identity),
      bootstrapScript(target),
      kubeconfigScript(target),
      applyTryScript(target, 60, c),
      upgradeScript(target, "registry.example/installer:v1.14.6", c),
      healthScript(target, c),
      destroyScript(target, true),
      destroyScript(target, false),
    ]) {
      const r = spawnSync("bash", ["-n", "-c", s], { encoding: "utf8" });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
    }
  });

  it("install checks the box, applies the configuration in maintenance mode, then waits for the secured API", async () => {
    const n = await start();
    const run = await n.run(installScript(target, base.identity), { stdin: base.config, env });
    expect(run.code, run.stderr).toBe(0);
    // Not on the secured API yet → maintenance: links (reachable?), links, disks → apply → the secured API once up.
    expect(subs(run).slice(0, 5)).toEqual(["version", "get", "get", "get", "apply-config"]);
    expect(new Set(subs(run).slice(5))).toEqual(new Set(["version"]));
    expect(run.calls.at(-1)!.code).toBe(0);
    const apply = run.calls.find((c) => c.sub === "apply-config")!;
    expect(flag(apply, "--nodes")).toBe("192.168.1.150");
    expect(apply.argv).toContain("--insecure");
    expect(apply.files["--file"].sha256).toBe(sha256(base.config));
    expect(run.calls.at(-1)!.files["--talosconfig"].sha256).toBe(sha256(TALOSCONFIG));
    expect(run.stderr).toMatch(/install disk: \/dev\/nvme0n1 \(Samsung SSD 980/);
    const st = await n.state();
    expect(st.installed).toBe(true);
    expect(st.saved).toBe(sha256(base.config));
    expectNoSecretsLeaked(run);
  });

  it("install does not touch maintenance mode when the node already runs the site's configuration", async () => {
    const n = await running();
    const run = await n.run(installScript(target, base.identity), { stdin: base.config, env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.calls.some((c) => c.argv.includes("--insecure"))).toBe(false);
    expect(run.stderr).toMatch(/skipping the maintenance-mode apply/);
  });

  it("install refuses to run without the talosconfig secret", async () => {
    const n = await start();
    const run = await n.run(installScript(target, base.identity), { stdin: base.config });
    expect(run.code).toBe(2);
    expect(run.calls).toEqual([]);
  });

  it("bootstrap succeeds once and tolerates an already bootstrapped node", async () => {
    const n = await running({ bootstrapped: false });
    const first = await n.run(bootstrapScript(target), { env });
    expect(first.code, first.stderr).toBe(0);
    expect((await n.state()).bootstrapped).toBe(true);
    const again = await n.run(bootstrapScript(target), { env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/already bootstrapped/);
  });

  it("kubeconfig prints only the kubeconfig on stdout, after the API server answers", async () => {
    const n = await running();
    const run = await n.run(kubeconfigScript(target), { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe("apiVersion: v1\nkind: Config\nclusters: []\n# fake kubeconfig\n");
    expect(subs(run)).toEqual(["kubeconfig", "kubeconfig", "curl"]);
    expect(run.calls[2].argv).toContain("https://10.10.0.1:6443/readyz");
    expectNoSecretsLeaked(run, { stdoutAllowed: true });
  });

  it("a configuration change is tried, checked, found running and then confirmed with the same bytes", async () => {
    const n = await running();
    const run = await n.run(applyTryScript(target, 20, changed.checks), { stdin: changed.config, env });
    expect(run.code, run.stderr).toBe(0);
    const applies = run.calls.filter((c) => c.sub === "apply-config");
    expect(applies.map((c) => flag(c, "--mode") ?? c.argv.find((a) => a.startsWith("--mode=")))).toEqual([
      "--mode=try",
      "--mode=no-reboot",
    ]);
    expect(flag(applies[0], "--timeout")).toBe("20s");
    for (const a of applies) expect(a.files["--file"].sha256).toBe(sha256(changed.config));
    expect(run.stderr).toMatch(/configuration confirmed/);
    const st = await n.state();
    expect(st.trying).toBe(false);
    expect(st.saved).toBe(sha256(changed.config));
    expect(st.running).toBe(sha256(changed.config));
    expectNoSecretsLeaked(run);
  });

  it("a change whose cluster health fails is never confirmed; the node reverts and the update fails saying so", async () => {
    const n = await running();
    await n.fault({ clusterUnhealthy: true });
    const run = await n.run(applyTryScript(target, 6, changed.checks), { stdin: changed.config, env });
    expect(run.code).toBe(1);
    expect(run.calls.filter((c) => c.argv.includes("--mode=no-reboot"))).toEqual([]);
    expect(run.stderr).toMatch(/health checks failed: cluster-health/);
    expect(run.stderr).toMatch(/NOT confirmed.*reverts to its previous configuration by itself/);
    expect(run.stderr).toMatch(/the node reverted and answers again on its previous configuration/);
    const st = await n.state();
    expect(st.running).toBe(sha256(base.config));
    expect(st.saved).toBe(sha256(base.config));
    expect(st.received.map((r) => r.event)).toEqual(["apply", "revert"]);
  });

  it("a change that cuts the WAN is not confirmed either", async () => {
    const n = await running();
    await n.fault({ probe: false });
    const run = await n.run(applyTryScript(target, 5, changed.checks), { stdin: changed.config, env });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/health checks failed: WAN-probe/);
    expect((await n.state()).saved).toBe(sha256(base.config));
  });

  it("a change that loses the Kubernetes API is not confirmed", async () => {
    const n = await running();
    await n.fault({ kubeDown: true });
    const run = await n.run(applyTryScript(target, 5, changed.checks), { stdin: changed.config, env });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/Kubernetes-API/);
    expect((await n.state()).saved).toBe(sha256(base.config));
  });

  it("a change the node refuses to try (it needs a reboot) fails at once and changes nothing", async () => {
    const n = await running();
    // A new cluster token is a v1alpha1 change: Talos cannot apply it without a reboot.
    const rebootChange = base.config.replace(/(cluster:\n {2}token: )\S+/, "$1abcdef.0123456789abcdef");
    expect(rebootChange).not.toBe(base.config);
    const run = await n.run(applyTryScript(target, 60, changed.checks), { stdin: rebootChange, env });
    expect(run.code).toBe(1);
    expect(subs(run)).toEqual(["apply-config"]);
    expect(run.stderr).toMatch(/can't be applied in immediate mode/);
    expect(run.stderr).toMatch(/nothing was changed/);
    expect((await n.state()).received.map((r) => r.event)).toEqual(["apply"]);
  });

  it("an empty configuration on stdin is rejected before talosctl runs", async () => {
    const n = await running();
    const run = await n.run(applyTryScript(target, 60, changed.checks), { stdin: "", env });
    expect(run.code).toBe(2);
    expect(run.calls).toEqual([]);
  });

  it("destroy leaves the router alone unless the site allows wiping it", async () => {
    const n = await running();
    const keep = await n.run(destroyScript(target, false), { env });
    expect(keep.code).toBe(0);
    expect(keep.calls).toEqual([]);
    expect(keep.stderr).toMatch(/leaving the router at 10.10.0.1 running/);
    const wipe = await n.run(destroyScript(target, true), { env });
    expect(wipe.code, wipe.stderr).toBe(0);
    expect(subs(wipe)).toEqual(["reset"]);
    expect(flag(wipe.calls[0], "--wipe-mode")).toBe("all");
    expect((await n.state()).installed).toBe(false);
  });

  it("scripts address IPv6 management endpoints in brackets", async () => {
    const v6: NodeTarget = { ...target, address: "fd12:3456:789a:10::1" };
    const n = await running({ managementAddress: v6.address });
    const run = await n.run(kubeconfigScript(v6), { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.calls.at(-1)!.argv).toContain("https://[fd12:3456:789a:10::1]:6443/readyz");
  });

  it("the canaries are real secrets of the rendered configuration and talosconfig", () => {
    expect(base.config).toContain(CANARY.registry);
    expect(TALOSCONFIG).toContain(Buffer.from(`\n${CANARY.adminKey}\n`).toString("base64").slice(4, 20));
  });
});
