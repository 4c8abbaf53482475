/**
 * Runs the policy pack over a recorded program run, the way the Pulumi engine runs it: every resource through
 * the pack's Analyze handler with its inputs and options (step_generator.go builds the same AnalyzerResource),
 * then every resource through AnalyzeStack with its outputs — components their registered outputs — parent and
 * dependencies (deployment_executor.go). The requests are the analyzer protocol's own messages
 * (@pulumi/pulumi/proto/analyzer_pb), handed to the handlers @pulumi/policy's server registers for them, so the
 * pack sees its arguments exactly as under `pulumi preview --policy-pack`: secrets wrapped and unwrapped by the
 * SDK, values not known yet (provider outputs) as the preview's unknowns. No gRPC server, no child process.
 */
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import * as analyzerproto from "@pulumi/pulumi/proto/analyzer_pb";
import type { Policies } from "@pulumi/policy";
import { PACK_NAME, policies as packPolicies } from "./registry";
import { SECRET_SIG, SIG_KEY, UNKNOWN, type RecordedResource } from "../cli/mock-runtime";

/**
 * What the evaluation needs of a recorded resource: type, name, URN, parent, dependencies, options, inputs
 * (secrets as "[secret]", values not known yet as "[unknown]" or mock-generated "[generated:…]") and, for a
 * component, its registered outputs.
 */
export type AnalyzedResource = Pick<
  RecordedResource,
  "urn" | "type" | "name" | "custom" | "parent" | "dependencies" | "protect" | "ignoreChanges" | "inputs" | "outputs"
>;

export interface PolicyFinding {
  policy: string;
  level: "advisory" | "mandatory" | "disabled" | "remediate";
  message: string;
  urn?: string;
}

/** Back to the wire: placeholders become secret-wrapped values and unknowns, as the engine would send them. */
function toWire(v: unknown): unknown {
  if (typeof v === "string") {
    if (v === "[secret]") return { [SIG_KEY]: SECRET_SIG, value: v };
    return v.includes("[unknown]") || v.includes("[generated:") ? UNKNOWN : v;
  }
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toWire(x)]));
  return v;
}

function struct(props: Record<string, unknown>): Struct {
  return Struct.fromJavaScript(toWire(props) as Record<string, never>);
}

function options(r: AnalyzedResource): analyzerproto.AnalyzerResourceOptions {
  const o = new analyzerproto.AnalyzerResourceOptions();
  o.setProtect(r.protect);
  o.setIgnorechangesList(r.ignoreChanges ?? []);
  if (r.parent) o.setParent(r.parent);
  return o;
}

const LEVELS = ["advisory", "mandatory", "disabled", "remediate"] as const;

interface Diagnostic {
  getPolicyname(): string;
  getMessage(): string;
  getUrn(): string;
  getEnforcementlevel(): number;
}
type Handler = (
  call: { request: unknown },
  cb: (err: unknown, resp?: { getDiagnosticsList(): Diagnostic[] }) => void,
) => unknown;
interface ServerInternals {
  makeAnalyzeRpcFun(name: string, version: string, level: string, policies: Policies): Handler;
  makeAnalyzeStackRpcFun(name: string, version: string, level: string, policies: Policies): Handler;
}
// The handlers the pack's gRPC server registers (internal to the SDK, hence no typings): the same code path.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const server = require("@pulumi/policy/server") as ServerInternals;

function call(handler: Handler, request: unknown): Promise<PolicyFinding[]> {
  return new Promise((resolve, reject) => {
    void handler({ request }, (err, resp) => {
      if (err)
        return reject(err instanceof Error ? err : new Error(String((err as { message?: string }).message ?? err)));
      resolve(
        (resp?.getDiagnosticsList() ?? []).map((d) => ({
          policy: d.getPolicyname(),
          level: LEVELS[d.getEnforcementlevel()] ?? "mandatory",
          message: d.getMessage(),
          ...(d.getUrn() ? { urn: d.getUrn() } : {}),
        })),
      );
    });
  });
}

/** The Analyze request the engine sends for a resource: its inputs and options. */
export function analyzeRequest(r: AnalyzedResource): analyzerproto.AnalyzeRequest {
  const req = new analyzerproto.AnalyzeRequest();
  req.setType(r.type);
  req.setUrn(r.urn);
  req.setName(r.name);
  req.setProperties(struct(r.inputs));
  req.setOptions(options(r));
  return req;
}

/** The AnalyzeStack request: every resource with its outputs (a custom resource's recorded inputs stand in). */
export function analyzeStackRequest(resources: readonly AnalyzedResource[]): analyzerproto.AnalyzeStackRequest {
  const req = new analyzerproto.AnalyzeStackRequest();
  req.setResourcesList(
    resources.map((r) => {
      const a = new analyzerproto.AnalyzerResource();
      a.setType(r.type);
      a.setUrn(r.urn);
      a.setName(r.name);
      a.setProperties(struct(r.custom ? r.inputs : (r.outputs ?? {})));
      a.setOptions(options(r));
      if (r.parent) a.setParent(r.parent);
      a.setDependenciesList(r.dependencies);
      return a;
    }),
  );
  return req;
}

/** Evaluates the pack (or `policies`) over the resources; resource findings first, in registration order. */
export async function evaluatePolicies(
  resources: readonly AnalyzedResource[],
  policies: Policies = packPolicies,
): Promise<PolicyFinding[]> {
  const version = "0.0.0-render";
  const analyze = server.makeAnalyzeRpcFun(PACK_NAME, version, "mandatory", policies);
  const analyzeStack = server.makeAnalyzeStackRpcFun(PACK_NAME, version, "mandatory", policies);
  const findings: PolicyFinding[] = [];
  for (const r of resources) findings.push(...(await call(analyze, analyzeRequest(r))));
  findings.push(...(await call(analyzeStack, analyzeStackRequest(resources))));
  return findings;
}

/** One line per finding: `[level] policy: message` (the SDK puts the policy's description on the first line). */
export function formatFindings(findings: readonly PolicyFinding[]): string {
  return findings
    .map(
      (f) =>
        `[${f.level}] ${f.policy}: ${f.message.split("\n").slice(1).join(" ") || f.message}${f.urn ? `\n    at ${f.urn}` : ""}`,
    )
    .join("\n");
}
