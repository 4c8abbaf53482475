/**
 * The real validators of every daemon whose configuration the router renders (toolchain.md): Kea's `-t`,
 * `nft -c`, `radvd -c`, `chronyd -p`, a short Avahi run, `bird -p`, the Talos schema and the Kubernetes API
 * schemas. Each returns the problems it found ([] = valid), with the tool's own words.
 */
import { NFT_QUEUE, withoutNftQueue } from "./nft-queue";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import Ajv from "ajv";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Secret } from "kubernetes-models/v1/Secret";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";

/** The API schema of every kind the program creates. */
const K8S_MODELS: Record<string, { new (data: never): { validate(): void } }> = {
  DaemonSet,
  ConfigMap,
  Namespace,
  Secret,
  ServiceAccount,
  ClusterRole,
  ClusterRoleBinding,
};
import { tier } from "./tier";
import { talosSchema } from "./talos-schema";

export const validatorsTier = () =>
  tier("validators", {
    root: true,
    commands: ["unshare", "ip", "kea-dhcp4", "kea-dhcp6", "nft", "radvd", "chronyd", "avahi-daemon", "bird", "timeout"],
  });

/** Writes `content` to a fresh private directory; the caller's check removes it (`withTmpFile`). */
function withTmpFile<T>(name: string, content: string, check: (path: string) => T): T {
  const dir = mkdtempSync(join(process.env.ROUTER_VALIDATE_TMP ?? tmpdir(), "validate-"));
  try {
    const p = join(dir, name);
    writeFileSync(p, content);
    return check(p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function run(cmd: string, args: string[], input?: string) {
  return spawnSync(cmd, args, { encoding: "utf8", input, timeout: 30_000 });
}

/** Kea DHCPv4/DHCPv6 `-t`, in a network namespace where the configured links exist, with its state paths on tmpfs. */
export function keaCheck(family: 4 | 6, config: string): string[] {
  return withTmpFile(`kea${family}.json`, config, (file) => {
    const parsed = JSON.parse(config) as Record<string, { "interfaces-config": { interfaces: string[] } }>;
    const links = parsed[family === 4 ? "Dhcp4" : "Dhcp6"]["interfaces-config"].interfaces;
    const script = [
      "set -e",
      "mkdir -p /var/lib/kea /run/kea",
      "mount -t tmpfs none /var/lib/kea",
      "mount -t tmpfs none /run/kea",
      "ip link set lo up",
      ...links.map((l) => `ip link add '${l}' type bridge`),
      `kea-dhcp${family} -t '${file}'`,
    ].join("\n");
    const r = run("unshare", ["-m", "-n", "sh", "-c", script]);
    return r.status === 0
      ? []
      : [
          `kea-dhcp${family} -t exited ${r.status}: ${
            (r.stdout + r.stderr)
              .split("\n")
              .filter((l) => /ERROR|rror|fail/i.test(l))
              .join("\n") || r.stderr
          }`,
        ];
  });
}

/**
 * `nft -c` on the ruleset. A ruleset with the IDS queue is checked twice on a kernel without nft's queue
 * expression (test/helpers/nft-queue.ts): as rendered, where the only errors allowed are the kernel's refusal of
 * the queue statements (nft's parser accepted them: a syntax error stops before the kernel), and with those
 * verdicts as accept, which the kernel must take whole.
 */
export function nftCheck(ruleset: string): string[] {
  return withTmpFile("router.nft", ruleset, (file) => {
    const r = run("unshare", ["-n", "nft", "-c", "-f", file]);
    if (r.status === 0) return [];
    const errors = r.stderr.split("\n").filter((l) => l.includes("Error:"));
    const onlyQueue =
      NFT_QUEUE.test(ruleset) &&
      errors.length > 0 &&
      errors.every((l) => l.includes("Could not process rule: No such file or directory")) &&
      r.stderr
        .split("\n")
        .filter((l) => /^\s+\S/.test(l) && !/^\s*\^/.test(l))
        .every((l) => /\bqueue\b/.test(l));
    NFT_QUEUE.lastIndex = 0;
    if (!onlyQueue) return [`nft -c exited ${r.status}: ${r.stderr}`];
    return nftCheck(withoutNftQueue(ruleset));
  });
}

export function radvdCheck(config: string): string[] {
  return withTmpFile("radvd.conf", config, (file) => {
    const r = run("radvd", ["-c", "-C", file]);
    return r.status === 0 && /syntax ok/.test(r.stderr) ? [] : [`radvd -c exited ${r.status}: ${r.stderr}`];
  });
}

export function chronyCheck(config: string): string[] {
  return withTmpFile("chrony.conf", config, (file) => {
    const r = run("chronyd", ["-p", "-f", file]);
    return r.status === 0 ? [] : [`chronyd -p exited ${r.status}: ${r.stderr}`];
  });
}

/** Avahi has no check mode: it must start and keep running for two seconds (exit 124 from timeout). */
export function avahiCheck(config: string): string[] {
  return withTmpFile("avahi-daemon.conf", config, (file) => {
    const script = [
      "set -e",
      "mkdir -p /run/avahi-daemon",
      "mount -t tmpfs none /run/avahi-daemon",
      "ip link set lo up",
      `timeout 2 avahi-daemon -f '${file}' --no-drop-root --no-chroot --no-rlimits`,
    ].join("\n");
    const r = run("unshare", ["-m", "-n", "sh", "-c", script]);
    return r.status === 124 ? [] : [`avahi-daemon exited ${r.status} (124 = ran): ${r.stderr}`];
  });
}

/** BIRD's own parser (`bird -p`: parse the configuration and exit; it opens no socket and needs no privilege). */
export function birdCheck(config: string): string[] {
  return withTmpFile("bird.conf", config, (file) => {
    const r = run("bird", ["-p", "-c", file]);
    return r.status === 0 ? [] : [`bird -p exited ${r.status}: ${r.stdout}${r.stderr}`];
  });
}

export function talosCheck(stream: string): string[] {
  return talosSchema().validateStream(stream);
}

/** Kubernetes objects against the API schemas (kubernetes-models), by kind. */
/**
 * Talos' ServiceAccount (talos.dev/v1alpha1), as the API server validates it: the CRD Talos installs once its
 * Kubernetes API access is on (siderolabs/talos internal/app/machined/pkg/controllers/k8s/internal/k8stemplates,
 * talos-service-account-crd.yaml: namespaced, spec.roles a list of strings), and the roles Talos' ServiceAccount
 * controller accepts (pkg/machinery/role role.go All; any other is a failureReason and no Secret).
 */
const TALOS_SA_SCHEMA = {
  type: "object",
  required: ["apiVersion", "kind", "metadata", "spec"],
  properties: {
    apiVersion: { const: "talos.dev/v1alpha1" },
    kind: { const: "ServiceAccount" },
    metadata: {
      type: "object",
      required: ["name", "namespace"],
      properties: {
        name: {
          type: "string",
          pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
          maxLength: 253,
        },
        namespace: { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 63 },
      },
    },
    spec: {
      type: "object",
      required: ["roles"],
      additionalProperties: false,
      properties: {
        roles: {
          type: "array",
          minItems: 1,
          items: {
            enum: [
              "os:admin",
              "os:operator",
              "os:reader",
              "os:etcd:backup",
              "os:image:verifier",
              "os:meta:writer",
              "os:impersonator",
            ],
          },
        },
      },
    },
  },
};
const talosServiceAccount = new Ajv({ allErrors: true, strict: false }).compile(TALOS_SA_SCHEMA);

export function k8sCheck(yamlText: string): string[] {
  const obj = parse(yamlText) as { apiVersion: string; kind: string; stringData?: unknown };
  if (obj.apiVersion === "talos.dev/v1alpha1")
    return talosServiceAccount(obj)
      ? []
      : (talosServiceAccount.errors ?? []).map((e) => `${obj.kind} (talos.dev): ${e.instancePath || "/"} ${e.message}`);
  // A rendered Secret shows its data as one placeholder: the object around it is what can be checked.
  if (obj.kind === "Secret" && obj.stringData === "[secret]") obj.stringData = {};
  const model = K8S_MODELS[obj.kind];
  if (!model) return [`no schema for kind ${obj.kind}`];
  try {
    new model(obj as never).validate();
    return [];
  } catch (e) {
    return [`${obj.kind}: ${(e as Error).message}`];
  }
}

/** Validates every artifact of a render by its path; returns `path: problem` lines. */
export function validateArtifacts(files: Map<string, string>): string[] {
  const problems: string[] = [];
  const add = (path: string, ps: string[]) => problems.push(...ps.map((p) => `${path}: ${p}`));
  for (const [path, content] of files) {
    if (path === "services/kea-dhcp4.json") add(path, keaCheck(4, content));
    else if (path === "services/kea-dhcp6.json") add(path, keaCheck(6, content));
    else if (path === "dataplane/router.nft") add(path, nftCheck(content));
    else if (path === "services/radvd.conf") add(path, radvdCheck(content));
    else if (path === "services/chrony.conf") add(path, chronyCheck(content));
    else if (/^services\/avahi-daemon\..+\.conf$/.test(path)) add(path, avahiCheck(content));
    else if (path === "services/bird.conf") add(path, birdCheck(content));
    else if (path.startsWith("talos/")) add(path, talosCheck(content));
    else if (path.startsWith("k8s/")) add(path, k8sCheck(content));
  }
  return problems;
}
