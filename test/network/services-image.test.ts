/**
 * The network-services image: built from Debian packages into an OCI layout with a reproducible digest, and
 * self-contained — every daemon starts from the image's own root with the libraries it carries.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { tier } from "../helpers/tier";
import { ROOT } from "../helpers/stacks";
import { tempDir } from "../helpers/temp";
import { segmentProbeScript } from "../../components/network-services/probe";
import { OSPF_KEY_FILE, renderBird, renderOspfKeyFile } from "../../components/network-services/bird";
import { BIRD_RUN_DIR, OSPF_STATUS_INTERVAL, renderServiceObjects } from "../../components/network-services/k8s";
import { devSite } from "../helpers/dev-site";

const t = tier("services-image", {
  root: true,
  commands: [
    ...[
      "buildah",
      "jq",
      "chroot",
      "kea-dhcp4",
      "radvd",
      "chronyd",
      "avahi-daemon",
      "bird",
      "birdc",
      "socat",
      "busybox",
    ],
    ...["rdisc6", "gcc", "unshare"],
  ],
});

function build(stage: string, out: string): string {
  const r = spawnSync(join(ROOT, "images/services/build-image.sh"), [stage, out], {
    encoding: "utf8",
    timeout: 300_000,
  });
  if (r.status !== 0) throw new Error(`build-image.sh failed: ${r.stderr}`);
  return readFileSync(join(out, "image-digest"), "utf8").trim();
}

describe.skipIf(!t.ok)("the services image", () => {
  let a: { stage: string; digest: string };
  let bDigest: string;
  beforeAll(() => {
    const dirA = tempDir("svc-a-");
    const dirB = tempDir("svc-b-");
    a = { stage: join(dirA, "build"), digest: build(join(dirA, "build"), join(dirA, "out")) };
    bDigest = build(join(dirB, "build"), join(dirB, "out"));
  }, 600_000);

  it("has the same digest from two clean builds", () => {
    expect(a.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(bDigest).toBe(a.digest);
  });

  it.each([
    ["kea-dhcp4", ["kea-dhcp4", "-V"], /^2\./],
    ["kea-dhcp6", ["kea-dhcp6", "-V"], /^2\./],
    ["chronyd", ["chronyd", "-v"], /chronyd \(chrony\)/],
    ["avahi-daemon", ["avahi-daemon", "-V"], /avahi-daemon/],
    ["bird", ["bird", "--version"], /BIRD version 2\./],
    ["birdc", ["birdc", "-h"], /Usage: birdc/],
    ["socat (Kea probes)", ["socat", "-V"], /socat version/],
    ["the probe shell", ["/bin/sh", "-c", "printf ok | grep -q ok && echo probe-ok"], /probe-ok/],
    ["dhcp4-probe (segment probe)", ["dhcp4-probe"], /usage: dhcp4-probe LINK IPV4-CIDR TIMEOUT_MS/],
    ["dhcp6-probe (segment probe)", ["dhcp6-probe"], /usage: dhcp6-probe LINK IPV6-START-END TIMEOUT_MS/],
    ["rdisc6 (segment probe)", ["rdisc6", "-V"], /Router Discovery userland tool/],
  ])("runs %s from its own root", (_name, cmd, expected) => {
    const r = spawnSync("chroot", [join(a.stage, "rootfs"), ...cmd], { encoding: "utf8" });
    expect(r.error).toBeUndefined();
    expect(`${r.stdout}${r.stderr}`).toMatch(expected);
  });

  // Each daemon looks up the user or group it runs as by name at start: a name missing from the image's own
  // /etc/passwd or /etc/group stops it there (the host's files have them, so only the image's root shows this).
  it.each([
    ["chronyd", "printf 'port 0\\ncmdport 0\\n' > /tmp/c.conf && exec chronyd -d -x -f /tmp/c.conf", /_chrony/],
    [
      "avahi-daemon",
      "printf '[server]\\nenable-dbus=no\\n' > /tmp/a.conf && exec avahi-daemon --no-drop-root --no-chroot --no-rlimits -f /tmp/a.conf",
      /find user 'avahi'/,
    ],
  ])("starts %s far enough to find its user and group", (_name, script, lookupError) => {
    const r = spawnSync("timeout", ["3", "unshare", "-n", "chroot", join(a.stage, "rootfs"), "/bin/sh", "-c", script], {
      encoding: "utf8",
    });
    expect(`${r.stdout}${r.stderr}`).not.toMatch(lookupError);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/could not (get|look ?up)|failed to find (user|group)/i);
  });

  // The bird pod's command and liveness probe (components/network-services/k8s.ts) from the image's own root: BIRD
  // runs the rendered configuration and birdc reaches it through the control socket in its run directory; the
  // pod's status container, with the image's own busybox tools, writes what BIRD says of its OSPF neighbours.
  // With OSPF authentication: bird-start copies the Secret's key file to where bird.conf includes it, and the
  // status container, which watches the Secret's file, gives BIRD the new keys when they change.
  it("runs BIRD on a rendered configuration, answers its liveness probe, writes the OSPF status and takes a new key", () => {
    const dev = devSite((raw) => {
      raw.routing = {
        ospf: { routerId: "10.10.0.1", segments: ["servers"], redistribute: ["connected"], authentication: {} },
      };
      raw.ospfKey = "the first key of the area";
    });
    const conf = renderBird(dev.site, dev.plan)!;
    const live = [...renderServiceObjects(dev.site, dev.plan, dev.policy, "img")].find(
      (o) => o.kind === "DaemonSet" && o.metadata.name === "bird",
    ) as {
      spec: {
        template: {
          spec: {
            containers: {
              command: string[];
              livenessProbe: { exec: { command: string[] } };
              volumeMounts: { name: string; mountPath: string }[];
            }[];
          };
        };
      };
    };
    const [c, status] = live.spec.template.spec.containers;
    const statusMount = status.volumeMounts.find((m) => m.name === "status")!.mountPath;
    const root = join(a.stage, "rootfs");
    writeFileSync(join(root, "tmp/bird.conf"), conf);
    // the Secret's volume: the key file bird-start copies to where bird.conf includes it
    const keyFile = join(root, OSPF_KEY_FILE.slice(1));
    mkdirSync(dirname(keyFile), { recursive: true });
    const auth = dev.site.routing.ospf!.authentication!;
    writeFileSync(keyFile, renderOspfKeyFile(auth, "the first key of the area"), { mode: 0o400 });
    // the runtime gives a container /dev; the chroot gets the host's, in a mount namespace of its own
    mkdirSync(join(root, "dev"), { recursive: true });
    mkdirSync(join(root, "proc"), { recursive: true });
    const cmd = c.command.map((x) => (x.endsWith("/bird.conf") ? "/tmp/bird.conf" : x)).join(" ");
    // a route the previous BIRD left: the pod's bird-start holds it with the image's own ip and flushes it after
    // its grace (1 s here, so that nothing outlives the test)
    const script = [
      `mkdir -p ${BIRD_RUN_DIR}`,
      "ip link set lo up",
      "ip route add 10.99.0.0/24 dev lo proto bird metric 20",
      `BIRD_RESTART_GRACE=1 ${cmd} &`,
      "bird=$!",
      "busybox sleep 2",
      c.livenessProbe.exec.command.join(" "),
      `mkdir -p ${statusMount}`,
      `${status.command.join(" ")} &`,
      "busybox sleep 1",
      `cat ${statusMount}/ospf.json`,
      "kill $!",
      // the container restarted (as a new bird pod's): it keeps what the last one wrote, then writes its own
      "busybox sleep 1",
      `${status.command.join(" ")} &`,
      "busybox sleep 1",
      `echo "previous: $(cat ${statusMount}/ospf.previous.json)"`,
      `echo "current: $(cat ${statusMount}/ospf.json)"`,
      // a new key (the kubelet replaces the Secret's file): read by BIRD within the status interval
      `echo '${renderOspfKeyFile(auth, "the second key of the area").trim()}' > ${OSPF_KEY_FILE}.new && mv ${OSPF_KEY_FILE}.new ${OSPF_KEY_FILE}`,
      `busybox sleep ${OSPF_STATUS_INTERVAL + 1}`,
      `echo "keys: $(cat ${statusMount}/ospf.json)"`,
      "kill $!",
      "ip route show table main",
      "kill $bird",
    ].join("\n");
    const r = spawnSync(
      "timeout",
      [
        "30",
        "unshare",
        "-n",
        "-m",
        "sh",
        "-c",
        'mount --rbind /dev "$0/dev" && mount -t proc proc "$0/proc" && exec chroot "$0" /bin/sh -c "$1"',
        root,
        script,
      ],
      { encoding: "utf8" },
    );
    expect(r.stdout, r.stderr).toMatch(/Daemon is up and running/);
    expect(r.stdout, r.stderr).toMatch(/holding 10\.99\.0\.0\/24 \(protocol bird\)/);
    expect(r.stdout, r.stderr).toMatch(/stale routes flushed after 1s/);
    expect(r.stdout, r.stderr).not.toMatch(/^10\.99\.0\.0/m);
    // OSPF runs (on no link of this namespace): readable, no neighbour, stamped with the node's uptime
    const line = r.stdout.split("\n").find((l) => l.startsWith('{"uptime"'));
    const first = JSON.parse(line ?? "null");
    expect(first, r.stdout + r.stderr).toEqual({
      uptime: expect.any(Number),
      since: expect.any(Number),
      boot: readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim(),
      keys: "in-use",
      keysAt: null,
      readable: true,
      neighbours: [],
    });
    expect(first.since).toBeLessThanOrEqual(first.uptime);
    // the restarted container kept the first one's last status, and its own started after that one was written
    const after = (what: string) =>
      JSON.parse(
        r.stdout
          .split("\n")
          .find((l) => l.startsWith(`${what}: `))!
          .slice(what.length + 2),
      );
    expect(after("previous"), r.stdout).toEqual(first);
    expect(after("current").since, r.stdout).toBeGreaterThan(first.uptime);
    // bird-start gave BIRD the Secret's keys; the second container gave it the new ones (confirmed at once: no
    // neighbour to hold), and no key was ever printed
    expect(r.stdout, r.stderr).toMatch(/bird-start: OSPF keys from \/etc\/router-secrets\/ospf-keys\.conf/);
    expect(r.stderr, r.stdout).toMatch(
      /ospf-keys\.conf changed: BIRD uses the new OSPF keys \(no neighbour was Full to hold\)/,
    );
    expect(r.stderr).not.toMatch(/REFUSED|could not/);
    expect(after("keys").keys, r.stdout).toBe("confirmed");
    expect(r.stdout + r.stderr).not.toMatch(/the (first|second) key of the area/);
  });

  // The segment probe's script with the image's own tools (busybox sed and tr, dhcp4-probe, dhcp6-probe, rdisc6), in
  // a namespace where nothing answers: each check runs and fails naming the segment.
  it("runs the segment probe from its own root", () => {
    const script = segmentProbeScript([
      {
        segment: "edge",
        link: "lo",
        dhcp4: "10.9.0.0/24",
        ra: "fd00:9::/64",
        dhcp6: { mode: "stateful", pool: "fd00:9::1000-fd00:9::1fff" },
        fingerprint: "",
      },
    ]);
    // lo is brought up by the host's ip inside the new namespace; the probe then runs from the image's root.
    const r = spawnSync(
      "unshare",
      [
        "-n",
        "sh",
        "-c",
        'ip link set lo up && exec chroot "$0" /bin/sh -c "$1" probe edge',
        join(a.stage, "rootfs"),
        script,
      ],
      { encoding: "utf8", timeout: 30_000 },
    );
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^FAIL segment edge: DHCPv4 on lo: no DHCPv4 offer on lo within 3000 ms$/m);
    expect(r.stdout).toMatch(/^FAIL segment edge: RA on lo: /m);
    // lo has no link-local address to send a DHCPv6 solicit from.
    expect(r.stdout).toMatch(/^FAIL segment edge: DHCPv6 on lo: dhcp6-probe: link lo has no link-local IPv6 address$/m);
  });

  it("validates a rendered Kea configuration with its own kea-dhcp4", () => {
    const cfg = JSON.stringify({
      Dhcp4: {
        "interfaces-config": { interfaces: [] },
        subnet4: [{ id: 1, subnet: "10.9.0.0/24", pools: [{ pool: "10.9.0.100 - 10.9.0.200" }] }],
      },
    });
    const r = spawnSync(
      "chroot",
      [join(a.stage, "rootfs"), "/bin/sh", "-c", `printf '%s' '${cfg}' > /tmp/k.json && kea-dhcp4 -t /tmp/k.json`],
      { encoding: "utf8" },
    );
    expect(r.status, r.stderr + r.stdout).toBe(0);
  });
});
