/**
 * Feeds: the loader has router-fetch download blocklists over HTTPS (libcurl, TLS verified against a
 * test CA given to the loader in CURL_CA_BUNDLE), as an unprivileged child; it caches the checked
 * lists under state_dir/feeds and puts them in the WAN guard. The HTTPS servers are `openssl
 * s_server -WWW` in the peer namespace: one with a certificate from the test CA, one with a
 * self-signed certificate the fetcher must refuse, and a TCP server that never answers (a stalled
 * download, to look at the fetcher while it runs). Traffic through the guard shows which list is
 * active.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildProcess, execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
  mkdirSync,
} from "node:fs";
import { join } from "node:path";
import { tier } from "../helpers/tier";
import {
  BUILD_COMMANDS,
  LOADER,
  TOOLS,
  buildEbpf,
  collect,
  ensureBpffs,
  inNetns,
  ip,
  jsonLines,
  metricsUp,
  parseMetrics,
  sleep,
  spawnInNetns,
  stopProcess,
  NEW_EC_KEY,
  tempDir,
  testCertificates,
  waitFor,
} from "./lib";

/** openssl req arguments for a new unencrypted P-256 key. */
const t = tier("ebpf-feeds", {
  root: true,
  commands: [...BUILD_COMMANDS, "ip", "nsenter", "curl", "openssl", "ss"],
});

const ID = process.pid % 100000;
const RTR = `fdr${ID}`;
const PEER = `fdp${ID}`;
const PIN = `/sys/fs/bpf/router-dataplane-feeds-${process.pid}`;
const PORT = 21000 + (process.pid % 1000);
const WAN_ADDR = "81.2.69.1";
const SERVER = "81.2.69.10";
const CLEAN = "8.8.8.8";
const IN_V1 = "185.220.101.5"; // in the first list
const IN_V2 = "77.247.181.10"; // in the second list only
const GATEWAY = "81.2.69.254"; // the router's default gateway in its namespace
const RESOLVER = "2001:4860:4860::8888"; // the nameserver of the loader's resolv_conf
const PROBE = "9.9.9.9"; // the WAN's probe target
const STALL_PORT = 8445; // accepts connections and never answers

const LIST_V1 =
  "; Spamhaus DROP List 2026/11/21 - (c) 2026 The Spamhaus Project\n; Last-Modified: Sat, 21 Nov 2026\n185.220.101.0/24 ; SBL123\n45.155.205.0/24 ; SBL456\n";
const LIST_V2 = "; Spamhaus DROP List 2026/11/22\n77.247.181.0/24 ; SBL789\n";
// what the fetcher writes: sorted, one prefix per line, no comments
const CANONICAL_V1 = "45.155.205.0/24\n185.220.101.0/24\n";
const CANONICAL_V2 = "77.247.181.0/24\n";

interface LogLine {
  level: string;
  event: string;
  msg: string;
}

