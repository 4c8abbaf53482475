/**
 * `pulumi up` of the node part (TalosNode of the dev site: its secrets bundle, config layers and talosctl
 * commands) by the real Pulumi engine against the fake Talos node (test/fixtures/fake-node), with models of the
 * command, tls and random providers that act as the real ones do (test/helpers/engine-providers/): the install
 * scripts run and the node ends installed with the configuration the program rendered; a changed firewall rule
 * changes only the firewall layer and is tried, checked and confirmed on the node; a try the node fails reverts
 * the node and fails the update with the script's message, Pulumi's state keeps the previous inputs and a later up
 * retries. No secret is in the CLI's output or in plaintext in the backend's state.
 */
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { TalosNode } from "../../components/talos-node";
import { hostContributions } from "../../components/host-layers";
import { engineProject, engineTier, engineWorkspace, type EngineWorkspace } from "../helpers/engine";
import { FAKE_BIN, FakeNode, sha256 } from "../helpers/fake-node";
import { devSite, type Raw } from "../helpers/dev-site";
import { firewallChange, nodeOptions } from "../helpers/lifecycle-fixtures";
import { TOKEN_PATTERN } from "../../components/talos-node/secrets";

const t = engineTier();
const INSTALLER = "registry.example/router-installer:v1.14.6";

/** The dev site with a 30s try window (the least allowed), so a failed try reverts within the test's time. */
function shortTry(edit?: (raw: Raw) => void) {
  return (raw: Raw) => {
    raw.node = { ...raw.node, tryTimeout: "30s" };
    edit?.(raw);
  };
}

/** The node part of the dev site (optionally edited) as an inline program. */
function nodeProgram(registryPassword: string, edit?: (raw: Raw) => void) {
  return async () => {
    const s = devSite(shortTry(edit));
    const node = new TalosNode("lab-node", {
      site: s.site,
      plan: s.plan,
      contributions: hostContributions(s.site, s.plan, s.policy),
      registryPassword: pulumi.secret(registryPassword),
      installerImage: INSTALLER,
    });
    return { endpoint: node.endpoint, machineConfig: node.machineConfigRedacted };
  };
}

/** A second firewall change, the one the node's data plane is made to refuse. */
function refusedChange(raw: Raw): void {
  firewallChange(raw);
  raw.firewall.rules = [
    ...raw.firewall.rules,
    { name: "engine-refused", from: "trusted", to: "iot", protocol: "tcp", ports: [9443], action: "accept" },
  ];
}

/**
 * The values a configuration the node received has where the program's redacted render has placeholders, by the
 * placeholder's label; undefined when the two differ anywhere else. (A placeholder is a quoted YAML string, a value
 * may be a plain or a block scalar.)
 */
function filledIn(redacted: string, config: string): Map<string, string> | undefined {
  const labels = [...redacted.matchAll(/\[secret:([^\]]+)\]/g)].map((m) => m[1]!);
  const escaped = redacted.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(`^${escaped.replace(/"?\\\[secret:[^\]]+\\\]"?/g, '"?(.+?)"?')}$`, "s");
  const m = config.match(pattern);
  return m ? new Map(labels.map((l, i) => [l, m[i + 1]!])) : undefined;
}

/**
 * The secrets among filled-in values (certificates are not secret): each as the configuration holds it and, for
 * a PEM key (base64 or not), the start of its key material as the PEM carries it; for a token, its secret half.
 */
function secretValues(filled: Map<string, string>): string[] {
  const values = [...filled].filter(([label]) => !label.endsWith(".crt")).map(([, v]) => v);
  const pems = values
    .map((v) => (v.includes("PRIVATE KEY-----") ? v : Buffer.from(v, "base64").toString("utf8")))
    .filter((v) => v.includes("PRIVATE KEY-----"))
    .map((pem) => pem.split("PRIVATE KEY-----\n")[1]!.trim().slice(0, 40));
  const tokens = values.filter((v) => TOKEN_PATTERN.test(v)).map((v) => v.split(".")[1]!);
  return [...values, ...pems, ...tokens];
}

/** The apply command's recorded inputs in the stack's state: which layers it last applied. */
async function appliedLayers(ws: EngineWorkspace): Promise<string> {
  const state = await ws.stack.exportStack();
  const apply = (state.deployment.resources as { urn: string; inputs: Raw }[]).find((r) =>
    r.urn.endsWith("command:local:Command::lab-node-apply"),
  )!;
  return apply.inputs.environment.ROUTER_CONFIG_LAYERS as string;
}

/** The resources an up changed (created, updated, replaced, deleted), by name. */
function changed(events: EngineEvent[]): string[] {
  return events
    .flatMap((e) => (e.resOutputsEvent ? [e.resOutputsEvent.metadata] : []))
    .filter((m) => m.op !== "same")
    .map((m) => `${m.op} ${m.urn.split("::").at(-1)}`)
    .sort();
}

/**
 * A debug diagnostic: the engine streams these to an Automation API consumer, and among them is the Node SDK's own
 * debug line for every registration, which prints the provider's response with secret outputs unmasked
 * (@pulumi/pulumi runtime/resource.js, "RegisterResource RPC finished"). No command of this project reads debug
 * events, and the CLI shows them only with --debug; they are left out of the secret scan.
 */
function isDebug(e: EngineEvent): boolean {
  // The SDK types leave "debug" out of the severities, but the engine sends it.
  return (e.diagnosticEvent?.severity as string | undefined) === "debug";
}

/** Every file under `dir` with its text. */
function filesUnder(dir: string): [string, string][] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .map((f) => [f, readFileSync(f, "latin1")]);
}

