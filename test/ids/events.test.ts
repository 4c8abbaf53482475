/**
 * The IDS event pipeline with the real daemons: the dev site's rendered log-collector (syslog-ng) and log-store
 * (VictoriaLogs) pods and the IDS pod's metrics agent, each run from its rendered DaemonSet the way a node runs it
 * (test/observability/lib/pods.ts), from our observability and IDS images built by their scripts (VictoriaLogs:
 * built at the version of its upstream image), in a router namespace; then the real Suricata reads a malicious sample (test/ids/lib/samples.ts) with the
 * rendered suricata.yaml, its sockets at the pods' volumes. The alert must be in the store within 5 s as a
 * structured record found by its community ID (computed here from the alert's flow by the published algorithm,
 * not by Suricata) and its sid, and the agent's metrics file — what the node exporter serves — must count it and
 * the packets Suricata decoded, and pass `promtool check metrics`. Then the collector restarts under a Suricata that
 * keeps running (live, AF_PACKET on a link the sample is replayed into): Suricata's connected socket now has no
 * reader, its next send fails, and it reconnects to the collector's new socket at once and sends again
 * (util-logopenfile.c: SCLogFileWriteSocket, SCLogUnixSocketReconnect), so an alert after the restart is in the
 * store again.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { renderStackFiles } from "../../components/observability-stack/files";
import { TEXTFILE_DIR, renderObservabilityObjects, type ObsObject } from "../../components/observability-stack/k8s";
import { OBSERVABILITY_PORTS } from "../../components/site/schema-observability";
import { planIds } from "../../components/ids-stack/plan";
import { ROUTER_IDS_PATHS, suricataFiles, type IdsPaths } from "../../components/ids-stack/suricata";
import { renderIdsObjects } from "../../components/ids-stack/k8s";
import { toolBinary } from "../../tools/go-tools";
import { type Daemon, Daemons, sh } from "../e2e/lib/exec";
import { waitFor } from "../helpers/wait";
import { devSite } from "../helpers/dev-site";
import { ROOT } from "../helpers/stacks";
import { tempDir } from "../helpers/temp";
import { tier } from "../helpers/tier";
import { ociEnv, podArgv, type ImageRoot, type PodFiles } from "../observability/lib/pods";
import { Capture } from "./lib/pcap";
import { ATTACKER, SAMPLES, SERVER, jndiLookup } from "./lib/samples";
import { communityId } from "./lib/community-id";

const VICTORIA_LOGS = toolBinary("victoria-logs");
const t = tier("ids event pipeline", {
  root: true,
  commands: [
    "suricata",
    "syslog-ng",
    "/usr/bin/python3",
    "promtool",
    "buildah",
    "jq",
    "chroot",
    "unshare",
    "ip",
    "curl",
  ],
  files: [VICTORIA_LOGS],
  hint: "VictoriaLogs: npm run build:tools",
});

const ID = `${process.pid % 100000}`;
const NS = `idsev${ID}-rtr`;
const SAMPLE = SAMPLES.find((s) => s.name === "JNDI lookup in HTTP")!;
/** Sends the frames of a pcap file (argv[2]) out of a link (argv[1]), in order. */
const REPLAY = [
  "import socket, struct, sys",
  "data = open(sys.argv[2], 'rb').read()",
  "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)",
  "s.bind((sys.argv[1], 0))",
  "i = 24",
  "while i < len(data):",
  "    n = struct.unpack_from('<I', data, i + 8)[0]",
  "    s.send(data[i + 16 : i + 16 + n])",
  "    i += 16 + n",
].join("\n");

