/**
 * Workloads run unprivileged with the capabilities their job needs and no more: no privileged container, no
 * privilege escalation, and each capability a container adds on an allow-list kept per workload (with the
 * reason it is needed), reviewed here like code. Cilium's agent gets its capabilities through its Helm values:
 * those lists are checked against the same table. A new workload adds its row.
 */
import type { EnforcementLevel, ResourceValidationPolicy } from "@pulumi/policy";
import { containersOf, podSpecOf } from "../lib";

/** Workload (or `avahi-*` pattern, or `cilium:<values list>`) → capabilities it may add, and why. */
export const CAPABILITY_ALLOW_LIST: Record<string, { capabilities: string[]; why: string }> = {
  "kea-dhcp4": {
    capabilities: ["NET_BIND_SERVICE", "NET_RAW"],
    why: "raw (AF_PACKET) sockets for clients without an address, port 67",
  },
  "kea-dhcp6": { capabilities: ["NET_BIND_SERVICE"], why: "port 547 (plain UDP; multicast membership needs none)" },
  radvd: { capabilities: ["NET_RAW"], why: "ICMPv6 raw socket" },
  chrony: {
    capabilities: ["NET_BIND_SERVICE", "SETUID", "SETGID", "CHOWN"],
    why: "port 123, then drops to its own user",
  },
  "avahi-*": { capabilities: ["CHOWN"], why: "hands its run directory to the avahi user (refuses to start otherwise)" },
  bird: {
    capabilities: ["NET_ADMIN", "NET_RAW"],
    why: "BIRD's OSPF: raw IP sockets (NET_RAW), the kernel routes it installs and its packets' priority (NET_ADMIN)",
  },
  flows: {
    capabilities: ["NET_RAW", "NET_ADMIN"],
    why: "softflowd reads each link's packets (packet sockets, promiscuous)",
  },
  "router-ids": {
    capabilities: ["NET_ADMIN", "NET_RAW", "SYS_NICE", "IPC_LOCK", "CHOWN"],
    why: "Suricata: AF_PACKET capture and NFQUEUE (NET_RAW, NET_ADMIN), worker threads pinned to CPUs (SYS_NICE), packet rings locked in memory (IPC_LOCK); an init container hands the rule directories the kubelet creates as root to the unprivileged rule updater (CHOWN alone); the updater, the block agent and the metrics agent add none",
  },
  "log-collector": { capabilities: ["NET_ADMIN"], why: "ulogd binds an NFLOG group in the host's network namespace" },
  "dns-front": {
    capabilities: ["NET_BIND_SERVICE"],
    why: "dnsdist listens on the zones' gateway addresses on ports 53, 853 (DoT) and 443 (DoH)",
  },
  "dns-feeds": {
    capabilities: ["CHOWN"],
    why: "its init step hands the list cache the kubelet creates as root to the unprivileged fetcher (CHOWN alone)",
  },
  "dns-stats": {
    capabilities: ["CHOWN"],
    why: "its init step hands the query-log directory the kubelet creates as root to the collector's user (CHOWN alone)",
  },
  "cilium:ciliumAgent": {
    capabilities: [
      "CHOWN",
      "KILL",
      "NET_ADMIN",
      "NET_RAW",
      "IPC_LOCK",
      "SYS_ADMIN",
      "SYS_RESOURCE",
      "DAC_OVERRIDE",
      "FOWNER",
      "SETGID",
      "SETUID",
    ],
    why: "the list Talos documents for Cilium (no SYS_MODULE: Talos loads no modules for it)",
  },
  "cilium:mountCgroup": { capabilities: ["SYS_ADMIN", "SYS_CHROOT", "SYS_PTRACE"], why: "mount the cgroup2 hierarchy" },
  "cilium:applySysctlOverwrites": {
    capabilities: ["SYS_ADMIN", "SYS_CHROOT", "SYS_PTRACE"],
    why: "write the host's sysctls",
  },
  "cilium:cleanCiliumState": {
    capabilities: ["NET_ADMIN", "SYS_ADMIN", "SYS_RESOURCE"],
    why: "remove BPF state on a clean start",
  },
};

/** The allow-list row for a workload name (exact, else the longest matching `prefix-*`). */
export function allowed(workload: string, table = CAPABILITY_ALLOW_LIST): string[] | undefined {
  if (table[workload]) return table[workload].capabilities;
  const patterns = Object.keys(table)
    .filter((k) => k.endsWith("*") && workload.startsWith(k.slice(0, -1)))
    .sort((a, b) => b.length - a.length);
  return patterns.length ? table[patterns[0]].capabilities : undefined;
}

