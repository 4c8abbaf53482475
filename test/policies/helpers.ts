/**
 * Policy tests in the shape of pulumi-policy-aws's: small helpers that run one policy over fixtures and return
 * its messages. The fixtures go through the pack's own Analyze/AnalyzeStack handlers with engine-shaped
 * requests (policies/evaluate.ts), so a policy sees its arguments as under `pulumi preview --policy-pack`.
 */
import type { Policies, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { evaluatePolicies, type AnalyzedResource, type PolicyFinding } from "../../policies/evaluate";
import { renderStack } from "../../cli/render";
import type { RecordedResource } from "../../cli/mock-runtime";
import { devStack } from "../helpers/stacks";

/** A resource fixture: a type, a name and its inputs (a custom resource unless outputs are given). */
export function resource(
  type: string,
  name: string,
  inputs: Record<string, unknown>,
  extra: Partial<AnalyzedResource> = {},
): AnalyzedResource {
  return {
    urn: `urn:pulumi:test::router::${type}::${name}`,
    type,
    name,
    custom: !extra.outputs,
    dependencies: [],
    protect: false,
    inputs,
    ...extra,
  };
}

/** The message a finding carries, without the policy description the SDK puts on its first line. */
export function message(f: PolicyFinding): string {
  const [, ...rest] = f.message.split("\n");
  return rest.length ? rest.join("\n") : f.message;
}

/** Runs one policy over the resources; returns its findings. */
export async function run(
  policy: ResourceValidationPolicy | StackValidationPolicy,
  resources: readonly AnalyzedResource[],
): Promise<PolicyFinding[]> {
  return evaluatePolicies(resources, [policy] as Policies);
}

/** Messages of one policy's mandatory findings. */
export async function violations(
  policy: ResourceValidationPolicy | StackValidationPolicy,
  resources: readonly AnalyzedResource[],
): Promise<string[]> {
  return (await run(policy, resources)).filter((f) => f.level === "mandatory").map(message);
}

let dev: RecordedResource[] | undefined;
/** The dev site's recorded resources (rendered once per test file): the passing fixture of every policy. */
export async function devResources(): Promise<RecordedResource[]> {
  dev ??= (await renderStack({ stack: "dev", config: devStack() })).run.resources;
  return structuredClone(dev);
}
