/**
 * Resource policies, each with a passing fixture (the dev site as rendered, and a corrected variant) and
 * failing fixtures whose messages are asserted: images pinned by digest, no privileged pods, capabilities on the
 * allow-list, host paths under the state directory, no secret in a plain input, Talos changes through the try
 * path.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { RecordedResource } from "../../cli/mock-runtime";
import { imagesPinnedByDigest } from "../../policies/resource/images";
import { capabilitiesAllowList, noPrivilegedPods } from "../../policies/resource/pods";
import { hostPathsUnderStateDir } from "../../policies/resource/host-paths";
import { noSecretInPlainInput, secretMaterial } from "../../policies/resource/secrets";
import { applyInvocations, talosChangesThroughTry } from "../../policies/resource/talos-apply";
import { devResources, resource, run, violations } from "./helpers";

const DIGEST = `registry.lab.home.arpa:5000/router/router-services@sha256:${"ab12".repeat(16)}`;
let dev: RecordedResource[];
const named = (rs: RecordedResource[], n: string) => rs.find((r) => r.name === n)!;

interface Pod {
  spec: { template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } } };
}
/** The dev site's kea-dhcp4 DaemonSet with a pinned image, edited by `edit`. */
function kea(edit: (spec: Pod["spec"]["template"]["spec"], c: Record<string, unknown>) => void = () => undefined) {
  const r = structuredClone(named(dev, "lab-services-daemonset-kea-dhcp4"));
  const spec = (r.inputs as unknown as Pod).spec.template.spec;
  spec.containers[0].image = DIGEST;
  edit(spec, spec.containers[0]);
  return r;
}
const sc = (c: Record<string, unknown>) =>
  c.securityContext as Record<string, unknown> & { capabilities: { add: string[]; drop: string[] } };

beforeAll(async () => {
  dev = await devResources();
}, 60_000);

describe("images-pinned-by-digest", () => {
  it("passes the dev site (its images are computed at pulumi up: nothing to check yet) and a pinned image", async () => {
    expect(await run(imagesPinnedByDigest(), dev)).toEqual([]);
    expect(await violations(imagesPinnedByDigest(), [kea()])).toEqual([]);
  });

  it("refuses a tag: it can be moved to other bytes after the review", async () => {
    expect(await violations(imagesPinnedByDigest(), [kea((_, c) => (c.image = "debian:bookworm"))])).toEqual([
      'DaemonSet router-system/kea-dhcp4: containers kea-dhcp4 runs image "debian:bookworm", which is not pinned by digest (allowed: an image reference ending in @sha256:<64 hex digits>)',
    ]);
  });

  it("refuses an image volume by tag, and passes one by digest", async () => {
    const withVolume = (reference: string) =>
      kea((spec) => (spec.volumes = [...((spec.volumes as unknown[]) ?? []), { name: "tools", image: { reference } }]));
    expect(await violations(imagesPinnedByDigest(), [withVolume("ghcr.io/siderolabs/talosctl:v1.14.1")])).toEqual([
      'DaemonSet router-system/kea-dhcp4: volume tools mounts image "ghcr.io/siderolabs/talosctl:v1.14.1", which is not pinned by digest (allowed: an image reference ending in @sha256:<64 hex digits>)',
    ]);
    expect(
      await violations(imagesPinnedByDigest(), [
        withVolume(`ghcr.io/siderolabs/talosctl:v1.14.1@sha256:${"c".repeat(64)}`),
      ]),
    ).toEqual([]);
  });

  it("refuses a Helm release whose values set an image without its digest", async () => {
    const cilium = structuredClone(named(dev, "lab-cilium-release"));
    (cilium.inputs.values as Record<string, unknown>).image = {
      repository: "quay.io/cilium/cilium",
      tag: "v1.20.0",
      useDigest: false,
    };
    expect(await violations(imagesPinnedByDigest(), [cilium])).toEqual([
      "Helm release cilium: values.image sets image quay.io/cilium/cilium:v1.20.0 without a digest in use, which is not pinned by digest (allowed: a reference ending in @sha256:<64 hex digits>, or repository/tag with digest sha256:… and useDigest not false)",
    ]);
  });
});

