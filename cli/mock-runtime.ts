/**
 * Runs the real program (index.ts) under Pulumi's mock runtime and records every resource registration the way
 * the engine would see it: type, name, parent, dependencies, protect, inputs (secrets as "[secret]") and, for
 * components, their registered outputs. No Pulumi CLI, no cloud, no hardware.
 */
import * as pulumi from "@pulumi/pulumi";

export const SECRET_PLACEHOLDER = "[secret]";
let runs = 0;
/** Pulumi's wire format: special values carry this key; its value says which kind of special value. */
export const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
/** The wire's unknown value (a value a provider computes later). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export interface RecordedResource {
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  parent?: string;
  dependencies: string[];
  protect: boolean;
  /** The engine leaves the object in place when it deletes or replaces the resource. */
  retainOnDelete?: boolean;
  /** Inputs whose changes the engine ignores. */
  ignoreChanges?: string[];
  /** Inputs as registered; secret values are "[secret]", values unknown at this point are "[unknown]". */
  inputs: Record<string, unknown>;
  /** Outputs a component registered (components only). */
  outputs?: Record<string, unknown>;
}

/** Computes provider outputs for a mocked resource (e.g. generated keys). */
export type OutputGenerator = (type: string, name: string, inputs: Record<string, unknown>) => Record<string, unknown>;

/** Replaces Pulumi's wire markers: secrets → "[secret]", unknowns → "[unknown]". */
export function redactWire(v: unknown): unknown {
  if (v === UNKNOWN) return "[unknown]";
  if (Array.isArray(v)) return v.map(redactWire);
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (o[SIG_KEY] === SECRET_SIG) return SECRET_PLACEHOLDER;
    if (o[SIG_KEY] !== undefined) {
      // Other special values (assets, resource references): keep their visible parts.
      const { [SIG_KEY]: _sig, ...rest } = o;
      return redactWire(rest);
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, redactWire(x)]));
  }
  return v;
}

interface StructLike {
  toJavaScript(): Record<string, unknown>;
}
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getDependenciesList(): string[];
  getProtect(): boolean;
  getRetainondelete(): boolean | undefined;
  getIgnorechangesList(): string[];
  getObject(): StructLike | undefined;
}
interface OutputsRequest {
  getUrn(): string;
  getOutputs(): StructLike | undefined;
}
type Callback = (err: unknown, resp: unknown) => void;
interface MonitorLike {
  registerResource(req: RegisterRequest, cb: Callback): void;
  registerResourceOutputs(req: OutputsRequest, cb: Callback): void;
}

export interface MockRun {
  resources: RecordedResource[];
  /** The program module's exports (stack outputs), resolved; secret ones are "[secret]". */
  stackOutputs: Record<string, unknown>;
}

/** Default generated values: readable placeholders naming the resource and the output. */
export const placeholderOutputs: OutputGenerator = (type, name) => {
  const g = (field: string) => `[generated:${name}.${field}]`;
  switch (type) {
    case "tls:index/privateKey:PrivateKey":
      return {
        privateKeyPem: g("privateKeyPem"),
        privateKeyPemPkcs8: g("privateKeyPemPkcs8"),
        publicKeyPem: g("publicKeyPem"),
      };
    case "tls:index/selfSignedCert:SelfSignedCert":
    case "tls:index/locallySignedCert:LocallySignedCert":
      return { certPem: g("certPem") };
    case "tls:index/certRequest:CertRequest":
      return { certRequestPem: g("certRequestPem") };
    case "random:index/randomPassword:RandomPassword":
      return { result: g("result") };
    case "random:index/randomBytes:RandomBytes":
      return { base64: g("base64"), hex: g("hex") };
    case "command:local:Command":
      return { stdout: g("stdout"), stderr: "" };
    default:
      return {};
  }
};

async function resolveExport(v: unknown): Promise<unknown> {
  if (pulumi.Output.isInstance(v)) {
    const out = v as pulumi.Output<unknown>;
    if (await pulumi.isSecret(out)) return SECRET_PLACEHOLDER;
    return new Promise((resolve) => out.apply((x) => resolve(x)));
  }
  return v;
}

/**
 * Sets mocks and config, then loads `entry` (the program). Throws whatever the program throws (an invalid site
 * fails before any resource is registered).
 */
export async function runUnderMocks(opts: {
  project: string;
  stack: string;
  config: Record<string, string>;
  secretKeys: string[];
  entry: string;
  outputs?: OutputGenerator;
}): Promise<MockRun> {
  const gen = opts.outputs ?? placeholderOutputs;
  pulumi.runtime.setAllConfig(opts.config, opts.secretKeys);
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => ({
        id: args.custom ? `${args.name}-id` : undefined,
        state: { ...args.inputs, ...(args.custom ? gen(args.type, args.name, args.inputs) : {}) },
      }),
      call: (args) => args.inputs,
    },
    opts.project,
    opts.stack,
    false,
  );
  const monitor = pulumi.runtime.getMonitor() as unknown as MonitorLike;
  const byUrn = new Map<string, RecordedResource>();
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    const inputs = (redactWire(req.getObject()?.toJavaScript() ?? {}) ?? {}) as Record<string, unknown>;
    register(req, (err, resp) => {
      if (!err && resp) {
        const urn = (resp as { getUrn(): string }).getUrn();
        byUrn.set(urn, {
          urn,
          type: req.getType(),
          name: req.getName(),
          custom: req.getCustom(),
          parent: req.getParent() || undefined,
          dependencies: [...new Set(req.getDependenciesList())].sort(),
          protect: req.getProtect(),
          retainOnDelete: req.getRetainondelete() ?? false,
          ...(req.getIgnorechangesList().length ? { ignoreChanges: [...req.getIgnorechangesList()].sort() } : {}),
          inputs,
        });
      }
      cb(err, resp);
    });
  };
  const registerOutputs = monitor.registerResourceOutputs.bind(monitor);
  monitor.registerResourceOutputs = (req, cb) => {
    const r = byUrn.get(req.getUrn());
    if (r) r.outputs = redactWire(req.getOutputs()?.toJavaScript() ?? {}) as Record<string, unknown>;
    registerOutputs(req, cb);
  };

  // The program registers its resources when its module runs: a second render in the same process must run it
  // again, so later runs import a fresh instance of the entry module (its imports hold no per-run state).
  const program = (await import(runs++ === 0 ? opts.entry : `${opts.entry}?run=${runs}`)) as Record<string, unknown>;
  const stackOutputs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(program)) {
    if (k === "default" || k === "__esModule") continue;
    stackOutputs[k] = await resolveExport(v);
  }
  await waitForRegistrations();
  const resources = [...byUrn.values()].sort((a, b) => a.urn.localeCompare(b.urn));
  // A program that ran but registered nothing (e.g. a module instance bound to another copy of the runtime)
  // would render an empty plan that looks valid: refuse it.
  if (resources.length === 0) throw new Error(`${opts.entry} registered no resources under the mock runtime`);
  return { resources, stackOutputs };
}

/** Waits until the runtime has no registration in flight (Pulumi's own RPC drain). */
async function waitForRegistrations(): Promise<void> {
  // The settings module exports waitForRPCs (used by pulumi.runtime.disconnect); it is not in the typings.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const settings = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs?: () => Promise<void> };
  if (typeof settings.waitForRPCs !== "function")
    throw new Error("this @pulumi/pulumi has no runtime/settings.waitForRPCs; pin ~3.248 (see package.json)");
  await settings.waitForRPCs();
}