/** Workloads that may share a host namespace, and why. */
export const HOST_NAMESPACE_EXCEPTIONS: Record<string, { hostPID?: boolean; hostIPC?: boolean; why: string }> = {
  "node-exporter": { hostPID: true, why: "the host's per-process metrics (read-only; no capability added)" },
};

export function noPrivilegedPods(enforcementLevel: EnforcementLevel = "mandatory"): ResourceValidationPolicy {
  return {
    name: "no-privileged-pods",
    description:
      "No container runs privileged or may escalate privileges; no pod shares the host's PID or IPC namespace; no pod gets an API token it does not need.",
    enforcementLevel,
    validateResource: (args, report) => {
      const pod = podSpecOf(args.type, args.props);
      if (!pod) return;
      const at = `${pod.kind} ${pod.workload}`;
      const ok = HOST_NAMESPACE_EXCEPTIONS[pod.name];
      if (pod.spec.hostPID && !ok?.hostPID)
        report(
          `${at}: hostPID is true (allowed: false — the pod would see every process of the router — unless policies/resource/pods.ts lists the workload with its reason)`,
        );
      if (pod.spec.hostIPC && !ok?.hostIPC) report(`${at}: hostIPC is true (allowed: false)`);
      // Kubernetes mounts a token by default: without a service account of its own the pod would hold the
      // namespace's default account's, a foothold on the API server for whoever takes over the pod.
      if (!pod.spec.serviceAccountName && pod.spec.automountServiceAccountToken !== false)
        report(
          `${at}: automountServiceAccountToken is not false, so the pod holds the namespace's default service-account token (allowed: false, or a serviceAccountName whose RBAC the workload needs)`,
        );
      for (const { c, list } of containersOf(pod.spec)) {
        const sc = c.securityContext ?? {};
        if (sc.privileged)
          report(
            `${at}: ${list} ${c.name ?? "?"} is privileged (allowed: privileged false, with the capabilities it needs)`,
          );
        if (sc.allowPrivilegeEscalation !== false)
          report(`${at}: ${list} ${c.name ?? "?"} does not set allowPrivilegeEscalation: false (allowed: false)`);
      }
    },
  };
}

export function capabilitiesAllowList(enforcementLevel: EnforcementLevel = "mandatory"): ResourceValidationPolicy {
  return {
    name: "capabilities-allow-list",
    description: "Each container drops ALL capabilities and adds only those its workload's allow-list row names.",
    enforcementLevel,
    validateResource: (args, report) => {
      const pod = podSpecOf(args.type, args.props);
      if (pod) {
        const ok = allowed(pod.name);
        for (const { c, list } of containersOf(pod.spec)) {
          const caps = c.securityContext?.capabilities ?? {};
          const at = `${pod.kind} ${pod.workload}: ${list} ${c.name ?? "?"}`;
          if (!(caps.drop ?? []).includes("ALL"))
            report(`${at} does not drop ALL capabilities (allowed: drop [ALL], then add what the allow-list names)`);
          const extra = (caps.add ?? []).filter((x) => !(ok ?? []).includes(x));
          if (extra.length)
            report(
              ok
                ? `${at} adds ${extra.join(", ")}, beyond its allow-list (allowed for ${pod.name}: ${ok.join(", ") || "none"})`
                : `${at} adds ${extra.join(", ")}, but workload ${pod.name} has no row in the capability allow-list (policies/resource/pods.ts)`,
            );
        }
        return;
      }
      if (args.type === "kubernetes:helm.sh/v3:Release" && args.props.chart === "cilium") {
        const lists = (args.props.values?.securityContext?.capabilities ?? {}) as Record<string, string[]>;
        for (const [component, caps] of Object.entries(lists)) {
          const ok = allowed(`cilium:${component}`);
          const extra = caps.filter((x) => !(ok ?? []).includes(x));
          if (extra.length)
            report(
              `Helm release cilium: values.securityContext.capabilities.${component} adds ${extra.join(", ")} (allowed: ${ok ? ok.join(", ") || "none" : `nothing — cilium:${component} has no row in the allow-list`})`,
            );
        }
      }
    },
  };
}