describe("no-privileged-pods", () => {
  it("passes the dev site's workloads", async () => {
    expect(await run(noPrivilegedPods(), dev)).toEqual([]);
  });

  it("refuses a privileged container, one that may escalate, a pod in the host's PID namespace, and one holding the default account's token", async () => {
    const bad = kea((spec, c) => {
      sc(c).privileged = true;
      delete sc(c).allowPrivilegeEscalation;
      spec.hostPID = true;
      delete spec.automountServiceAccountToken;
    });
    expect(await violations(noPrivilegedPods(), [bad])).toEqual([
      "DaemonSet router-system/kea-dhcp4: hostPID is true (allowed: false — the pod would see every process of the router — unless policies/resource/pods.ts lists the workload with its reason)",
      "DaemonSet router-system/kea-dhcp4: automountServiceAccountToken is not false, so the pod holds the namespace's default service-account token (allowed: false, or a serviceAccountName whose RBAC the workload needs)",
      "DaemonSet router-system/kea-dhcp4: containers kea-dhcp4 is privileged (allowed: privileged false, with the capabilities it needs)",
      "DaemonSet router-system/kea-dhcp4: containers kea-dhcp4 does not set allowPrivilegeEscalation: false (allowed: false)",
    ]);
  });
});

describe("capabilities-allow-list", () => {
  it("passes the dev site's workloads and Cilium's values", async () => {
    expect(await run(capabilitiesAllowList(), dev)).toEqual([]);
  });

  it("allows the bird pod NET_ADMIN and NET_RAW, and refuses it SYS_ADMIN (what FRR's daemons demanded)", async () => {
    const bird = (caps: string[]) => {
      const r = kea((_, c) => {
        c.name = "bird";
        sc(c).capabilities.add = caps;
      });
      (r.inputs.metadata as { name: string }).name = "bird";
      return r;
    };
    expect(await violations(capabilitiesAllowList(), [bird(["NET_ADMIN", "NET_RAW"])])).toEqual([]);
    expect(await violations(capabilitiesAllowList(), [bird(["NET_ADMIN", "NET_RAW", "SYS_ADMIN"])])).toEqual([
      "DaemonSet router-system/bird: containers bird adds SYS_ADMIN, beyond its allow-list (allowed for bird: NET_ADMIN, NET_RAW)",
    ]);
  });

  it("refuses a capability beyond the workload's row, a workload without a row, and a container keeping its defaults", async () => {
    // NET_ADMIN: what Kea DHCPv4 held before it was shown not to need it
    const extra = kea((_, c) => sc(c).capabilities.add.push("NET_ADMIN"));
    const unknown = kea((_, c) => {
      c.name = "telnetd";
      sc(c).capabilities = { add: ["NET_BIND_SERVICE"], drop: [] };
    });
    (unknown.inputs.metadata as { name: string }).name = "telnetd";
    expect(await violations(capabilitiesAllowList(), [extra, unknown])).toEqual([
      "DaemonSet router-system/kea-dhcp4: containers kea-dhcp4 adds NET_ADMIN, beyond its allow-list (allowed for kea-dhcp4: NET_BIND_SERVICE, NET_RAW)",
      "DaemonSet router-system/telnetd: containers telnetd does not drop ALL capabilities (allowed: drop [ALL], then add what the allow-list names)",
      "DaemonSet router-system/telnetd: containers telnetd adds NET_BIND_SERVICE, but workload telnetd has no row in the capability allow-list (policies/resource/pods.ts)",
    ]);
  });

  it("refuses SYS_MODULE in Cilium's agent capabilities", async () => {
    const cilium = structuredClone(named(dev, "lab-cilium-release"));
    const caps = (cilium.inputs.values as { securityContext: { capabilities: { ciliumAgent: string[] } } })
      .securityContext.capabilities;
    caps.ciliumAgent.push("SYS_MODULE");
    expect(await violations(capabilitiesAllowList(), [cilium])).toEqual([
      "Helm release cilium: values.securityContext.capabilities.ciliumAgent adds SYS_MODULE (allowed: CHOWN, KILL, NET_ADMIN, NET_RAW, IPC_LOCK, SYS_ADMIN, SYS_RESOURCE, DAC_OVERRIDE, FOWNER, SETGID, SETUID)",
    ]);
  });
});

