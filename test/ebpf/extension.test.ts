/**
 * The Talos system extension image built by `make -C ebpf`: checked against Talos' extension rules
 * (layout, allowed rootfs paths, file modes, manifest, extension-service spec), run from its own
 * container rootfs, and rebuilt twice from clean trees to the same digest.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { parseDocument, parse as parseYaml, isMap, isSeq, type YAMLMap } from "yaml";
import { tier } from "../helpers/tier";
import { BUILD_COMMANDS, EBPF, FIXTURES, buildEbpf, jsonLines, tempDir } from "./lib";

const t = tier("ebpf-extension", { root: true, commands: [...BUILD_COMMANDS, "buildah", "jq", "chroot", "tar"] });

/** Talos' AllowedPaths for extension rootfs content (pkg/machinery/extensions). */
const ALLOWED = [
  "/etc/cri/conf.d",
  "/usr/lib/firmware",
  "/usr/lib/modules",
  "/usr/lib/udev/rules.d",
  "/usr/local",
  "/usr/lib/ld-linux-x86-64.so.2",
  "/usr/lib/ld-linux-aarch64.so.1",
  "/usr/bin/ldconfig",
  "/etc/ld.so.conf",
  "/etc/ld.so.cache",
  "/usr/share/glvnd",
  "/usr/share/egl",
  "/etc/vulkan",
  "/usr/bin/nvidia-modprobe",
  "/usr/bin/nvidia-pcc",
  "/usr/bin/nvidia-smi",
  "/usr/bin/nvidia-ctk",
  "/usr/bin/nvidia-cdi-hook",
  "/usr/bin/nvme",
];
const NAME = "router-dataplane";

interface TarEntry {
  path: string;
  mode: number;
  type: string; // '0' file, '5' dir, '2' symlink, '1' hard link, '3'/'4' devices, '6' fifo
  data: Buffer;
}

/** Reads a tar archive (ustar with PAX and GNU long-name records). */
function readTar(buf: Buffer): TarEntry[] {
  const out: TarEntry[] = [];
  let off = 0;
  let longName: string | undefined;
  const str = (b: Buffer) => b.toString("utf8").replace(/\0.*$/s, "");
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const size = parseInt(str(h.subarray(124, 136)).trim() || "0", 8);
    const type = String.fromCharCode(h[156] || 48);
    const data = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === "x") {
      const m = data.toString("utf8").match(/\d+ path=([^\n]*)\n/);
      if (m) longName = m[1];
      continue;
    }
    if (type === "L") {
      longName = str(data);
      continue;
    }
    const prefix = str(h.subarray(345, 500));
    const name = longName ?? (prefix ? `${prefix}/${str(h.subarray(0, 100))}` : str(h.subarray(0, 100)));
    longName = undefined;
    out.push({
      path: name.replace(/^\.\//, "").replace(/\/$/, ""),
      mode: parseInt(str(h.subarray(100, 108)).trim(), 8),
      type,
      data,
    });
  }
  return out;
}

/** Layers of the image in ebpf/out/oci (the single manifest in index.json). */
function imageEntries(oci: string): { digest: string; entries: TarEntry[] } {
  const index = JSON.parse(readFileSync(join(oci, "index.json"), "utf8"));
  expect(index.manifests).toHaveLength(1);
  const digest: string = index.manifests[0].digest;
  const blob = (d: string) => readFileSync(join(oci, "blobs", ...d.split(":")));
  const manifest = JSON.parse(blob(digest).toString("utf8"));
  const entries: TarEntry[] = [];
  for (const layer of manifest.layers) {
    const raw = blob(layer.digest);
    entries.push(...readTar(layer.mediaType.endsWith("gzip") ? gunzipSync(raw) : raw));
  }
  return { digest, entries };
}

/** A blang/semver range ("op version" terms; space = and, || = or) and whether v satisfies it. */
function semverRange(range: string): ((v: [number, number, number]) => boolean) | null {
  const cmp = (a: number[], b: number[]) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
  const alternatives = range.split("||").map((alt) =>
    alt
      .trim()
      .split(/\s+/)
      .join(" ")
      .replace(/(>=|<=|!=|==|>|<|=)\s+/g, "$1")
      .split(" ")
      .map((term) => term.match(/^(>=|<=|!=|==|>|<|=)?v?(\d+)\.(\d+)\.(\d+)$/)),
  );
  if (alternatives.some((a) => a.some((m) => !m))) return null;
  return (v) =>
    alternatives.some((a) =>
      a.every((m) => {
        const c = cmp(v, [Number(m![2]), Number(m![3]), Number(m![4])]);
        switch (m![1] ?? "=") {
          case ">=":
            return c >= 0;
          case "<=":
            return c <= 0;
          case ">":
            return c > 0;
          case "<":
            return c < 0;
          case "!=":
            return c !== 0;
          default:
            return c === 0;
        }
      }),
    );
}

