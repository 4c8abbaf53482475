/**
 * The DNS image (images/dns/build-image.sh) carries the rollout gate's DoT/DoH probe tool: kdig runs from the
 * image's own root with the libraries the image carries (GnuTLS for DoT, nghttp2 for DoH), in an empty network
 * namespace where nothing listens, so each query fails at the connection and never for want of a library or of
 * DoH support, and the probe's TLS half (components/dns-stack/probe.ts) reads its reason from that output.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { tier } from "../helpers/tier";
import { tempDir } from "../helpers/temp";
import { DNS_IMAGE_DIR } from "./lib/fixtures";
import { DOH_PORT, DOT_PORT } from "../../components/dns-stack/probe";

const t = tier("DNS image", {
  root: true,
  commands: [
    ...["buildah", "jq", "chroot", "unshare", "make", "gcc", "dnsdist", "unbound", "knotd", "kea-dhcp-ddns"],
    ...["cdb", "socat", "busybox", "kdig"],
  ],
});

describe.skipIf(!t.ok)("the DNS image", () => {
  let rootfs: string;
  beforeAll(() => {
    const dir = tempDir("dns-image-");
    const r = spawnSync("make", ["-C", DNS_IMAGE_DIR, `BUILD=${join(dir, "build")}`, `OUT=${join(dir, "out")}`], {
      encoding: "utf8",
      timeout: 300_000,
    });
    if (r.status !== 0) throw new Error(`make -C images/dns failed: ${r.stderr}`);
    rootfs = join(dir, "build", "stage", "rootfs");
  }, 600_000);

  /** Runs a shell command in the image's root, in an empty network namespace of its own (its loopback down). */
  const inImage = (script: string) =>
    spawnSync("unshare", ["-n", "chroot", rootfs, "/bin/sh", "-c", script], {
      encoding: "utf8",
      timeout: 20_000,
    });

  it("runs kdig from its own root", () => {
    const r = inImage("kdig --version");
    expect(`${r.stdout}${r.stderr}`).toMatch(/^kdig \(Knot DNS\), version 3\./m);
  });

  it.each([
    ["DoT", `+tls -p ${DOT_PORT} +tls-hostname=router.example`, DOT_PORT],
    ["DoH", `+https=/dns-query -p ${DOH_PORT}`, DOH_PORT],
  ])("asks over %s with the image's CA bundle, failing only at the connection", (_p, how, port) => {
    const r = inImage(
      `kdig @127.0.0.1 ${how} +tls-ca=/etc/ssl/certs/ca-certificates.crt +timeout=1 +retry=0 +short router.example a`,
    );
    const out = `${r.stdout}${r.stderr}`;
    expect(out).toContain(`;; WARNING: can't connect to 127.0.0.1@${port}(TCP)`);
    expect(out).not.toMatch(/not (compiled|supported)|invalid|error while loading shared libraries/i);
  });
});