describe("host-paths-under-state-dir", () => {
  it("passes the dev site (state under /var/lib/router)", async () => {
    expect(await run(hostPathsUnderStateDir(), dev)).toEqual([]);
  });

  it("refuses a host path outside the state directory, also one that climbs out with ..", async () => {
    const bad = kea((spec) => {
      (spec.volumes as unknown[]).push(
        { name: "etc", hostPath: { path: "/etc" } },
        { name: "sneaky", hostPath: { path: "/var/lib/router/../../../etc" } },
      );
    });
    expect(await violations(hostPathsUnderStateDir(), [bad])).toEqual([
      "DaemonSet router-system/kea-dhcp4: volume etc mounts the host path /etc (allowed: /var/lib/router or below, or a read-only path policies/resource/host-paths.ts lists for the workload)",
      "DaemonSet router-system/kea-dhcp4: volume sneaky mounts the host path /var/lib/router/../../../etc (allowed: /var/lib/router or below, or a read-only path policies/resource/host-paths.ts lists for the workload)",
    ]);
  });
});

describe("host-path and host-namespace exceptions", () => {
  const exporter = () => structuredClone(dev.find((r) => r.name.endsWith("-daemonset-node-exporter"))!);

  it("let the node exporter read the host's root and processes, read-only and listed with their reasons", async () => {
    expect(await violations(hostPathsUnderStateDir(), [exporter()])).toEqual([]);
    expect(await violations(noPrivilegedPods(), [exporter()])).toEqual([]);
  });

  it("refuse a listed host path mounted writable", async () => {
    const rw = exporter();
    const spec = (rw.inputs as unknown as Pod).spec.template.spec;
    const c = spec.containers[0] as { volumeMounts: { mountPath: string; readOnly?: boolean }[] };
    delete c.volumeMounts.find((m) => m.mountPath === "/host/root")!.readOnly;
    expect(await violations(hostPathsUnderStateDir(), [rw])).toEqual([
      "DaemonSet router-observability/node-exporter: volume v0 mounts the host path / writable at /host/root (allowed outside /var/lib/router: read-only mounts only)",
    ]);
  });
});

