/**
 * `pulumi preview` of the dev stack by the real Pulumi engine (the CLI built from the module proxy at the
 * Node SDK's version) with a local file backend and a passphrase secrets provider: the preview succeeds, plans
 * exactly the resources the offline render lists (computed by the mock runtime, apart from the engine), with
 * the Kubernetes side planned against a cluster that does not exist yet, and shows no secret value anywhere.
 *
 * The resource plugins are preview stand-ins (test/helpers/engine-stand-in-provider.ts): this tier proves the
 * engine's view of the program — registrations, URNs, parents, secrets, config — not the providers' checks.
 */
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EngineEvent, PreviewResult } from "@pulumi/pulumi/automation";
import { engineTier, engineWorkspace, renderedResources, type EngineWorkspace } from "../helpers/engine";

const t = engineTier();

interface Step {
  op: string;
  urn: string;
  type: string;
  /** The parent's URN. */
  parent?: string;
  /** The step's planned inputs as the engine reports them (secrets as "[secret]"). */
  inputs: Record<string, unknown>;
}

/** Every file under `dir` with its text. */
function filesUnder(dir: string): [string, string][] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .map((f) => [f, readFileSync(f, "latin1")]);
}

describe.skipIf(!t.ok)("pulumi preview of the dev stack with the real engine", () => {
  const registryPassword = `canary-${randomBytes(12).toString("hex")}`;
  let ws: EngineWorkspace;
  let result: PreviewResult;
  const events: EngineEvent[] = [];
  const output: string[] = [];
  let steps: Step[];
  let rendered: ReturnType<typeof renderedResources>;

  beforeAll(async () => {
    rendered = renderedResources();
    ws = await engineWorkspace({ secrets: { registryPassword } });
    result = await ws.stack.preview({
      onEvent: (e) => events.push(e),
      onOutput: (o) => output.push(o),
      diff: true,
      color: "never",
    });
    steps = events.flatMap((e) => {
      const m = e.resourcePreEvent?.metadata;
      if (!m) return [];
      const inputs = (m.new?.inputs ?? {}) as Record<string, unknown>;
      return [{ op: m.op, urn: m.urn, type: m.type, parent: m.new?.parent, inputs }];
    });
  }, 600_000);

  afterAll(async () => {
    await ws?.dispose();
  });

  it("succeeds and plans to create exactly the resources the offline render lists, each under the same parent", () => {
    const engineOwn = (s: Step) =>
      s.type === "pulumi:pulumi:Stack" || (s.type.startsWith("pulumi:providers:") && /::default(_|$)/.test(s.urn));
    const planned = steps.filter((s) => !engineOwn(s));
    expect(planned.every((s) => s.op === "create")).toBe(true);
    // Compared by type, name and parent's name: the mock runtime's URNs carry only the parent's own type where
    // the engine's carry the whole chain of parent types (@pulumi/pulumi runtime/mocks.js newUrn).
    const nameOf = (urn?: string) => urn?.split("::").at(-1);
    const key = (type: string, urn: string, parent?: string) =>
      `${type} ${nameOf(urn)} under ${parent?.includes("pulumi:pulumi:Stack") ? "the stack" : (nameOf(parent) ?? "the stack")}`;
    expect(planned.map((s) => key(s.type, s.urn, s.parent)).sort()).toEqual(
      rendered.map((r) => key(r.type, r.urn, r.parent)).sort(),
    );
    // The summary counts the program's resources and its stack, not the engine's default providers.
    expect(result.changeSummary).toEqual({ create: rendered.length + 1 });
    // The explicit Kubernetes provider is planned; the default providers are those of tls, random and command.
    expect(
      steps
        .filter((s) => s.type.startsWith("pulumi:providers:"))
        .map((s) => s.type)
        .sort(),
    ).toEqual([
      "pulumi:providers:command",
      "pulumi:providers:kubernetes",
      "pulumi:providers:random",
      "pulumi:providers:tls",
    ]);
  });

  it("plans the Kubernetes side against a cluster that does not exist yet: the provider's kubeconfig is unknown", () => {
    const provider = steps.find((s) => s.type === "pulumi:providers:kubernetes")!;
    // The engine shows a value it cannot know at preview as its unknown sentinel.
    expect(provider.inputs.kubeconfig).toBe("04da6b54-80e4-46f7-96ec-b56ff0331ba9");
    const k8s = steps.filter((s) => s.type.startsWith("kubernetes:"));
    expect(k8s.map((s) => s.type).sort()).toEqual(
      rendered
        .filter((r) => r.type.startsWith("kubernetes:"))
        .map((r) => r.type)
        .sort(),
    );
  });

  it("shows no secret value: the registry password and the passphrase appear in no output, event, state or stack file", () => {
    // The secret reached the program: the data plane's build gets it, masked, in its environment.
    const build = steps.find((s) => s.urn.endsWith("::lab-dataplane-extension"))!;
    expect(build.inputs.environment).toEqual({
      // Pulumi's signature of a secret value, with its value masked.
      "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
      ciphertext: "[secret]",
    });
    const stackFile = readFileSync(join(ws.projectDir, "Pulumi.dev.yaml"), "utf8");
    expect(stackFile).toMatch(/registryPassword:\n\s+secure: v1:/);
    const secrets = [registryPassword, ws.env.PULUMI_CONFIG_PASSPHRASE];
    const places: [string, string][] = [
      ["preview stdout", result.stdout],
      ["preview stderr", result.stderr],
      ["streamed output", output.join("")],
      ["engine events", JSON.stringify(events)],
      ...filesUnder(ws.backendDir),
      ...filesUnder(ws.projectDir),
    ];
    expect(places.length).toBeGreaterThan(5);
    for (const [where, text] of places) for (const s of secrets) expect(text.includes(s), where).toBe(false);
  });

  it("cannot pass an up with the stand-in plugins for one with the real ones: the first create fails, saying why", async () => {
    await expect(ws.stack.up({ color: "never" })).rejects.toThrow(/is a preview stand-in .* cannot create/);
  }, 300_000);
});
