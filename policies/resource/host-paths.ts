/**
 * Pods mount host paths only under the router's state directory: leases, journals and caches survive restarts
 * and upgrades there, and nothing else of the host (its configuration, /proc, the container runtime) is within
 * a workload's reach.
 */
import type { EnforcementLevel, ResourceValidationPolicy } from "@pulumi/policy";
import { posix } from "node:path";
import { podSpecOf } from "../lib";

/** The router's state directory on the node (components/network-services/k8s.ts HOST_STATE_DIR). */
export const ROUTER_STATE_DIR = "/var/lib/router";

/** True when `path` is the state directory or below it, after normalising `..` and duplicate slashes. */
export function underStateDir(path: string, stateDir = ROUTER_STATE_DIR): boolean {
  const p = posix.normalize(path);
  return p === stateDir || p.startsWith(`${stateDir}/`);
}

export function hostPathsUnderStateDir(enforcementLevel: EnforcementLevel = "mandatory"): ResourceValidationPolicy {
  return {
    name: "host-paths-under-state-dir",
    description: `Pods mount host paths only under ${ROUTER_STATE_DIR}.`,
    enforcementLevel,
    validateResource: (args, report) => {
      const pod = podSpecOf(args.type, args.props);
      if (!pod) return;
      for (const v of pod.spec.volumes ?? []) {
        const path = v.hostPath?.path;
        if (path !== undefined && !underStateDir(path))
          report(
            `${pod.kind} ${pod.workload}: volume ${v.name ?? "?"} mounts the host path ${path} (allowed: ${ROUTER_STATE_DIR} or below)`,
          );
      }
    },
  };
}
