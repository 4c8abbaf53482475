/**
 * Images are pinned by digest: a tag can be moved to other bytes, a digest cannot, so what a review approved is
 * what the router runs. Checks every container and image volume of the Kubernetes workloads and every image a Helm
 * release's values set (`image: "ref"` or `{repository, tag, digest, useDigest}` as charts such as Cilium's take it).
 */
import type { ResourceValidationPolicy } from "@pulumi/policy";
import type { EnforcementLevel } from "@pulumi/policy";
import { containersOf, isUnknownValue, podSpecOf } from "../lib";

/** `name@sha256:<64 hex>` (a tag before the digest is allowed and ignored by the runtime). */
export const DIGEST_REF = /@sha256:[0-9a-f]{64}$/;

/** Images set in Helm values: strings under an `image` key, or image objects; yields [path, problem]. */
export function unpinnedValueImages(values: unknown, path = "values"): [string, string][] {
  const out: [string, string][] = [];
  const walk = (v: unknown, at: string, key: string) => {
    if (typeof v === "string") {
      if (key === "image" && !DIGEST_REF.test(v)) out.push([at, `"${v}"`]);
      return;
    }
    if (!v || typeof v !== "object" || Array.isArray(v)) {
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}[${i}]`, key));
      return;
    }
    const o = v as Record<string, unknown>;
    if (key === "image" && ("repository" in o || "tag" in o)) {
      const digest = typeof o.digest === "string" ? o.digest : "";
      if (!/^sha256:[0-9a-f]{64}$/.test(digest) || o.useDigest === false)
        out.push([at, `${String(o.repository ?? "?")}:${String(o.tag ?? "?")} without a digest in use`]);
    }
    for (const [k, x] of Object.entries(o)) walk(x, `${at}.${k}`, k);
  };
  walk(values, path, "");
  return out;
}

export function imagesPinnedByDigest(enforcementLevel: EnforcementLevel = "mandatory"): ResourceValidationPolicy {
  return {
    name: "images-pinned-by-digest",
    description: "Every container image and every image a Helm release sets is pinned by digest (@sha256:…).",
    enforcementLevel,
    validateResource: (args, report) => {
      const pod = podSpecOf(args.type, args.props);
      if (pod) {
        for (const { c, list } of containersOf(pod.spec)) {
          let image: string | undefined;
          try {
            image = c.image;
          } catch (e) {
            if (isUnknownValue(e)) continue; // computed at `pulumi up` (a freshly pushed image): nothing to check yet
            throw e;
          }
          if (!image || !DIGEST_REF.test(image))
            report(
              `${pod.kind} ${pod.workload}: ${list} ${c.name ?? "?"} runs image "${image ?? ""}", which is not pinned by digest (allowed: an image reference ending in @sha256:<64 hex digits>)`,
            );
        }
        // Image volumes (an OCI image's files mounted into the pod) run what they hold just the same.
        for (const v of pod.spec.volumes ?? []) {
          let ref: string | undefined;
          try {
            ref = v.image?.reference;
          } catch (e) {
            if (isUnknownValue(e)) continue;
            throw e;
          }
          if (v.image && (!ref || !DIGEST_REF.test(ref)))
            report(
              `${pod.kind} ${pod.workload}: volume ${v.name ?? "?"} mounts image "${ref ?? ""}", which is not pinned by digest (allowed: an image reference ending in @sha256:<64 hex digits>)`,
            );
        }
        return;
      }
      if (args.type === "kubernetes:helm.sh/v3:Release")
        for (const [at, what] of unpinnedValueImages(args.props.values))
          report(
            `Helm release ${String(args.props.name ?? args.name)}: ${at} sets image ${what}, which is not pinned by digest (allowed: a reference ending in @sha256:<64 hex digits>, or repository/tag with digest sha256:… and useDigest not false)`,
          );
    },
  };
}