describe.skipIf(!t.ok)("IDS events into the log store and alert counts into metrics, with the real daemons", () => {
  const { site, plan, policy } = devSite();
  const daemons = new Daemons();
  const store = `http://${plan.managementAddress}:${OBSERVABILITY_PORTS.logs}`;
  let work = "";
  let node = "";
  let paths: IdsPaths;
  let idsPod: IDaemonSet;
  /** Starts a pod's container again as beforeAll started it, by container name. */
  const restarts = new Map<string, () => Daemon>();
  const inNs = (argv: string[], allowFail = false) =>
    sh(["ip", "netns", "exec", NS, ...argv], { allowFail, timeoutMs: 20_000 });

  function query(q: string): Record<string, string>[] {
    const r = inNs(["curl", "-sf", `${store}/select/logsql/query`, "--data-urlencode", `query=${q}`], true);
    return r.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, string>);
  }

  function logs(): string {
    return daemons
      .list()
      .map((d) => `--- ${d.name}${d.exited ? ` (exited ${d.exitCode})` : ""}\n${d.log().slice(-1500)}`)
      .join("\n");
  }

  beforeAll(async () => {
    work = tempDir("ids-events-");
    node = join(work, "node");
    sh(["ip", "netns", "del", NS], { allowFail: true });
    sh(["ip", "netns", "add", NS]);
    // the management address the store listens on (no other link is needed: everything is on the router)
    sh(["ip", "-n", NS, "link", "set", "lo", "up"]);
    sh(["ip", "-n", NS, "address", "add", `${plan.managementAddress}/32`, "dev", "lo"]);

    const files = renderStackFiles(site, plan, policy, { webhookToken: false });
    const obs = renderObservabilityObjects(site, plan, files, { own: "own", logs: "logs", dashboards: "dash" }, {});
    const ids = planIds(site, plan);
    const idsObjects = renderIdsObjects(ids, suricataFiles(site, ids), "ids");
    idsPod = idsObjects.find((o) => o.kind === "DaemonSet") as IDaemonSet;
    const all: ObsObject[] = [...obs, ...(idsObjects as ObsObject[])];
    const ds = (name: string) =>
      all.find((o) => o.kind === "DaemonSet" && o.metadata.name === name) as ObsObject & IDaemonSet;
    const pod: PodFiles = {
      configMaps: new Map(
        all.filter((o) => o.kind === "ConfigMap").map((o) => [o.metadata.name, o.data as Record<string, string>]),
      ),
      node,
    };
    // Our images, built as `pulumi up` builds them (their build scripts; a few seconds each).
    const image = (dir: string): ImageRoot => {
      const stage = join(work, `${dir}-build`);
      const out = join(work, `${dir}-out`);
      const r = spawnSync(join(ROOT, "images", dir, "build-image.sh"), [stage, out], {
        encoding: "utf8",
        timeout: 300_000,
      });
      if (r.status !== 0) throw new Error(`images/${dir}/build-image.sh failed: ${r.stderr}`);
      return { rootfs: join(stage, "rootfs"), env: ociEnv(join(out, "oci")) };
    };
    const emptyRoot = join(work, "upstream-root");
    mkdirSync(emptyRoot, { recursive: true });
    const start = (name: string, container: string, image: ImageRoot) => {
      const argv = ["ip", "netns", "exec", NS, ...podArgv(ds(name), container, image, pod, join(work, container))];
      restarts.set(container, () => daemons.start(`${name}-${container}`, argv, join(work, `${container}.log`)));
      return restarts.get(container)!();
    };
    // The upstream image runs its binary as /victoria-logs-prod (VictoriaLogs' app/victoria-logs/multiarch/Dockerfile).
    start("logs", "victoria-logs", { rootfs: emptyRoot, env: {}, binds: [[VICTORIA_LOGS, "/victoria-logs-prod"]] });
    start("log-collector", "syslog-ng", image("observability"));
    start("router-ids", "metrics", image("ids"));

    // Suricata on the host, its sockets where the pods' volumes are.
    paths = {
      config: join(work, "suricata/etc"),
      rules: join(work, "suricata/rules"),
      data: join(work, "suricata/data"),
      logs: join(work, "suricata/logs"),
      run: join(work, "suricata/run"),
      alerts: join(work, "suricata/alerts"),
      share: "/etc/suricata",
      events: join(node, ROUTER_IDS_PATHS.events),
      metrics: join(work, "metrics/volumes/metrics"),
    };
    for (const d of [paths.config, paths.rules, paths.data, paths.logs, paths.run]) mkdirSync(d, { recursive: true });
    const rendered = suricataFiles(site, ids, paths);
    for (const [name, text] of rendered) writeFileSync(join(paths.config, name), text);
    writeFileSync(join(paths.rules, "suricata.rules"), rendered.get("local.rules")!);

    await waitFor(
      `the log store to answer\n${logs()}`,
      () => (inNs(["curl", "-sf", `${store}/health`], true).status === 0 ? true : undefined),
      20_000,
    );
    await waitFor(
      `the collector's and the agent's sockets\n${logs()}`,
      () =>
        existsSync(join(paths.events!, "eve.sock")) && existsSync(join(paths.metrics!, "ids.sock")) ? true : undefined,
      20_000,
    );
  }, 300_000);

  afterAll(async () => {
    await daemons.stopAll();
    sh(["ip", "netns", "del", NS], { allowFail: true });
  });

  const promFile = () => join(node, TEXTFILE_DIR, "ids.prom");

  it(`stores the ${SAMPLE.name} alert within 5 s, found by its community ID and sid, and counts it`, async () => {
    const pcap = join(paths.logs, "sample.pcap");
    const c = new Capture();
    SAMPLE.attack(c);
    c.write(pcap);
    const args = ["-r", pcap, "-c", join(paths.config, "suricata.yaml"), "-l", paths.logs, "-k", "none"];
    // The block agent's socket is not there; that output stays off.
    const r = spawnSync("suricata", [...args, "--set", "outputs.1.eve-log.enabled=no"], { encoding: "utf8" });
    const sent = Date.now();
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    // What Suricata saw, from its own EVE file (the router keeps that output too).
    const eve = readFileSync(join(paths.logs, "eve.json"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any
    const alert = eve.find((e) => e.event_type === "alert")!;
    const packets = eve.filter((e) => e.event_type === "stats").at(-1)!.stats.decoder.pkts as number;
    expect(alert.alert.signature_id).toBe(SAMPLE.sid);
    const cid = communityId(alert.src_ip, alert.src_port, alert.dest_ip, alert.dest_port, 6);

    const record = await waitFor(
      `the alert ${SAMPLE.sid} with community ID ${cid} in the log store\n${logs()}`,
      () => query(`source:ids event_type:alert community_id:"${cid}" alert.signature_id:${SAMPLE.sid}`)[0],
      5_000,
      200,
    );
    expect(Date.now() - sent).toBeLessThanOrEqual(5_000);
    expect(record).toMatchObject({
      source: "ids",
      sensor: "suricata",
      _msg: alert.alert.signature,
      src_ip: alert.src_ip,
      dest_ip: alert.dest_ip,
      dest_port: String(alert.dest_port),
      "alert.action": "allowed",
      "alert.severity": String(alert.alert.severity),
    });
    // The flow's other records carry the same community ID; each says what it is.
    const flow = await waitFor(
      `the flow's HTTP and flow records\n${logs()}`,
      () => {
        const rs = query(`source:ids community_id:"${cid}"`);
        return ["http", "flow"].every((e) => rs.some((x) => x.event_type === e)) ? rs : undefined;
      },
      5_000,
      200,
    );
    expect(flow.find((x) => x.event_type === "http")).toMatchObject({
      _msg: "http",
      "http.hostname": "nas.example.net",
      "http.http_user_agent": alert.http.http_user_agent,
    });

    // The agent writes every 10 s.
    const counted = `router_ids_alerts_total{process="ids",severity="${alert.alert.severity}",action="allowed"} 1`;
    const text = await waitFor(
      `${counted} in ${promFile()}\n${logs()}`,
      () => {
        const s = existsSync(promFile()) ? readFileSync(promFile(), "utf8") : "";
        return s.includes(counted) && s.includes("router_ids_packets_total") ? s : undefined;
      },
      25_000,
      500,
    );
    expect(text).toContain(`router_ids_packets_total{process="ids"} ${packets}`);
    const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
  }, 60_000);

  it("counts the inline process's alerts apart, by the socket its command line names", async () => {
    // The IPS container's own arguments (its metrics socket), inline as --simulate-ips runs a capture.
    const ips = idsPod.spec!.template.spec!.containers.find((c) => c.name === "suricata-ips")!;
    const argv = ips.command!;
    const sets = argv.flatMap((a, i) => (argv[i - 1] === "--set" && a.startsWith("outputs.") ? ["--set", a] : []));
    const ours = sets.map((a) => a.replace(ROUTER_IDS_PATHS.metrics, paths.metrics!));
    const dir = join(paths.logs, "ips");
    mkdirSync(dir, { recursive: true });
    const pcap = join(dir, "sample.pcap");
    const c = new Capture();
    SAMPLE.attack(c);
    c.write(pcap);
    const args = ["-r", pcap, "-c", join(paths.config, "suricata.yaml"), "-l", dir, "-k", "none", "--simulate-ips"];
    const r = spawnSync("suricata", [...args, "--set", "outputs.1.eve-log.enabled=no", ...ours], { encoding: "utf8" });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const severity = 1; // the JNDI rule's priority:1
    const counted = `router_ids_alerts_total{process="ips",severity="${severity}",action="blocked"} 1`;
    const text = await waitFor(
      `${counted} in ${promFile()}\n${logs()}`,
      () => {
        const s = existsSync(promFile()) ? readFileSync(promFile(), "utf8") : "";
        return s.includes(counted) ? s : undefined;
      },
      25_000,
      500,
    );
    // the IDS process's count is its own
    expect(text).toContain(`router_ids_alerts_total{process="ids",severity="${severity}",action="allowed"} 1`);
  }, 60_000);

  it("stores Suricata's alerts again after the collector restarts, Suricata running throughout", async () => {
    // Suricata live on a veth of the router namespace (live, as on the router: its socket sends do not wait),
    // the sample's frames sent into the veth's peer
    const [link, peer] = [`ev${ID}a`, `ev${ID}b`];
    inNs(["ip", "link", "add", link, "type", "veth", "peer", "name", peer]);
    for (const l of [link, peer]) inNs(["ip", "link", "set", l, "up"]);
    const logDir = join(paths.logs, "live");
    mkdirSync(logDir, { recursive: true });
    /** A JNDI lookup from its own source port, replayed into the link; its community ID. */
    const replay = (port: number) => {
      const c = new Capture();
      jndiLookup(c, port);
      const pcap = join(work, `jndi-${port}.pcap`);
      c.write(pcap);
      inNs(["/usr/bin/python3", "-c", REPLAY, peer, pcap]);
      return communityId(ATTACKER, port, SERVER, 80, 6);
    };
    const stored = (cid: string, what: string) =>
      waitFor(
        `${what}: the alert with community ID ${cid} in the log store\n${logs()}`,
        () => query(`source:ids event_type:alert community_id:"${cid}" alert.signature_id:${SAMPLE.sid}`)[0],
        10_000,
        200,
      );
    const suricata = daemons.start(
      "suricata-live",
      [
        ...["ip", "netns", "exec", NS, "suricata", "-c", join(paths.config, "suricata.yaml")],
        // the rendered settings of the first watched link, on the test's link
        ...[
          `--af-packet=${link}`,
          "--set",
          `af-packet.0.interface=${link}`,
          "-l",
          logDir,
          "-k",
          "none",
          "--set",
          "outputs.1.eve-log.enabled=no",
        ],
      ],
      join(work, "suricata-live.log"),
    );
    await waitFor(
      `Suricata's engine\n${logs()}`,
      () => {
        if (suricata.exited) throw new Error(`Suricata exited:\n${suricata.log().slice(-3000)}`);
        return suricata.log().includes("Engine started");
      },
      90_000,
      200,
    );
    await stored(replay(46_001), "before the restart");

    // Whether anything is bound to the collector's socket (a datagram connect, sending nothing).
    const socket = join(paths.events!, "eve.sock");
    const bound = () =>
      spawnSync("/usr/bin/python3", [
        "-c",
        "import socket, sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).connect(sys.argv[1])",
        socket,
      ]).status === 0;
    const collector = daemons.list().find((d) => d.name.endsWith("-syslog-ng") && !d.exited)!;
    await collector.stop();
    expect(bound(), "no reader on the collector's socket while it is stopped").toBe(false);
    restarts.get("syslog-ng")!();
    await waitFor(`the restarted collector's socket\n${logs()}`, bound, 20_000, 100);
    await stored(replay(46_002), "after the restart");
  }, 90_000);
});
