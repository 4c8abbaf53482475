/**
 * Runs a container of one of the stack's rendered DaemonSets the way a node runs it, without a container runtime:
 * its image's root filesystem as the root (a private overlay over the image's rootfs, so nothing of the image or
 * the host changes), its volumes at their mount paths (ConfigMap and Secret items as files, hostPath directories
 * under the test's node directory, emptyDirs fresh), the host's /dev and a /proc, its command and environment,
 * and the network namespace given (the stack's pods are hostNetwork). Capabilities are not reduced: the test runs
 * as root. The kubelet's behaviour modelled here is what kubernetes' pkg/kubelet/kuberuntime does for a container
 * (command + args as argv, env as given, volume mounts read-only where the mount says so).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import type { IVolume } from "kubernetes-models/v1/Volume";
import { q } from "../../../components/images";

/** An image's root filesystem and the environment its configuration sets (PATH). */
export interface ImageRoot {
  rootfs: string;
  env: Record<string, string>;
  /** Files to place into the root (host path → path in the container), e.g. a binary standing for an upstream image's. */
  binds?: [string, string][];
}

export interface PodFiles {
  /** ConfigMap name → key → content (the rendered objects). */
  configMaps: Map<string, Record<string, string>>;
  /** Secret name → key → content. */
  secrets?: Map<string, Record<string, string>>;
  /** Directory standing for the node's root: hostPath volumes are its subdirectories. */
  node: string;
}

/** Environment of an OCI image layout's only image (its config's Env). */
export function ociEnv(layout: string): Record<string, string> {
  const blob = (digest: string) => JSON.parse(readFileSync(join(layout, "blobs", ...digest.split(":")), "utf8"));
  const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] };
  const manifest = blob(index.manifests[0].digest) as { config: { digest: string } };
  const config = blob(manifest.config.digest) as { config?: { Env?: string[] } };
  return Object.fromEntries(
    (config.config?.Env ?? []).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
  );
}

function items(data: Record<string, string> | undefined, what: string, list?: { key: string; path: string }[]) {
  if (!data) throw new Error(`${what} is not rendered`);
  return (list ?? Object.keys(data).map((key) => ({ key, path: key }))).map(({ key, path }) => {
    if (data[key] === undefined) throw new Error(`${what} has no key ${key}`);
    return { path, content: data[key] };
  });
}

/** The host directory holding a volume's content (written now for ConfigMaps, Secrets and emptyDirs). */
function volumeSource(v: IVolume, files: PodFiles, scratch: string): string {
  if (v.hostPath) {
    const p = join(files.node, v.hostPath.path);
    mkdirSync(p, { recursive: true });
    return p;
  }
  const dir = join(scratch, "volumes", v.name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const content = v.configMap
    ? items(files.configMaps.get(v.configMap.name!), `ConfigMap ${v.configMap.name}`, v.configMap.items)
    : v.secret
      ? items(files.secrets?.get(v.secret.secretName!), `Secret ${v.secret.secretName}`, v.secret.items)
      : [];
  for (const f of content) {
    mkdirSync(dirname(join(dir, f.path)), { recursive: true });
    writeFileSync(join(dir, f.path), f.content, { mode: v.secret ? 0o400 : 0o644 });
  }
  return dir;
}

/**
 * argv that runs `container` of `ds` as its pod would: to be run in the pod's network namespace. `scratch` is
 * the container's own work directory (overlay layers, volume contents).
 */
export function podArgv(
  ds: IDaemonSet,
  container: string,
  image: ImageRoot,
  files: PodFiles,
  scratch: string,
): string[] {
  const spec = ds.spec!.template.spec!;
  const c: IContainer | undefined = spec.containers.find((x) => x.name === container);
  if (!c) throw new Error(`DaemonSet ${ds.metadata?.name} has no container ${container}`);
  const root = join(scratch, "root");
  for (const d of ["root", "upper", "work"]) mkdirSync(join(scratch, d), { recursive: true });
  const lines = [
    "set -e",
    `mount -t overlay overlay -o lowerdir=${q(image.rootfs)},upperdir=${q(join(scratch, "upper"))},workdir=${q(join(scratch, "work"))} ${q(root)}`,
    `mkdir -p ${q(`${root}/dev`)} ${q(`${root}/proc`)} ${q(`${root}/tmp`)}`,
    `mount --rbind /dev ${q(`${root}/dev`)}`,
    `mount -t proc proc ${q(`${root}/proc`)}`,
  ];
  for (const [src, dst] of image.binds ?? [])
    lines.push(
      `mkdir -p ${q(dirname(root + dst))}`,
      `touch ${q(root + dst)}`,
      `mount --bind ${q(src)} ${q(root + dst)}`,
    );
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  for (const m of c.volumeMounts ?? []) {
    const v = volumes.get(m.name);
    if (!v) throw new Error(`DaemonSet ${ds.metadata?.name}: volume ${m.name} is not defined`);
    const dst = root + m.mountPath;
    lines.push(`mkdir -p ${q(dst)}`, `mount --bind ${q(volumeSource(v, files, scratch))} ${q(dst)}`);
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${q(dst)}`);
  }
  const env = { ...image.env, ...Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? ""])) };
  const argv = [...(c.command ?? []), ...(c.args ?? [])];
  if (!argv.length) throw new Error(`container ${container} has no command (the image's entrypoint is not modelled)`);
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  // chroot is the host's (the image's PATH need not hold one); the command is looked up in the new root.
  lines.push('chroot_bin="$(command -v chroot)"');
  lines.push(`exec env -i ${envArgs.map(q).join(" ")} "$chroot_bin" ${[root, ...argv].map(q).join(" ")}`);
  return ["unshare", "-m", "--propagation", "private", "sh", "-c", lines.join("\n")];
}
