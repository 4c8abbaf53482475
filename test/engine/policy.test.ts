/**
 * The policy pack run by the real engine: `pulumi preview --policy-pack policies` of the dev stack with the Pulumi
 * CLI built from the module proxy. The CLI starts the pack through its analyzer plugin
 * (tools/pulumi-policy/pulumi-analyzer-policy-nodejs), connects over the analyzer protocol, and sends it every
 * resource the program registers and the whole stack. The dev site passes; a variant of it with port forwards into
 * the management zone and to an IoT device (the failing fixture of test/policies/intent.test.ts) fails the
 * preview, and the policy's name, enforcement and messages come back in the engine's own events and output.
 */
import { join } from "node:path";
import { copyFileSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { EngineEvent, PreviewResult } from "@pulumi/pulumi/automation";
import { engineProject, engineTier, engineWorkspace, type EngineWorkspace } from "../helpers/engine";
import { ROOT } from "../helpers/stacks";
import { tempDir } from "../helpers/temp";

const t = engineTier();
const PACK = join(ROOT, "policies");

/** The repository's dev stack config with two port forwards into zones that may not receive the internet. */
function forwardsIntoClosedZones(): Record<string, unknown> {
  const config = (parse(readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, unknown> })
    .config;
  const forwards = config["router:portForwards"] as Record<string, unknown>[];
  forwards.push(
    { name: "switch-ui", protocol: "tcp", port: 8080, to: "10.10.0.2", toPort: 443 },
    { name: "camera", protocol: "tcp", port: 8554, to: "10.30.0.20", toPort: 554 },
  );
  return config;
}

interface Run {
  result?: PreviewResult;
  error?: Error;
  events: EngineEvent[];
}

/** Previews the stack with the policy pack; keeps the engine's events whether the preview passes or fails. */
async function previewWithPack(ws: EngineWorkspace): Promise<Run> {
  const events: EngineEvent[] = [];
  try {
    const result = await ws.stack.preview({ policyPacks: [PACK], onEvent: (e) => events.push(e), color: "never" });
    return { result, events };
  } catch (e) {
    return { error: e as Error, events };
  }
}

const policyEvents = (run: Run) => run.events.flatMap((e) => (e.policyEvent ? [e.policyEvent] : []));

describe.skipIf(!t.ok)("pulumi preview --policy-pack policies with the real engine", () => {
  const secrets = { registryPassword: "policy-engine-test" };
  let dev: EngineWorkspace;
  let bad: EngineWorkspace;
  let passing: Run;
  let failing: Run;

  beforeAll(async () => {
    const project = engineProject();
    dev = await engineWorkspace({ project, secrets });
    bad = await engineWorkspace({ project, stack: "forwards", config: forwardsIntoClosedZones(), secrets });
    passing = await previewWithPack(dev);
    failing = await previewWithPack(bad);
  }, 900_000);

  afterAll(async () => {
    await dev?.dispose();
    await bad?.dispose();
  });

  it("passes the dev site: the engine ran the pack and it found no mandatory violation", () => {
    expect(passing.error).toBeUndefined();
    // The summary lists the packs the engine ran, keyed by name, origin and path (a JSON field the CLI spells
    // PolicyPacks: @pulumi/pulumi automation/events.d.ts SummaryEvent).
    const summary = passing.events.find((e) => e.summaryEvent)?.summaryEvent as unknown as Record<string, unknown>;
    expect(summary.result).toBe("succeeded");
    expect(summary.PolicyPacks).toEqual({ [`edge-router|local|${PACK}`]: "0.1.0" });
    expect(policyEvents(passing).filter((p) => p.enforcementLevel === "mandatory")).toEqual([]);
    // Every policy could read what it checks at preview: a resource whose checked part is still unknown escapes
    // its policy with only an advisory note ("can't run policy … during preview").
    const unchecked = policyEvents(passing).filter((p) => /can't run policy/.test(p.message));
    expect(unchecked.map((p) => `${p.policyName} on ${p.resourceUrn?.split("::").pop()}: ${p.message}`)).toEqual([]);
  });

  it("fails the preview of a site that forwards the internet into closed zones, naming the policy and each forward", () => {
    expect(failing.error).toBeDefined();
    const mandatory = policyEvents(failing).filter((p) => p.enforcementLevel === "mandatory");
    // Found by the stack policy over the data plane's published firewall facts.
    const dataplane = "router:dataplane:DataPlane::lab-dataplane";
    expect(mandatory.map((p) => [p.policyPackName, p.policyPackVersion, p.policyName, p.resourceUrn])).toEqual([
      ["edge-router", "0.1.0", "forward-targets-in-accepting-zones", expect.stringContaining(dataplane)],
      ["edge-router", "0.1.0", "forward-targets-in-accepting-zones", expect.stringContaining(dataplane)],
    ]);
    const messages = mandatory.map((p) => p.message).join("\n");
    expect(messages).toContain(
      "port forward switch-ui (tcp/8080) sends the internet to 10.10.0.2:443, which is in the management zone mgmt",
    );
    expect(messages).toContain(
      "port forward camera (tcp/8554) sends the internet to 10.30.0.20:554, which is in zone iot, which does not accept published services",
    );
    // The CLI's own output fails the preview and lists the pack's mandatory violations under Policies.
    const output = failing.error!.message;
    expect(output).toMatch(/Command failed with exit code 1: .*pulumi preview --policy-pack /);
    expect(output).toContain(`❌ edge-router@v0.1.0 (local: ${PACK})`);
    expect(output).toContain(
      "- [mandatory]  forward-targets-in-accepting-zones  (router:dataplane:DataPlane: lab-dataplane)",
    );
    expect(output).toContain("port forward camera (tcp/8554) sends the internet to 10.30.0.20:554");
  });

  it("refuses a pack whose dependencies are not installed, saying so, instead of previewing without it", async () => {
    // The pack's project files without a node_modules anywhere above them: the plugin cannot find the SDK.
    const bare = tempDir("engine-policy-bare-");
    for (const f of ["PulumiPolicy.yaml", "package.json", "index.ts"]) copyFileSync(join(PACK, f), join(bare, f));
    const error = await dev.stack.preview({ policyPacks: [bare], color: "never" }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toContain(
      `it looks like the policy pack's dependencies are not installed; try running npm install or yarn install in "${bare}"`,
    );
  }, 300_000);
});
