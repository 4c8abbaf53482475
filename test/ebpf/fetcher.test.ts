/**
 * router-fetch on its own: each list kind with good and bad downloads, the protections, what a
 * failed run leaves behind, and the privileges it runs with; and the sandbox helpers it and the
 * loader use (sandbox_test). The HTTPS server is `openssl s_server -WWW` on 127.0.0.1 in a private
 * network namespace, with a certificate from a test CA. Expected canonical lists are written out by
 * hand from the format's rules (ebpf/README.md), not computed by code.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChildProcess, spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tier } from "../helpers/tier";
import {
  BUILD,
  BUILD_COMMANDS,
  buildEbpf,
  ip,
  jsonLines,
  runTool,
  spawnInNetns,
  tempDir,
  testCertificates,
  waitFor,
} from "./lib";

const t = tier("ebpf-fetcher", { root: true, commands: [...BUILD_COMMANDS, "ip", "nsenter", "openssl"] });

const NS = `fft${process.pid % 100000}`;
const FETCHER = join(BUILD, "router-fetch");
const HOST = "127.0.0.1";
const PORT = 8443;
const NOBODY = 65534;

interface LogLine {
  level: string;
  event: string;
  msg: string;
}

interface Run {
  status: number | null;
  lines: LogLine[];
  /** The outcome: the last line. */
  last: LogLine;
}