describe.skipIf(!t.ok)("router-dataplane Talos extension image", () => {
  let entries: TarEntry[] = [];
  let root = "";

  beforeAll(() => {
    buildEbpf("all");
    entries = imageEntries(join(EBPF, "out/oci")).entries;
    root = tempDir("dp-ext-");
    const layer = join(root, "layer.tar");
    const index = JSON.parse(readFileSync(join(EBPF, "out/oci/index.json"), "utf8"));
    const manifest = JSON.parse(
      readFileSync(join(EBPF, "out/oci/blobs", ...index.manifests[0].digest.split(":")), "utf8"),
    );
    writeFileSync(layer, readFileSync(join(EBPF, "out/oci/blobs", ...manifest.layers[0].digest.split(":"))));
    mkdirSync(join(root, "x"));
    const r = spawnSync("tar", ["-xf", layer, "-C", join(root, "x")]);
    if (r.status !== 0) throw new Error(`cannot unpack the layer: ${r.stderr}`);
  }, 900_000);
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const file = (p: string) => entries.find((e) => e.path === p);

  it("has only manifest.yaml and rootfs/ at the top", () => {
    const top = new Set(entries.map((e) => e.path.split("/")[0]));
    expect([...top].sort()).toEqual(["manifest.yaml", "rootfs"]);
    expect(file("manifest.yaml")?.type).toBe("0");
    expect(file("rootfs")?.type).toBe("5");
  });

  it("puts every file under a path Talos allows in an extension rootfs", () => {
    const outside = entries
      .filter((e) => e.path.startsWith("rootfs/") && e.type !== "5")
      .map((e) => e.path.slice("rootfs".length))
      .filter((p) => !ALLOWED.some((a) => p === a || p.startsWith(`${a}/`)));
    expect(outside).toEqual([]);
  });

  it("contains no world-writable, setuid/setgid or special files (a writable or setuid file in the host rootfs is a privilege escalation)", () => {
    const bad = entries.filter(
      (e) => (e.mode & 0o002) !== 0 || (e.mode & 0o6000) !== 0 || ["3", "4", "6"].includes(e.type),
    );
    expect(bad.map((e) => `${e.path} ${e.mode.toString(8)} type ${e.type}`)).toEqual([]);
  });

  it("has a valid manifest: v1alpha1, name, semver version, author, description and a Talos range that admits 1.14 only", () => {
    const m = parseYaml(file("manifest.yaml")!.data.toString("utf8"));
    expect(Object.keys(m).sort()).toEqual(["metadata", "version"]);
    expect(m.version).toBe("v1alpha1");
    expect(
      Object.keys(m.metadata).every((k) =>
        ["name", "version", "author", "description", "compatibility", "extraInfo"].includes(k),
      ),
    ).toBe(true);
    expect(m.metadata.name).toBe(NAME);
    expect(m.metadata.version).toMatch(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
    expect(m.metadata.author.trim()).not.toBe("");
    expect(m.metadata.description.trim()).not.toBe("");
    const range = semverRange(m.metadata.compatibility.talos.version);
    expect(range).not.toBeNull();
    expect(range!([1, 14, 0])).toBe(true);
    expect(range!([1, 14, 6])).toBe(true);
    expect(range!([1, 13, 9])).toBe(false);
    // the range parser itself rejects garbage
    expect(semverRange(">= banana")).toBeNull();
  });

  it("declares a valid extension service whose entrypoint exists and is executable in its container rootfs", () => {
    const specs = entries.filter((e) => /^rootfs\/usr\/local\/etc\/containers\/[^/]+\.yaml$/.test(e.path));
    expect(specs.map((s) => s.path)).toEqual([`rootfs/usr/local/etc/containers/${NAME}.yaml`]);
    const spec = parseYaml(specs[0].data.toString("utf8"));
    expect(
      Object.keys(spec).every((k) => ["name", "container", "depends", "restart", "logToConsole"].includes(k)),
    ).toBe(true);
    expect(spec.name).toMatch(/^[-_a-z0-9]+$/);
    expect(spec.name).toBe(NAME);
    expect(["always", "never", "untilSuccess"]).toContain(spec.restart);
    expect(spec.restart).toBe("always");
    // each dependency sets exactly one kind
    const kinds = ["service", "path", "network", "time", "configuration"];
    for (const dep of spec.depends) {
      expect(Object.keys(dep).filter((k) => kinds.includes(k))).toHaveLength(1);
      expect(Object.keys(dep).every((k) => kinds.includes(k))).toBe(true);
      if (dep.network)
        for (const n of dep.network) expect(["addresses", "connectivity", "hostname", "etcfiles"]).toContain(n);
      if (dep.path) expect(dep.path.startsWith("/")).toBe(true);
    }
    expect(spec.depends).toEqual([{ network: ["addresses", "etcfiles"] }, { configuration: true }]);
    expect(spec.container.args).toEqual(["--config", "/usr/local/etc/router-dataplane/dataplane.conf"]);
    expect(spec.container.security.writeableRootfs).toBe(false);
    const entry = file(`rootfs/usr/local/lib/containers/${NAME}${spec.container.entrypoint}`);
    expect(entry?.type).toBe("0");
    expect(entry!.mode & 0o111).toBe(0o111);
  });

  it("gives every mount of the service a comment with its reason, and mounts only bpffs, the state directory and the host's resolv.conf (read-only)", () => {
    const text = file(`rootfs/usr/local/etc/containers/${NAME}.yaml`)!.data.toString("utf8");
    const doc = parseDocument(text);
    const mounts = (doc.get("container") as YAMLMap).get("mounts");
    expect(isSeq(mounts)).toBe(true);
    const items = isSeq(mounts) ? mounts.items : [];
    expect(items.length).toBe(3);
    items.forEach((item, i) => {
      expect(isMap(item)).toBe(true);
      // the yaml library hangs the first item's comment on the sequence itself
      const comment = (item as YAMLMap).commentBefore ?? (i === 0 && isSeq(mounts) ? mounts.commentBefore : undefined);
      expect(comment?.trim() ?? "").not.toBe("");
    });
    const spec = parseYaml(text);
    expect(spec.container.mounts.map((m: { destination: string }) => m.destination)).toEqual([
      "/sys/fs/bpf",
      "/var/lib/router-dataplane",
      "/etc/resolv.conf",
    ]);
    expect(spec.container.mounts[2].options).toContain("ro");
    // a read-only rootfs cannot grow a mount point: the image carries an empty one
    expect(file(`rootfs/usr/local/lib/containers/${NAME}/etc/resolv.conf`)?.type).toBe("0");
  });

  it("ships the CA bundle at the path libcurl was built to read, for the feed downloads", () => {
    const ca = spawnSync("curl-config", ["--ca"], { encoding: "utf8" }).stdout.trim();
    expect(ca).toMatch(/^\//);
    const bundle = file(`rootfs/usr/local/lib/containers/${NAME}${ca}`);
    expect(bundle?.type).toBe("0");
    expect(bundle!.data.toString("utf8")).toMatch(/-----BEGIN CERTIFICATE-----/);
  });

  it("runs the loader, the list fetcher beside it and nft from the container rootfs alone (libraries and dynamic loader are all shipped)", () => {
    const ctr = join(root, "x/rootfs/usr/local/lib/containers", NAME);
    const help = spawnSync("chroot", [ctr, "/usr/bin/router-dataplane", "--help"], { encoding: "utf8" });
    expect(help.stdout).toContain("usage: router-dataplane --config FILE");
    expect(help.status).toBe(0);
    // the loader runs router-fetch from its own directory
    const fetcher = file(`rootfs/usr/local/lib/containers/${NAME}/usr/bin/router-fetch`);
    expect(fetcher?.type).toBe("0");
    expect(fetcher!.mode & 0o7777).toBe(0o755);
    const fetchHelp = spawnSync("chroot", [ctr, "/usr/bin/router-fetch", "--help"], { encoding: "utf8" });
    expect(fetchHelp.stdout).toContain("usage: router-fetch --url URL|- --kind cidr|geo|domains --out FILE");
    expect(fetchHelp.status).toBe(0);
    const nft = spawnSync("chroot", [ctr, "/usr/sbin/nft", "--version"], { encoding: "utf8" });
    expect(nft.stdout).toMatch(/^nftables v1\.0\.6/);

    // --check exercises libbpf, libinih and libnftables from the shipped copies
    mkdirSync(join(ctr, "tmp"), { recursive: true });
    mkdirSync(join(ctr, "cfg"), { recursive: true });
    copyFileSync(join(FIXTURES, "router.nft"), join(ctr, "cfg/router.nft"));
    copyFileSync(join(FIXTURES, "tables/block.txt"), join(ctr, "cfg/block.txt"));
    writeFileSync(
      join(ctr, "cfg/dataplane.conf"),
      "[global]\nnft_ruleset = /cfg/router.nft\n[interface wan0]\nrole = wan\n[tables]\nblock = /cfg/block.txt\n",
    );
    const check = spawnSync(
      "chroot",
      [ctr, "/usr/bin/router-dataplane", "--config", "/cfg/dataplane.conf", "--check"],
      {
        encoding: "utf8",
      },
    );
    expect(
      jsonLines<{ event: string }>(check.stderr).map((l) => l.event),
      check.stderr,
    ).toContain("check_ok");
    expect(check.status).toBe(0);
  });

  it("builds to the same image digest from two clean trees", () => {
    const digests: string[] = [];
    const dirs: string[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const d = tempDir(`dp-repro${i}-`);
        dirs.push(d);
        buildEbpf("image", { BUILD: join(d, "build"), OUT: join(d, "out") });
        digests.push(readFileSync(join(d, "out/image-digest"), "utf8").trim());
      }
    } finally {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
    console.log(`image digests: ${digests.join(" ")}`);
    expect(digests[0]).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(digests[1]).toBe(digests[0]);
  }, 900_000);
});
