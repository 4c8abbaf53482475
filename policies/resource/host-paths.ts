/**
 * Pods mount host paths only under the router's state directory: leases, journals and caches survive restarts
 * and upgrades there, and nothing else of the host (its configuration, /proc, the container runtime) is within
 * a workload's reach — except the read-only paths listed here per workload, each with its reason.
 */
import type { EnforcementLevel, ResourceValidationPolicy } from "@pulumi/policy";
import { posix } from "node:path";
import { containersOf, podSpecOf } from "../lib";

/** The router's state directory on the node (components/network-services/k8s.ts HOST_STATE_DIR). */
export const ROUTER_STATE_DIR = "/var/lib/router";

/** True when `path` is the state directory or below it, after normalising `..` and duplicate slashes. */
export function underStateDir(path: string, stateDir = ROUTER_STATE_DIR): boolean {
  const p = posix.normalize(path);
  return p === stateDir || p.startsWith(`${stateDir}/`);
}

/** Host paths a workload may mount outside the state directory: read-only only, each with its reason. */
export const HOST_PATH_EXCEPTIONS: Record<string, { path: string; why: string }[]> = {
  "node-exporter": [{ path: "/", why: "host metrics read through --path.rootfs" }],
  "log-collector": [{ path: "/var/log/pods", why: "the pods' logs, collected for the log store" }],
  "router-ids": [
    {
      path: "/var/lib/router-dataplane/ids",
      why: "the data-plane loader's block socket, which the block agent connects to (the loader owns the directory)",
    },
  ],
};

export function hostPathsUnderStateDir(enforcementLevel: EnforcementLevel = "mandatory"): ResourceValidationPolicy {
  return {
    name: "host-paths-under-state-dir",
    description: `Pods mount host paths only under ${ROUTER_STATE_DIR}.`,
    enforcementLevel,
    validateResource: (args, report) => {
      const pod = podSpecOf(args.type, args.props);
      if (!pod) return;
      const mounts = containersOf(pod.spec).flatMap(({ c }) => c.volumeMounts ?? []);
      for (const v of pod.spec.volumes ?? []) {
        const path = v.hostPath?.path;
        if (path === undefined || underStateDir(path)) continue;
        const listed = (HOST_PATH_EXCEPTIONS[pod.name] ?? []).some(
          (e) => posix.normalize(e.path) === posix.normalize(path),
        );
        const writable = mounts.filter((m) => m.name === v.name && !m.readOnly);
        if (listed && writable.length === 0) continue;
        report(
          listed
            ? `${pod.kind} ${pod.workload}: volume ${v.name ?? "?"} mounts the host path ${path} writable at ${writable.map((m) => m.mountPath).join(", ")} (allowed outside ${ROUTER_STATE_DIR}: read-only mounts only)`
            : `${pod.kind} ${pod.workload}: volume ${v.name ?? "?"} mounts the host path ${path} (allowed: ${ROUTER_STATE_DIR} or below, or a read-only path policies/resource/host-paths.ts lists for the workload)`,
        );
      }
    },
  };
}