describe.skipIf(!t.ok)("router-fetch", () => {
  let dir = "";
  let www = "";
  let out = "";
  let server: ChildProcess | undefined;
  let n = 0;

  /** Serves body under a fresh name and returns its URL. */
  function serve(body: string | Buffer): string {
    const name = `list${++n}.txt`;
    writeFileSync(join(www, name), body);
    return `https://${HOST}:${PORT}/${name}`;
  }

  /** Runs router-fetch in the namespace (as root: it drops to 65534 itself). */
  function fetch(args: string[], input?: string): Run {
    const r = spawnSync("nsenter", [`--net=/run/netns/${NS}`, FETCHER, ...args], {
      encoding: "utf8",
      input,
      timeout: 60_000,
    });
    const lines = jsonLines<LogLine>(r.stderr);
    return { status: r.status, lines, last: lines[lines.length - 1] ?? { level: "", event: "", msg: r.stderr } };
  }

  /** Fetches body as kind into file (in the output directory) with the test CA. */
  function fetchList(kind: string, body: string | Buffer, extra: string[] = [], file = "list.txt"): Run {
    return fetch([
      "--url",
      serve(body),
      "--kind",
      kind,
      "--out",
      join(out, file),
      "--ca-file",
      join(dir, "ca.pem"),
      ...extra,
    ]);
  }

  const read = (file = "list.txt") => readFileSync(join(out, file), "utf8");

  beforeAll(async () => {
    buildEbpf("loader");
    buildEbpf("tests");
    dir = tempDir("dp-fetcher-");
    chmodSync(dir, 0o755); // the fetcher, as 65534, reads the CA here
    www = join(dir, "www");
    out = join(dir, "out");
    mkdirSync(www);
    mkdirSync(out);
    chownSync(out, NOBODY, NOBODY);
    testCertificates(dir, HOST, "router-fetch");
    spawnSync("ip", ["netns", "del", NS]);
    ip("netns", "add", NS);
    ip("-n", NS, "link", "set", "lo", "up");
    server = spawnInNetns(
      NS,
      "openssl",
      ["s_server", "-WWW", "-accept", `${HOST}:${PORT}`, "-cert", join(dir, "srv.pem"), "-key", join(dir, "srv.key")],
      { cwd: www },
    );
    let said = "";
    server.stdout?.on("data", (d) => (said += d));
    server.stderr?.on("data", (d) => (said += d));
    await waitFor("the HTTPS server", () => said.includes("ACCEPT") || server?.exitCode !== null);
    if (server.exitCode !== null) throw new Error(`s_server exited: ${said}`);
  }, 600_000);

  afterAll(() => {
    if (server && server.exitCode === null) server.kill("SIGKILL");
    spawnSync("ip", ["netns", "del", NS]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe("cidr", () => {
    it("writes comments, CRLF, blank lines, hosts without a length and duplicates as a sorted canonical list", () => {
      const r = fetchList(
        "cidr",
        "# a comment\r\n10.0.0.0/8\r\n2001:db8::/32 ; Spamhaus-style note\n\n192.0.2.1\n10.0.0.0/8\n2001:db8::1\n",
      );
      expect(r.status).toBe(0);
      expect(r.last).toMatchObject({ level: "info", event: "fetched" });
      expect(r.last.msg).toMatch(/^4 entries written to /);
      expect(read()).toBe("10.0.0.0/8\n192.0.2.1/32\n2001:db8::/32\n2001:db8::1/128\n");
      expect(statSync(join(out, "list.txt")).uid).toBe(NOBODY); // written after the drop
    });

    it("reports an identical list as unchanged and leaves the file alone", () => {
      const before = statSync(join(out, "list.txt"));
      const r = fetchList("cidr", "2001:db8::1\n192.0.2.1/32\n10.0.0.0/8\n2001:db8::/32\n");
      expect(r.status).toBe(0);
      expect(r.last.event).toBe("unchanged");
      expect(statSync(join(out, "list.txt")).ino).toBe(before.ino);
    });

    it.each([
      ["a line that is no prefix", "10.0.0.0/8\nnot-a-prefix\n", [], "malformed", /^malformed list, line 2: /],
      ["host bits beyond the length", "10.0.0.1/8\n", [], "malformed", /line 1: host bits set beyond \/8/],
      ["a geo line", "10.0.0.0/8 NL\n", [], "malformed", /line 1: expected one CIDR per line/],
      ["binary data", Buffer.from("10.0.0.0/8\n\0\x01\x02"), [], "malformed", /binary data/],
      ["nothing", "", [], "empty", /no entries/],
      ["only comments", "# nothing here\n; nor here\n", [], "empty", /no entries/],
      [
        "fewer entries than --min-entries",
        "10.0.0.0/8\n10.0.0.0/8\n",
        ["--min-entries", "2"],
        "too_few_entries",
        /1 entries, fewer than the 2 required/,
      ],
      ["0.0.0.0/0", "10.0.0.0/8\n0.0.0.0/0\n", [], "default_route", /0\.0\.0\.0\/0, which covers every address/],
      ["::/0", "2001:db8::/32\n::/0\n", [], "default_route", /::\/0, which covers every address/],
      [
        "a prefix covering a protected IPv4 address",
        "198.51.100.0/24\n",
        ["--protect", "198.51.100.7"],
        "protected",
        /198\.51\.100\.0\/24, which covers 198\.51\.100\.7/,
      ],
      [
        "a prefix covering a protected IPv6 address",
        "2001:db8::/48\n",
        ["--protect", "2001:db8::53"],
        "protected",
        /covers 2001:db8::53/,
      ],
      [
        "a prefix covering the server it came from",
        "127.0.0.0/8\n",
        ["--protect-source"],
        "protected",
        /covers 127\.0\.0\.1/,
      ],
    ])("refuses %s as a whole (exit 3)", (_what, body, extra, reason, message) => {
      const r = fetchList("cidr", body, extra as string[], "refused.txt");
      expect(r.status).toBe(3);
      expect(r.last).toMatchObject({ level: "error", event: reason });
      expect(r.last.msg).toMatch(message);
      expect(readdirSync(out)).not.toContain("refused.txt");
    });

    it("takes prefixes that only neighbour a protected address, and the server's range when not told to protect it", () => {
      expect(fetchList("cidr", "198.51.100.128/25\n", ["--protect", "198.51.100.7"], "near.txt").status).toBe(0);
      expect(read("near.txt")).toBe("198.51.100.128/25\n");
      expect(fetchList("cidr", "127.0.0.0/8\n", [], "lo.txt").status).toBe(0);
    });
  });

  describe("geo", () => {
    it("writes 'CIDR CC' lines in canonical order", () => {
      const r = fetchList("geo", "192.0.2.0/24 NL\n2001:db8::/32 DE\n10.0.0.0/8\tUS ; note\n", [], "geo.txt");
      expect(r.status).toBe(0);
      expect(read("geo.txt")).toBe("10.0.0.0/8 US\n192.0.2.0/24 NL\n2001:db8::/32 DE\n");
    });

    it.each([
      ["a line without a country", "192.0.2.0/24\n", [], "malformed", /line 1: expected 'CIDR CC'/],
      ["a lower-case country", "192.0.2.0/24 nl\n", [], "malformed", /country 'nl' is not an ISO 3166/],
      [
        "a prefix with two countries",
        "192.0.2.0/24 NL\n192.0.2.0/24 DE\n",
        [],
        "malformed",
        /192\.0\.2\.0\/24 is listed with two countries/,
      ],
      ["0.0.0.0/0", "0.0.0.0/0 US\n", [], "default_route", /covers every address/],
      [
        "an entry of a blocked country covering a protected address",
        "192.0.2.0/24 NL\n",
        ["--protect", "192.0.2.1", "--block-country", "NL"],
        "protected",
        /192\.0\.2\.0\/24 NL, which covers 192\.0\.2\.1/,
      ],
      [
        "an entry covering a protected address when no country is named",
        "192.0.2.0/24 NL\n",
        ["--protect", "192.0.2.1"],
        "protected",
        /covers 192\.0\.2\.1/,
      ],
    ])("refuses %s", (_what, body, extra, reason, message) => {
      const r = fetchList("geo", body, extra as string[], "geo-refused.txt");
      expect(r.status).toBe(3);
      expect(r.last.event).toBe(reason);
      expect(r.last.msg).toMatch(message);
    });

    it("takes an entry covering a protected address whose country is not blocked (a geo list covers everything)", () => {
      const r = fetchList("geo", "192.0.2.0/24 NL\n", ["--protect", "192.0.2.1", "--block-country", "DE"], "geo2.txt");
      expect(r.status).toBe(0);
      expect(read("geo2.txt")).toBe("192.0.2.0/24 NL\n");
    });
  });

  describe("domains", () => {
    it("normalises plain names, hosts-file lines and ||name^ rules to one lower-case name per line", () => {
      const body = [
        "# StevenBlack-style header",
        "127.0.0.1 localhost",
        "127.0.0.1 localhost.localdomain",
        "255.255.255.255 broadcasthost",
        "::1 localhost ip6-localhost ip6-loopback",
        "fe80::1%lo0 localhost",
        "ff02::1 ip6-allnodes",
        "0.0.0.0 0.0.0.0",
        "0.0.0.0 Ads.Example.COM tracker.example.net   # inline comment",
        "127.0.0.1 telemetry.example.org",
        ":: v6sink.example.org",
        "[Adblock Plus 2.0]",
        "! adblock comment",
        "||metrics.example.org^",
        "||ADS.example.com^",
        "plain.example.",
        "xn--bcher-kva.example",
        "under_score.example.net\r",
        "",
      ].join("\n");
      const r = fetchList("domains", body, [], "names.txt");
      expect(r.status).toBe(0);
      expect(read("names.txt")).toBe(
        [
          "ads.example.com",
          "metrics.example.org",
          "plain.example",
          "telemetry.example.org",
          "tracker.example.net",
          "under_score.example.net",
          "v6sink.example.org",
          "xn--bcher-kva.example",
          "",
        ].join("\n"),
      );
    });

    const long63 = "a".repeat(63);
    it.each([
      ["a raw UTF-8 (IDN) name", "example.com\nbücher.example\n", /line 2: a byte outside ASCII/],
      ["a label longer than 63", `example.com\n${long63}b.example\n`, /line 2: .* has a longer label/],
      [
        "a name longer than 253",
        `${[long63, long63, long63, long63].join(".")}.example\n`,
        /line 1: a name of 263 characters/,
      ],
      ["an IPv4 literal", "192.0.2.1\n", /line 1: '192\.0\.2\.1' is an IP address/],
      ["an IPv6 literal", "2001:db8::1\n", /line 1: '2001:db8::1' is not a domain name/],
      ["a wildcard", "*.example.com\n", /is a wildcard/],
      ["an empty label", "example..com\n", /has an empty label/],
      ["a label starting with '-'", "-bad.example.com\n", /starting or ending with '-'/],
      ["an adblock rule beyond ||name^", "||example.com^$third-party\n", /not an adblock rule of the form \|\|name\^/],
      ["a hosts line that sends names to a real address", "10.1.2.3 example.com\n", /sends names to 10\.1\.2\.3/],
      [
        "two names on a plain line",
        "example.com example.net\n",
        /expected one name, 'ADDRESS name\.\.\.' \(hosts file\) or '\|\|name\^'/,
      ],
      ["HTML", "<html><body>Please log in</body></html>\n", /line 1: /],
    ])("refuses %s as malformed", (_what, body, message) => {
      const r = fetchList("domains", body, [], "names-refused.txt");
      expect(r.status).toBe(3);
      expect(r.last.event).toBe("malformed");
      expect(r.last.msg).toMatch(message);
    });

    it.each([
      ["a bare top-level domain", "example.com\ncom\n", [], /line 2: 'com' is a top-level domain/],
      ["the root", ".\n", [], /the root of the DNS/],
      [
        "a protected name",
        "ntp.example.org\n",
        ["--protect-name", "ntp.example.org"],
        /'ntp\.example\.org' is 'ntp\.example\.org' or a parent/,
      ],
      [
        "a parent of a protected name",
        "ads.example.com\nexample.org\n",
        ["--protect-name", "NTP.Example.org."],
        /line 2: 'example\.org' is 'ntp\.example\.org' or a parent/,
      ],
    ])("refuses %s as protected", (_what, body, extra, message) => {
      const r = fetchList("domains", body, extra as string[], "names-refused.txt");
      expect(r.status).toBe(3);
      expect(r.last.event).toBe("protected");
      expect(r.last.msg).toMatch(message);
    });

    it("takes names below a protected name (blocking pool.ntp.example.org leaves ntp.example.org working)", () => {
      const r = fetchList(
        "domains",
        "pool.ntp.example.org\nxample.org\n",
        ["--protect-name", "ntp.example.org"],
        "n2.txt",
      );
      expect(r.status).toBe(0);
      expect(read("n2.txt")).toBe("pool.ntp.example.org\nxample.org\n");
    });
  });

  describe("downloads that fail", () => {
    it.each([
      ["a server the CA bundle does not vouch for", ["--url", `https://${HOST}:${PORT}/x`], /certificate/],
      [
        "a server that is not there",
        ["--url", `https://${HOST}:${PORT + 1}/x`, "--ca-file", "CA"],
        /(refused|connect)/i,
      ],
      [
        "a larger download than --max-bytes",
        ["--url", "BIG", "--ca-file", "CA", "--max-bytes", "16"],
        /larger than 16 bytes/,
      ],
    ])("reports %s as a failed download (exit 1)", (_what, args, message) => {
      const resolved = (args as string[]).map((a) =>
        a === "CA" ? join(dir, "ca.pem") : a === "BIG" ? serve("10.0.0.0/8\n".repeat(10)) : a,
      );
      const r = fetch([...resolved, "--kind", "cidr", "--out", join(out, "failed.txt")]);
      expect(r.status).toBe(1);
      expect(r.last.event).toBe("download");
      expect(r.last.msg).toMatch(message);
    });

    it("rejects a URL other than https:// before fetching anything (exit 2, names the option)", () => {
      const r = fetch(["--url", `http://${HOST}:${PORT}/x`, "--kind", "cidr", "--out", join(out, "x.txt")]);
      expect(r.status).toBe(2);
      expect(r.last.event).toBe("usage");
      expect(r.last.msg).toMatch(/--url: expected an https:\/\/ URL/);
    });
  });

  describe("atomicity", () => {
    it("leaves the last good file byte for byte, same inode, and no temporary file, after every kind of failure", () => {
      expect(fetchList("cidr", "203.0.113.0/24\n", [], "kept.txt").status).toBe(0);
      const good = readFileSync(join(out, "kept.txt"));
      const ino = statSync(join(out, "kept.txt")).ino;
      const failures = [
        fetchList("cidr", "203.0.113.0/24\ngarbage\n", [], "kept.txt"),
        fetchList("cidr", "", [], "kept.txt"),
        fetchList("cidr", "0.0.0.0/0\n", [], "kept.txt"),
        fetchList("cidr", "203.0.113.0/24\n", ["--min-entries", "5"], "kept.txt"),
        fetch(["--url", `https://${HOST}:${PORT + 1}/x`, "--kind", "cidr", "--out", join(out, "kept.txt")]),
      ];
      expect(failures.map((f) => f.status)).toEqual([3, 3, 3, 3, 1]);
      expect(readFileSync(join(out, "kept.txt")).equals(good)).toBe(true);
      expect(statSync(join(out, "kept.txt")).ino).toBe(ino);
      expect(readdirSync(out).filter((f) => f.startsWith("."))).toEqual([]);
    });

    it("removes the temporary file a killed run left behind, and only for a dead process", () => {
      const dead = spawnSync("true").pid;
      writeFileSync(join(out, `.kept.txt.tmp.${dead}`), "half a list");
      writeFileSync(join(out, `.kept.txt.tmp.1`), "pid 1 is alive");
      expect(fetchList("cidr", "203.0.113.0/24\n", [], "kept.txt").status).toBe(0);
      expect(
        readdirSync(out)
          .filter((f) => f.startsWith("."))
          .sort(),
      ).toEqual([".kept.txt.tmp.1"]);
      rmSync(join(out, ".kept.txt.tmp.1"));
    });
  });

  describe("privileges", () => {
    it("reads the URL from stdin with --url - (kept off the command line)", () => {
      const url = serve("192.0.2.0/24\n");
      const r = fetch(
        ["--url", "-", "--kind", "cidr", "--out", join(out, "stdin.txt"), "--ca-file", join(dir, "ca.pem")],
        `${url}\n`,
      );
      expect(r.status).toBe(0);
      expect(read("stdin.txt")).toBe("192.0.2.0/24\n");
    });

    it("drops to --user when started as root, and cannot write where that user may not", () => {
      const mine = join(dir, "user4242");
      mkdirSync(mine);
      chownSync(mine, 4242, 4343);
      const r = fetch([
        "--url",
        serve("192.0.2.0/24\n"),
        "--kind",
        "cidr",
        "--out",
        join(mine, "l.txt"),
        "--ca-file",
        join(dir, "ca.pem"),
        "--user",
        "4242:4343",
      ]);
      expect(r.status).toBe(0);
      expect(statSync(join(mine, "l.txt"))).toMatchObject({ uid: 4242, gid: 4343 });
      // the output directory belongs to 65534, not to 4242
      const denied = fetch([
        "--url",
        serve("192.0.2.0/24\n"),
        "--kind",
        "cidr",
        "--out",
        join(out, "other.txt"),
        "--ca-file",
        join(dir, "ca.pem"),
        "--user",
        "4242",
      ]);
      expect(denied.status).toBe(4);
      expect(denied.last.event).toBe("local");
      expect(denied.last.msg).toMatch(/Permission denied/);
    });
  });

  describe("sandbox helpers", () => {
    type Row = Record<string, string | number>;
    let rows: Row[] = [];

    beforeAll(() => {
      const allowed = join(dir, "allowed");
      const other = join(dir, "other");
      mkdirSync(allowed);
      mkdirSync(other);
      chownSync(allowed, NOBODY, NOBODY);
      chmodSync(other, 0o1777); // world-writable, like /tmp: only the sandbox keeps the fetcher out
      const r = runTool<Row>("sandbox_test", ["--allowed", allowed, "--other", other]);
      expect(r.status, r.stderr).toBe(0);
      rows = r.lines;
    });
    const row = (check: string) => rows.find((r) => r.check === check)!;

    it("dp_drop_privileges leaves uid/gid 65534, no groups, every capability set empty, no_new_privs", () => {
      expect(row("status")).toMatchObject({
        Uid: "65534 65534 65534 65534",
        Gid: "65534 65534 65534 65534",
        Groups: "",
        CapInh: "0000000000000000",
        CapPrm: "0000000000000000",
        CapEff: "0000000000000000",
        CapBnd: "0000000000000000",
        CapAmb: "0000000000000000",
        NoNewPrivs: "1",
      });
    });

    it("dp_check_unprivileged refuses root", () => {
      expect(row("root")).toMatchObject({ rc: -1, why: expect.stringMatching(/uid\/gid 0 or holding a capability/) });
    });

    it("confines writes to the output directory and refuses ptrace and new user namespaces, while threads and name lookups still work", () => {
      const EACCES = 13;
      const EPERM = 1;
      // without the sandbox the same unprivileged process can do all of it
      expect(row("baseline")).toMatchObject({
        create_allowed: 0,
        create_other: 0,
        mkdir_other: 0,
        rename_out: 0,
        unlink_other: 0,
        clone_newuser: 0,
        unshare_user: 0,
        ptrace_traceme: 0,
        thread: 0,
        getaddrinfo: 0,
      });
      expect(row("confined")).toMatchObject({
        create_allowed: 0,
        create_other: EACCES,
        mkdir_other: EACCES,
        rename_out: EACCES,
        unlink_other: EACCES,
        clone_newuser: EPERM,
        unshare_user: EPERM,
        ptrace_traceme: EPERM,
        thread: 0,
        getaddrinfo: 0,
      });
    });
  });
});