/** The configuration the fake node has saved (its disk). */
function savedConfig(node: FakeNode): string {
  return (JSON.parse(readFileSync(join(node.dir, "disk.json"), "utf8")) as { saved: string }).saved;
}

describe.skipIf(!t.ok)("pulumi up of the node part against the fake node, with the real engine", () => {
  const registryPassword = `canary-${randomBytes(12).toString("hex")}`;
  let node: FakeNode;
  let ws: EngineWorkspace;
  const output: string[] = [];
  /** Every engine event and failed up's message, for the secret scan. */
  const seen: string[] = [];

  const up = async (edit?: (raw: Raw) => void) => {
    const events: EngineEvent[] = [];
    const result = await ws.stack
      .up({
        program: nodeProgram(registryPassword, edit),
        color: "never",
        onOutput: (o) => output.push(o),
        onEvent: (e) => events.push(e),
      })
      .finally(() => seen.push(JSON.stringify(events.filter((e) => !isDebug(e)))));
    return { result, events };
  };

  beforeAll(async () => {
    node = await FakeNode.start(nodeOptions());
    const project = engineProject({
      models: true,
      env: { PATH: `${FAKE_BIN}:${process.env.PATH}`, FAKE_NODE_DIR: node.dir, ROUTER_RETRY_MS: "50" },
    });
    ws = await engineWorkspace({ project, program: nodeProgram(registryPassword) });
  }, 120_000);

  afterAll(async () => {
    await ws?.dispose();
    await node?.stop();
  });

  let installed: string;
  let nodeSecrets: string[] = [];
  let layersBefore: string;

  it("installs the node: the install, bootstrap and kubeconfig scripts ran and it runs the rendered configuration", async () => {
    const { result } = await up();
    expect(result.summary.result).toBe("succeeded");
    const state = await node.state();
    expect(state.installed).toBe(true);
    expect(state.bootstrapped).toBe(true);
    installed = savedConfig(node);
    expect(state.running).toBe(sha256(installed));
    // Installed from maintenance mode (an insecure apply), then never tried: nothing changed since.
    expect(state.received.map((r) => [r.event, r.insecure ?? false])).toContainEqual(["apply", true]);
    expect(state.received.filter((r) => r.mode === "try")).toEqual([]);
    // The node got the program's configuration: its redacted render with every secret filled in.
    const redacted = result.outputs.machineConfig!.value as string;
    const filled = filledIn(redacted, installed)!;
    expect(filled).toBeDefined();
    expect(filled.size).toBeGreaterThan(10);
    expect(filled.get("registryPassword")).toBe(registryPassword);
    nodeSecrets = secretValues(filled);
    layersBefore = await appliedLayers(ws);
    expect(layersBefore).toMatch(/firewall=[0-9a-f]{16}/);
  }, 240_000);

  it("a changed firewall rule changes only the firewall layer, and the node tries, checks and confirms it", async () => {
    const { result, events } = await up(firewallChange);
    expect(result.summary.result).toBe("succeeded");
    expect(changed(events)).toEqual(["update lab-node-apply", "update lab-node-layer-firewall"]);
    const state = await node.state();
    const config = savedConfig(node);
    expect(config).not.toBe(installed);
    expect(config).toContain("lifecycle-test");
    expect(state.running).toBe(sha256(config));
    const applies = state.received.filter((r) => r.event === "apply" && !r.insecure);
    expect(applies.map((r) => r.mode)).toEqual(["try", expect.not.stringMatching(/^try$/)]);
    const layers = await appliedLayers(ws);
    const diff = (a: string, b: string) => a.split(" ").filter((x) => !b.split(" ").includes(x));
    expect(diff(layers, layersBefore).map((l) => l.split("=")[0])).toEqual(["firewall"]);
    layersBefore = layers;
    installed = config;
  }, 240_000);

  it("a try the node fails fails the update with the script's message; the node reverts and the state keeps the previous inputs", async () => {
    await node.fault({ rejectRulesetContaining: "engine-refused" });
    const err = (await up(refusedChange).then(
      () => undefined,
      (e: Error) => e,
    )) as Error;
    expect(err).toBeInstanceOf(Error);
    seen.push(err.message);
    expect(err.message).toMatch(/lab-node-apply/);
    expect(err.message).toMatch(/exit status 1: running/);
    expect(err.message).toMatch(/NOT confirmed/);
    expect(err.message).toMatch(/ruleset rejected by nft/);
    const state = await node.state();
    expect(savedConfig(node)).toBe(installed);
    expect(state.running).toBe(sha256(installed));
    expect(await appliedLayers(ws)).toBe(layersBefore);

    // Once the node accepts it, the next up retries the same change and it goes through.
    await node.fault({ rejectRulesetContaining: "no-rule-holds-this-text" });
    const { result, events } = await up(refusedChange);
    expect(result.summary.result).toBe("succeeded");
    expect(changed(events)).toEqual(["update lab-node-apply"]);
    expect(savedConfig(node)).toContain("engine-refused");
    expect(await appliedLayers(ws)).not.toBe(layersBefore);
  }, 240_000);

  it("shows no secret: none of the node's keys or tokens, the registry password or the passphrase in the CLI's output, the engine's events or the backend in plaintext", () => {
    const secrets = [...nodeSecrets, registryPassword, ws.env.PULUMI_CONFIG_PASSPHRASE!];
    const places: [string, string][] = [
      ["CLI output", output.join("")],
      ["engine events and the failed up's error", seen.join("\n")],
      ...filesUnder(ws.backendDir),
      ...filesUnder(ws.projectDir),
    ];
    expect(places.some(([f]) => f.endsWith("dev.json"))).toBe(true);
    for (const [where, text] of places)
      for (const s of secrets) expect(text.includes(s), `${where}: ${s.slice(0, 8)}…`).toBe(false);
  });
});