describe.skipIf(!t.ok)("feeds: HTTPS download, cache, refresh, failures and restart from the cache", () => {
  let dir = "";
  let www = "";
  let conf = "";
  let wanMac = "";
  let loader: ChildProcess | undefined;
  let log = "";
  let trusted: ChildProcess | undefined;
  const children: ChildProcess[] = [];

  const events = () => jsonLines<LogLine>(log);
  const metrics = () => parseMetrics(inNetns(RTR, "curl", ["-sf", `http://127.0.0.1:${PORT}/metrics`]));
  const metric = (k: string) => metrics().get(k) ?? Number.NaN;
  const cache = () => join(dir, "state/feeds/drop.txt");

  function openssl(...args: string[]): void {
    execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  }

  /** An HTTPS server on port serving www with certificate cert (name in dir). */
  async function server(port: number, cert: string): Promise<ChildProcess> {
    const c = spawnInNetns(
      PEER,
      "openssl",
      [
        "s_server",
        "-WWW",
        "-accept",
        `${SERVER}:${port}`,
        "-cert",
        join(dir, `${cert}.pem`),
        "-key",
        join(dir, `${cert}.key`),
      ],
      { cwd: www },
    );
    children.push(c);
    let out = "";
    c.stdout?.on("data", (d) => (out += d));
    c.stderr?.on("data", (d) => (out += d));
    await waitFor(`the HTTPS server on ${port}`, () => out.includes("ACCEPT") || c.exitCode !== null);
    if (c.exitCode !== null) throw new Error(`s_server exited: ${out}`);
    return c;
  }

  /** Serves text as the feed (replaced by rename, as a publisher would). */
  function publish(text: string): void {
    writeFileSync(join(www, "drop.txt.tmp"), text);
    renameSync(join(www, "drop.txt.tmp"), join(www, "drop.txt"));
  }

  async function startLoader(): Promise<void> {
    const before = events().filter((e) => e.event === "started").length;
    loader = spawnInNetns(RTR, LOADER, ["--config", conf], { env: { CURL_CA_BUNDLE: join(dir, "ca.pem") } });
    loader.stderr?.on("data", (d) => (log += d));
    await waitFor("the loader to start", () => {
      if (loader?.exitCode !== null) throw new Error(`loader exited:\n${log}`);
      return events().filter((e) => e.event === "started").length > before;
    });
    await waitFor("the metrics endpoint", () => metricsUp(metrics));
  }

  const stopLoader = () => stopProcess(loader);

  /** The loader's configuration; extra sections are appended. */
  function config(extra = ""): string {
    return `[global]
pin_root = ${PIN}
metrics_address = 127.0.0.1
metrics_port = ${PORT}
state_dir = ${join(dir, "state")}
resolv_conf = ${join(dir, "resolv.conf")}

[interface wan0]
role = wan

[features]
blocklist = true
ratelimit = false

[wan wan0]
priority = 10
mark = 0x10
table = 101
probe = ${PROBE}

[feed drop]
url = https://${SERVER}:8443/drop.txt
kind = block
refresh = 2s

[feed untrusted]
url = https://${SERVER}:8444/drop.txt
kind = block
refresh = 2s
${extra}`;
  }

  /** router-fetch processes the loader runs now: pid, /proc status and command line. */
  function fetchers(): Array<{ pid: number; status: string; cmdline: string }> {
    const out: Array<{ pid: number; status: string; cmdline: string }> = [];
    for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
      try {
        const status = readFileSync(`/proc/${p}/status`, "utf8");
        if (!/^Name:\trouter-fetch$/m.test(status) || !status.includes(`\nPPid:\t${loader?.pid}\n`)) continue;
        out.push({ pid: Number(p), status, cmdline: readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " ") });
      } catch {
        // the process went away while we looked
      }
    }
    return out;
  }

  /** Which of the sources get through the guard (one tagged UDP burst each). */
  async function passing(sources: string[]): Promise<string[]> {
    const sink = spawnInNetns(RTR, join(TOOLS, "traffic"), ["sink", "--port", "9999"]);
    children.push(sink);
    const out = collect(sink);
    let ready = "";
    sink.stdout?.on("data", (d) => (ready += d));
    await waitFor("the sink", () => ready.includes('"ready"'));
    await Promise.all(
      sources.map((src, i) =>
        collect(
          spawnInNetns(PEER, join(TOOLS, "traffic"), [
            "send",
            "--ifname",
            "wanp",
            "--dst-mac",
            wanMac,
            "--src",
            src,
            "--dst",
            WAN_ADDR,
            "--port",
            "9999",
            "--tag",
            String(i + 1),
            "--count",
            "20",
            "--pps",
            "1000",
          ]),
        ),
      ),
    );
    await sleep(300);
    sink.kill("SIGTERM");
    const tags = jsonLines<{ tags?: Record<string, { distinct: number }> }>((await out).stdout).find(
      (l) => l.tags,
    )?.tags;
    if (!tags) throw new Error("the sink printed no counts");
    return sources.filter((_, i) => (tags[String(i + 1)]?.distinct ?? 0) === 20);
  }

  beforeAll(async () => {
    buildEbpf("loader");
    buildEbpf("tests");
    ensureBpffs();
    dir = tempDir("dp-feeds-");
    // the fetcher runs as uid 65534: it reads the test CA from here (the real one is world-readable too)
    chmodSync(dir, 0o755);
    www = join(dir, "www");
    mkdirSync(www);
    // a test CA and a server certificate from it; a second, self-signed certificate nobody trusts
    testCertificates(dir, SERVER, "router-dataplane feeds");
    openssl(
      "req",
      "-x509",
      ...NEW_EC_KEY,
      "-keyout",
      "rogue.key",
      "-out",
      "rogue.pem",
      "-days",
      "2",
      "-subj",
      "/CN=feeds",
      "-addext",
      `subjectAltName=IP:${SERVER}`,
    );

    for (const ns of [RTR, PEER]) spawnSync("ip", ["netns", "del", ns]);
    ip("netns", "add", RTR);
    ip("netns", "add", PEER);
    ip("link", "add", "wan0", "netns", RTR, "type", "veth", "peer", "name", "wanp", "netns", PEER);
    for (const [ns, dev] of [
      [RTR, "lo"],
      [RTR, "wan0"],
      [PEER, "lo"],
      [PEER, "wanp"],
    ])
      ip("-n", ns, "link", "set", dev, "up");
    ip("-n", RTR, "addr", "add", `${WAN_ADDR}/24`, "dev", "wan0");
    ip("-n", PEER, "addr", "add", `${SERVER}/24`, "dev", "wanp");
    ip("-n", RTR, "route", "add", "default", "via", GATEWAY, "dev", "wan0");
    inNetns(RTR, "sysctl", ["-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.wan0.rp_filter=0"]);
    wanMac = (JSON.parse(ip("-n", RTR, "-j", "link", "show", "wan0")) as Array<{ address: string }>)[0].address;

    publish(LIST_V1);
    writeFileSync(join(dir, "resolv.conf"), `# written by the test\nnameserver ${RESOLVER}\noptions edns0\n`);
    conf = join(dir, "dataplane.conf");
    writeFileSync(conf, config());
    // the servers are not up yet: the first start has no feed at all
    await startLoader();
  }, 600_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    await stopLoader();
    for (const ns of [RTR, PEER]) spawnSync("ip", ["netns", "del", ns]);
    rmSync(PIN, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("starts without a feed that was never fetched (it contributes nothing) and counts the failed downloads", async () => {
    expect(events().find((e) => e.event === "started")?.msg).toMatch(/block 0\+0/);
    await waitFor("a failed download", () => metric('router_dataplane_feed_fetch_failures_total{feed="drop"}') >= 1);
    expect(metric('router_dataplane_feed_entries{feed="drop",kind="block"}')).toBe(0);
    expect(metric('router_dataplane_feed_last_success_timestamp_seconds{feed="drop"}')).toBe(0);
    expect(existsSync(cache())).toBe(false);
    expect(await passing([CLEAN, IN_V1])).toEqual([CLEAN, IN_V1]);
  }, 30_000);

  it("downloads the list over HTTPS once the server answers, caches it, and blocks its prefixes (Spamhaus ';' comments)", async () => {
    trusted = await server(8443, "srv");
    await server(8444, "rogue");
    await waitFor(
      "the feed in use",
      () => metric('router_dataplane_feed_entries{feed="drop",kind="block"}') === 2,
      20_000,
    );
    expect(readFileSync(cache(), "utf8")).toBe(CANONICAL_V1);
    expect(metric('router_dataplane_table_entries{table="block",family="ipv4"}')).toBe(2);
    expect(metric('router_dataplane_feed_last_success_timestamp_seconds{feed="drop"}')).toBeGreaterThan(0);
    expect(await passing([CLEAN, IN_V1])).toEqual([CLEAN]);
    // written atomically: no temporary or candidate file is left next to the cache; the fetcher's
    // own copy is in the staging directory it owns
    expect(readdirSync(join(dir, "state/feeds")).sort()).toEqual(["drop.txt", "staging"]);
    expect(readdirSync(join(dir, "state/feeds/staging"))).toEqual(["drop.txt"]);
  }, 60_000);

  it("refuses a server whose certificate the CA did not sign: that feed never contributes", async () => {
    await waitFor(
      "failed downloads of the untrusted feed",
      () => metric('router_dataplane_feed_fetch_failures_total{feed="untrusted"}') >= 2,
      20_000,
    );
    expect(metric('router_dataplane_feed_entries{feed="untrusted",kind="block"}')).toBe(0);
    expect(
      events().some(
        (e) => e.event === "feed_failed" && e.msg.includes("[feed untrusted]") && /certificate/i.test(e.msg),
      ),
    ).toBe(true);
  }, 30_000);

  it("refreshes: a new list on the server replaces the old one in the guard", async () => {
    publish(LIST_V2);
    await waitFor("the second list in use", () => readFileSync(cache(), "utf8") === CANONICAL_V2, 20_000);
    await waitFor("the swap", () => metric('router_dataplane_feed_entries{feed="drop",kind="block"}') === 1);
    expect(await passing([CLEAN, IN_V1, IN_V2])).toEqual([CLEAN, IN_V1]);
  }, 60_000);

  it.each([
    ["0.0.0.0/0", "185.220.101.0/24\n0.0.0.0/0\n", "default_route", /0\.0\.0\.0\/0, which covers every address/],
    ["::/0", "::/0\n", "default_route", /::\/0, which covers every address/],
    [
      "a prefix covering the WAN's gateway",
      `185.220.101.0/24\n81.2.69.128/25\n`,
      "protected",
      /81\.2\.69\.128\/25, which covers 81\.2\.69\.254/,
    ],
    [
      "a prefix covering the resolver",
      "2001:4860::/32\n",
      "protected",
      /2001:4860::\/32, which covers 2001:4860:4860::8888/,
    ],
    [
      "a prefix covering the WAN's probe target",
      "9.9.9.0/24\n",
      "protected",
      /9\.9\.9\.0\/24, which covers 9\.9\.9\.9/,
    ],
    [
      "a prefix covering the list's own server",
      "81.2.69.0/28\n",
      "protected",
      /81\.2\.69\.0\/28, which covers 81\.2\.69\.10/,
    ],
  ])(
    "refuses a list with %s as a whole (it would cut the router off its upstream) and keeps the last good list in the guard",
    async (_what, list, reason, message) => {
      const refused = () => metric(`router_dataplane_feed_failures_total{feed="drop",reason="${reason}"}`);
      const before = refused();
      expect(before).toBeGreaterThanOrEqual(0);
      publish(list);
      await waitFor("the refusal", () => refused() > before, 20_000);
      // the message follows the count
      await waitFor("its message", () =>
        events().some(
          (e) =>
            e.event === "feed_failed" &&
            e.msg.includes("[feed drop] https://81.2.69.10:8443/drop.txt: ") &&
            message.test(e.msg) &&
            e.msg.endsWith(`(reason ${reason})`),
        ),
      );
      expect(readFileSync(cache(), "utf8")).toBe(CANONICAL_V2);
      expect(readFileSync(join(dir, "state/feeds/staging/drop.txt"), "utf8")).toBe(CANONICAL_V2);
      expect(metric('router_dataplane_feed_entries{feed="drop",kind="block"}')).toBe(1);
      // IN_V1 would be dropped had the first line of the refused list been taken
      expect(await passing([CLEAN, IN_V1, IN_V2, PROBE])).toEqual([CLEAN, IN_V1, PROBE]);
    },
    60_000,
  );

  describe("a download that stalls", () => {
    let stall: ChildProcess | undefined;
    const stalled = () => fetchers().filter((f) => f.cmdline.includes(" --out stall.txt"));

    beforeAll(async () => {
      // accepts TCP connections on the feed server's address and never says a word
      stall = spawnInNetns(PEER, process.execPath, [
        "-e",
        `require("node:net").createServer(() => {}).listen(${STALL_PORT}, "${SERVER}", () => console.log("listening"))`,
      ]);
      children.push(stall);
      let out = "";
      stall.stdout?.on("data", (d) => (out += d));
      await waitFor("the stalling server", () => out.includes("listening"));
      writeFileSync(
        conf,
        config(`
[feed stall]
url = https://${SERVER}:${STALL_PORT}/list.txt
kind = block
refresh = 1h
timeout = 3s
`),
      );
    });

    afterAll(async () => {
      writeFileSync(conf, config());
      await stopProcess(stall);
    });

    it("runs the fetcher as uid/gid 65534 with no groups, no capabilities in any set and no_new_privs", async () => {
      await waitFor("the stalled fetcher", () => stalled().length === 1, 20_000);
      const [{ pid }] = stalled();
      // the fetcher sandboxes itself before it connects (router-fetch.c main: sandbox, then run): its
      // connection to the stalling server says the sandbox is in place, so /proc is read only after it
      await waitFor("the fetcher's connection", () =>
        inNetns(RTR, "ss", ["-tnpH", "dst", `${SERVER}:${STALL_PORT}`]).includes(`pid=${pid},`),
      );
      const f = stalled().find((s) => s.pid === pid);
      expect(f, "the fetcher is still stalled on its download").toBeDefined();
      const field = (name: string) => new RegExp(`^${name}:\\t(.*)$`, "m").exec(f!.status)?.[1];
      expect(field("Uid")).toBe("65534\t65534\t65534\t65534");
      expect(field("Gid")).toBe("65534\t65534\t65534\t65534");
      expect(field("Groups")?.trim()).toBe("");
      for (const set of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) expect(field(set)).toBe("0000000000000000");
      expect(field("NoNewPrivs")).toBe("1");
      expect(field("Seccomp")).toBe("2"); // a filter is installed
      // the URL is not on its command line (it may carry a token): the fetcher reads it from stdin
      expect(f!.cmdline).not.toContain(SERVER);
    }, 30_000);

    it("connects to the feed server from the fetcher's process; the loader itself holds no socket to it", async () => {
      await waitFor("the stalled fetcher", () => stalled().length === 1, 20_000);
      const [f] = stalled();
      let conns: string[] = [];
      await waitFor("the stalled connection", () => {
        conns = inNetns(RTR, "ss", ["-tnpH", "dst", `${SERVER}:${STALL_PORT}`])
          .split("\n")
          .filter((l) => l.trim());
        return conns.length > 0;
      });
      for (const c of conns) expect([...c.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]))).toEqual([f.pid]);
      const loaderPid = loader!.pid!;
      const all = inNetns(RTR, "ss", ["-tanpH"]).split("\n");
      expect(all.filter((l) => l.includes(`pid=${loaderPid},`) && l.includes(SERVER))).toEqual([]);
      expect(all.filter((l) => l.includes(`pid=${f.pid},`)).length).toBeGreaterThan(0);
    }, 30_000);

    it("counts the stalled download as a failed download once the fetcher gives up after the feed's timeout", async () => {
      await waitFor(
        "the timed-out download",
        () => metric('router_dataplane_feed_failures_total{feed="stall",reason="download"}') >= 1,
        20_000,
      );
      expect(stalled()).toEqual([]);
      expect(existsSync(join(dir, "state/feeds/stall.txt"))).toBe(false);
    }, 30_000);

    it("kills a fetcher that hangs past its timeout and counts a timeout", async () => {
      const before = metric('router_dataplane_feed_failures_total{feed="stall",reason="timeout"}');
      loader!.kill("SIGHUP"); // fetch every feed now
      await waitFor("a new stalled fetcher", () => stalled().length === 1, 20_000);
      const [f] = stalled();
      process.kill(f.pid, "SIGSTOP"); // curl's own timeout cannot fire in a stopped process
      await waitFor(
        "the fetcher killed",
        () => metric('router_dataplane_feed_failures_total{feed="stall",reason="timeout"}') > before,
        3_000 + 10_000 + 8_000,
      );
      expect(
        existsSync(`/proc/${f.pid}/status`) && readFileSync(`/proc/${f.pid}/status`, "utf8").includes("router-fetch"),
      ).toBe(false);
      await waitFor("its message", () =>
        events().some(
          (e) =>
            e.event === "feed_failed" && e.msg.includes("[feed stall]") && e.msg.includes("the fetcher was killed"),
        ),
      );
    }, 40_000);

    it("a fetcher dies with a killed loader: it never outlives it holding the loader's mounts (its bpffs and the pinned links)", async () => {
      loader!.kill("SIGHUP"); // fetch every feed now
      await waitFor("a new stalled fetcher", () => stalled().length === 1, 20_000);
      const [f] = stalled();
      process.kill(f.pid, "SIGSTOP"); // a stopped fetcher cannot end by its own timeout; SIGKILL still ends it
      const alive = () =>
        existsSync(`/proc/${f.pid}/status`) &&
        /^Name:\trouter-fetch$/m.test(readFileSync(`/proc/${f.pid}/status`, "utf8")) &&
        !/^State:\tZ/m.test(readFileSync(`/proc/${f.pid}/status`, "utf8"));
      try {
        loader!.kill("SIGKILL");
        await new Promise((r) => loader!.once("close", r));
        await sleep(2_000);
        expect(alive()).toBe(false);
      } finally {
        if (alive()) process.kill(f.pid, "SIGKILL");
        await startLoader();
      }
    }, 40_000);
  });

  it("keeps the last good list when a download is malformed, empty or fails, and counts each failure", async () => {
    const failures = () => metric('router_dataplane_feed_fetch_failures_total{feed="drop"}');
    // a captive portal answering instead of the list
    let before = failures();
    publish("<html><body>Please log in to the hotel Wi-Fi</body></html>\n");
    await waitFor("the malformed download", () => failures() > before, 20_000);
    await waitFor("its message", () =>
      events().some(
        (e) =>
          e.event === "feed_failed" &&
          /dataplane\.conf:\d+: \[feed drop\] https:\/\/81\.2\.69\.10:8443\/drop\.txt: malformed list, line 1:/.test(
            e.msg,
          ),
      ),
    );
    // a list cut mid-line
    before = failures();
    publish(`${LIST_V1}185.220.10`);
    await waitFor("the truncated download", () => failures() > before, 20_000);
    // an empty answer
    before = failures();
    publish("");
    await waitFor("the empty download", () => failures() > before, 20_000);
    // the server gone
    await stopProcess(trusted);
    before = failures();
    await waitFor("the failed connection", () => failures() > before, 20_000);
    expect(readFileSync(cache(), "utf8")).toBe(CANONICAL_V2);
    expect(metric('router_dataplane_feed_entries{feed="drop",kind="block"}')).toBe(1);
    expect(await passing([CLEAN, IN_V1, IN_V2])).toEqual([CLEAN, IN_V1]);
    expect(readdirSync(join(dir, "state/feeds")).sort()).toEqual(["drop.txt", "staging"]);
  }, 90_000);

  it("starts from the cached list at once after a restart while the feed is unreachable", async () => {
    await stopLoader();
    await startLoader();
    expect(
      events()
        .filter((e) => e.event === "started")
        .at(-1)?.msg,
    ).toMatch(/block 1\+0/);
    expect(metric('router_dataplane_feed_entries{feed="drop",kind="block"}')).toBe(1);
    expect(await passing([CLEAN, IN_V2])).toEqual([CLEAN]);
  }, 60_000);
});