describe("no-secret-in-plain-input", () => {
  const pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI…\n-----END EC PRIVATE KEY-----\n";

  it("passes the dev site, and secret material where it is carried as a secret by design", async () => {
    expect(await run(noSecretInPlainInput(), dev)).toEqual([]);
    const apply = structuredClone(named(dev, "lab-node-apply"));
    apply.inputs.stdin = `key: ${pem}`;
    expect(await violations(noSecretInPlainInput(), [apply])).toEqual([]);
  });

  it("recognises keys, armoured keys, kubeconfig client keys and bootstrap tokens, and not ordinary values", () => {
    expect(secretMaterial(pem)).toBe("a PEM private key");
    expect(secretMaterial(`data: ${Buffer.from(pem).toString("base64")}`)).toBe("a base64-encoded PEM private key");
    expect(secretMaterial(`client-key-data: ${"QUJD".repeat(8)}`)).toBe("a kubeconfig client key");
    expect(secretMaterial("token: abc123.0123456789abcdef")).toBe("a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})");
    expect(secretMaterial(Buffer.from("-----BEGIN CERTIFICATE-----\nMIIB\n").toString("base64"))).toBeUndefined();
    expect(secretMaterial("lab-rtr1.lab.home.arpa 10.50.0.10 [secret:certs.os.key]")).toBeUndefined();
  });

  it("refuses a key in a configuration layer, an armoured key in a ConfigMap and a token in a script", async () => {
    const layer = structuredClone(named(dev, "lab-node-layer-node"));
    const docs = layer.inputs.documents as Record<string, { issuingCA: { key: string } }>;
    docs["KubeAPIServerCAConfig/"].issuingCA.key = pem;
    const cm = resource("kubernetes:core/v1:ConfigMap", "leaky", {
      data: { "tls.key": Buffer.from(pem).toString("base64") },
    });
    const cmd = resource("command:local:Command", "bootstrap", {
      create: "kubeadm join --token abc123.0123456789abcdef",
      stdin: pem,
    });
    expect(await violations(noSecretInPlainInput(), [layer, cm, cmd])).toEqual([
      "router:talos:ConfigLayer lab-node-layer-node: input documents.KubeAPIServerCAConfig/.issuingCA.key holds a PEM private key in plain (allowed: secrets only as Pulumi secrets in a command's stdin or environment, placeholders everywhere else)",
      "kubernetes:core/v1:ConfigMap leaky: input data.tls.key holds a base64-encoded PEM private key in plain (allowed: secrets only as Pulumi secrets in a command's stdin or environment, placeholders everywhere else)",
      "command:local:Command bootstrap: input create holds a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16}) in plain (allowed: secrets only as Pulumi secrets in stdin, environment, placeholders everywhere else)",
    ]);
  });
});

describe("talos-changes-through-try", () => {
  it("passes the dev site: install in maintenance mode once, later changes tried then confirmed", async () => {
    expect(await run(talosChangesThroughTry(), dev)).toEqual([]);
    const install = applyInvocations(String(named(dev, "lab-node-install").inputs.create));
    expect(install.map((a) => a.insecure)).toEqual([true]);
    expect(applyInvocations(String(named(dev, "lab-node-apply").inputs.update)).map((a) => a.mode)).toEqual([
      "try",
      "no-reboot",
    ]);
  });

  it("refuses an update that applies without trying, or confirms before trying", async () => {
    const apply = structuredClone(named(dev, "lab-node-apply"));
    const update = String(apply.inputs.update);
    const noTry = structuredClone(apply);
    noTry.inputs.update = update.replace("apply-config --mode=try", "apply-config --mode=reboot");
    const auto = structuredClone(apply);
    auto.name = "lab-node-apply-auto";
    auto.inputs.update = 'talos "$CHECK_MS" apply-config --file /dev/fd/7';
    expect(await violations(talosChangesThroughTry(), [noTry, auto])).toEqual([
      "command lab-node-apply: its update applies with --mode=reboot (allowed: --mode=try, then --mode=no-reboot to confirm)",
      "command lab-node-apply: its update applies with --mode=no-reboot before any --mode=try (allowed: --mode=try, then --mode=no-reboot to confirm)",
      "command lab-node-apply-auto: its update applies with no --mode (auto: may reboot) (allowed: --mode=try, then --mode=no-reboot to confirm)",
    ]);
  });

  it("refuses an install that would re-run on a configuration change, and an apply at create", async () => {
    const install = structuredClone(named(dev, "lab-node-install"));
    delete install.ignoreChanges;
    const create = resource("command:local:Command", "lab-node-direct", {
      create: "talosctl apply-config --nodes 10.10.0.1 --file cfg.yaml",
    });
    expect(await violations(talosChangesThroughTry(), [install, create])).toEqual([
      'command lab-node-install: the maintenance-mode install does not ignore changes of its stdin, so a later configuration change would re-run it (allowed: ignoreChanges ["stdin"], changes go through the try/confirm apply)',
      "command lab-node-direct: its create applies a configuration to a running node without the try path (talosctl apply-config --nodes 10.10.0.1 --file cfg.yaml) (allowed at create: only the maintenance-mode install with --insecure)",
    ]);
  });
});
