/**
 * Helpers the router's policies share: the review model the layers publish (components/review.ts) read from
 * the stack's resources, the pod specs of the Kubernetes workloads, and walking property trees. Pure: no policy
 * pack is started here (policies/index.ts does that), so tests and the offline render import it freely.
 */
import type { PolicyResource, ReportViolation, StackValidationArgs } from "@pulumi/policy";

// The SDK marks its proxy module internal (no typings); its error class is how a preview's unknown shows.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { UnknownValueError } = require("@pulumi/policy/proxy") as { UnknownValueError: new () => Error };
import { collectReview, type LayerReview, type ReviewModel } from "../components/review";

/** The review model from the stack's resources (each layer's component publishes its `review` output). */
export function reviewModel(resources: readonly Pick<PolicyResource, "props">[]): ReviewModel {
  const reviews = resources.flatMap((r) => {
    const rv = r.props?.review as LayerReview | undefined;
    return rv && typeof rv === "object" ? [rv] : [];
  });
  return collectReview(reviews);
}

/** The review model, or notApplicable when the stack carries none (a program without the router's layers). */
export function requireModel(args: StackValidationArgs): ReviewModel {
  const model = reviewModel(args.resources);
  if (!model.firewall && model.segments.length === 0) args.notApplicable("the stack publishes no review facts");
  return model;
}

/** The URN of the component that published the firewall facts, for violations to point at. */
export function firewallUrn(args: StackValidationArgs): string | undefined {
  return args.resources.find((r) => (r.props?.review as LayerReview | undefined)?.firewall)?.urn;
}

/** The URN of the segment whose facts name this segment. */
export function segmentUrn(args: StackValidationArgs, segment: string): string | undefined {
  return args.resources.find((r) => (r.props?.review as LayerReview | undefined)?.segment?.name === segment)?.urn;
}

/** A report function bound to one URN (or the stack when undefined). */
export function reportAt(report: ReportViolation, urn: string | undefined): (message: string) => void {
  return (message) => report(message, urn);
}

/** Kubernetes kinds whose objects run pods, and where their pod spec sits. */
const POD_SPEC_PATHS: Record<string, string[]> = {
  "kubernetes:core/v1:Pod": ["spec"],
  "kubernetes:apps/v1:DaemonSet": ["spec", "template", "spec"],
  "kubernetes:apps/v1:Deployment": ["spec", "template", "spec"],
  "kubernetes:apps/v1:StatefulSet": ["spec", "template", "spec"],
  "kubernetes:apps/v1:ReplicaSet": ["spec", "template", "spec"],
  "kubernetes:batch/v1:Job": ["spec", "template", "spec"],
  "kubernetes:batch/v1:CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
};

export interface Container {
  name?: string;
  image?: string;
  volumeMounts?: { name?: string; mountPath?: string; readOnly?: boolean }[];
  securityContext?: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
  };
}

export interface PodSpec {
  containers?: Container[];
  initContainers?: Container[];
  ephemeralContainers?: Container[];
  volumes?: { name?: string; hostPath?: { path?: string }; image?: { reference?: string } }[];
  hostPID?: boolean;
  hostIPC?: boolean;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
}

/** The pod spec of a workload resource, its workload name (namespace/name) and kind; undefined for other types. */
export function podSpecOf(
  type: string,
  props: Record<string, unknown>,
): { spec: PodSpec; workload: string; name: string; kind: string } | undefined {
  const path = POD_SPEC_PATHS[type];
  if (!path) return undefined;
  let v: unknown = props;
  for (const k of path) v = v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
  if (!v || typeof v !== "object") return undefined;
  const meta = (props.metadata ?? {}) as { name?: string; namespace?: string };
  const name = meta.name ?? "";
  return {
    spec: v as PodSpec,
    name,
    workload: `${meta.namespace ? `${meta.namespace}/` : ""}${name}`,
    kind: type.split(":").at(-1)!,
  };
}

/** Every container of a pod spec, with which list it is in. */
export function containersOf(spec: PodSpec): { c: Container; list: string }[] {
  return (["initContainers", "containers", "ephemeralContainers"] as const).flatMap((list) =>
    (spec[list] ?? []).map((c) => ({ c, list })),
  );
}

/** True for the error the policy SDK throws when a policy reads a value unknown during a preview. */
export function isUnknownValue(e: unknown): boolean {
  return e instanceof UnknownValueError;
}

/**
 * Walks a property tree, calling `visit` with the dotted path of every string. Values unknown during a preview
 * are skipped (they hold nothing to check yet) and reported to `unknown`.
 */
export function walkStrings(
  v: unknown,
  visit: (path: string, s: string) => void,
  unknown: (path: string) => void = () => undefined,
  path = "",
): void {
  if (typeof v === "string") return visit(path, v);
  if (!v || typeof v !== "object") return;
  // Keys only: reading an element is what throws for an unknown, and must happen inside the try.
  for (const k of Object.keys(v)) {
    const at = Array.isArray(v) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
    let x: unknown;
    try {
      x = (v as Record<string, unknown>)[k];
    } catch (e) {
      if (!isUnknownValue(e)) throw e;
      unknown(at);
      continue;
    }
    walkStrings(x, visit, unknown, at);
  }
}
