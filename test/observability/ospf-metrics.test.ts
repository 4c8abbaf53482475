/**
 * router-ospf-metrics (images/observability) against status files as the bird pod's status container writes them
 * (images/services/router-ospf-status), stamped with this machine's own uptime and boot id: the exact metrics of a
 * fresh status; readable 0 and no neighbour for a stale, unanswered, junk or missing one, and for one left from an
 * earlier boot; neighbours with odd fields left out or escaped. `promtool check metrics` checks every file's
 * exposition format, and the node exporter's textfile collector reads them without error. The loop outlives bad
 * input and never leaves a half-written file.
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OSPF_DEAD_S } from "../../components/network-services/bird";
import { OSPF_STATUS_INTERVAL } from "../../components/network-services/k8s";
import { freePort } from "../helpers/registry";
import { ROOT } from "../helpers/stacks";
import { tempDir } from "../helpers/temp";
import { tier } from "../helpers/tier";
import { sleep, waitFor } from "../helpers/wait";

const SCRIPT = join(ROOT, "images/observability/router-ospf-metrics");
const STATUS_SCRIPT = join(ROOT, "images/services/router-ospf-status");
const t = tier("OSPF neighbour metrics (the script, jq, promtool, the node exporter)", {
  commands: ["jq", "head", "promtool", "prometheus-node-exporter"],
});

/** The node's uptime and boot id now, as the status container reads them. */
function node(): { uptime: number; boot: string } {
  return {
    uptime: Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]),
    boot: readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim(),
  };
}

const N254 = { routerId: "10.50.0.254", interface: "lan0.50", address: "10.50.0.254" };
const L254 = 'router_id="10.50.0.254",interface="lan0.50",address="10.50.0.254"';
const L253 = 'router_id="10.50.0.253",interface="lan0.50",address="10.50.0.253"';
const L61 = 'router_id="10.61.0.9",interface="lan0.61",address="10.61.0.9"';

const FULL_HEAD = [
  "# HELP router_ospf_neighbour_full 1 while the adjacency with the OSPF neighbour is Full.",
  "# TYPE router_ospf_neighbour_full gauge",
];
const AGE_HEAD = [
  "# HELP router_ospf_neighbour_hello_age_seconds Seconds from the neighbour's last hello to the status.",
  "# TYPE router_ospf_neighbour_hello_age_seconds gauge",
];
const tail = (readable: 0 | 1) => [
  "# HELP router_ospf_status_readable 0 when the OSPF status is missing, unusable or stale.",
  "# TYPE router_ospf_status_readable gauge",
  `router_ospf_status_readable ${readable}`,
  "# HELP router_ospf_metrics_timestamp_seconds When the OSPF status was last read.",
  "# TYPE router_ospf_metrics_timestamp_seconds gauge",
  "router_ospf_metrics_timestamp_seconds T",
];
const UNREADABLE = [...tail(0), ""].join("\n");

interface Run {
  /** The file, its timestamp's value replaced by T. */
  text: string;
  stderr: string;
  dir: string;
}

/**
 * Runs the script once (the collector's own arguments: OSPF's dead interval, the status interval) on `status`
 * (written as given; a value that is not a string as JSON; undefined: no file). Checks the run's exit, the
 * timestamp (now) and the exposition format (promtool).
 */
function collect(status: unknown): Run {
  const dir = tempDir("ospf-metrics-");
  const file = join(dir, "ospf.json");
  if (status !== undefined) writeFileSync(file, typeof status === "string" ? status : JSON.stringify(status));
  const out = join(dir, "ospf.prom");
  const before = Math.floor(Date.now() / 1000);
  const r = spawnSync(SCRIPT, [file, String(OSPF_DEAD_S), String(OSPF_STATUS_INTERVAL), out, "0"], {
    encoding: "utf8",
    timeout: 10_000,
  });
  expect(r.status, r.stderr).toBe(0);
  const raw = readFileSync(out, "utf8");
  const check = spawnSync("promtool", ["check", "metrics"], { input: raw, encoding: "utf8" });
  expect(check.status, `${check.stdout}${check.stderr}\n${raw}`).toBe(0);
  const stamp = Number(/^router_ospf_metrics_timestamp_seconds (\d+)$/m.exec(raw)?.[1]);
  expect(stamp).toBeGreaterThanOrEqual(before);
  expect(stamp).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
  return { text: raw.replace(/^(router_ospf_metrics_timestamp_seconds) \d+$/m, "$1 T"), stderr: r.stderr, dir };
}

/** A fresh status: this boot, written a second ago. */
function fresh(over: Record<string, unknown> = {}): Record<string, unknown> {
  const n = node();
  return { uptime: Math.max(0, n.uptime - 1), boot: n.boot, readable: true, neighbours: [], ...over };
}

describe.skipIf(!t.ok)("router-ospf-metrics", () => {
  it("writes each listed neighbour's state and the age of its last hello from a fresh status", () => {
    const r = collect(
      fresh({
        neighbours: [
          { ...N254, state: "Full", role: "DR", deadIn: 36.5 },
          // a DROther pair stays 2-Way; its timer is that of any neighbour
          {
            routerId: "10.50.0.253",
            interface: "lan0.50",
            address: "10.50.0.253",
            state: "2-Way",
            role: "Other",
            deadIn: 31.25,
          },
          // no dead timer (BIRD's -Inf-): no hello age
          {
            routerId: "10.61.0.9",
            interface: "lan0.61",
            address: "10.61.0.9",
            state: "ExStart",
            role: "Other",
            deadIn: -1,
          },
        ],
      }),
    );
    expect(r.text).toBe(
      [
        ...FULL_HEAD,
        `router_ospf_neighbour_full{${L253}} 0`,
        `router_ospf_neighbour_full{${L254}} 1`,
        `router_ospf_neighbour_full{${L61}} 0`,
        ...AGE_HEAD,
        `router_ospf_neighbour_hello_age_seconds{${L253}} 8.75`,
        `router_ospf_neighbour_hello_age_seconds{${L254}} 3.5`,
        ...tail(1),
        "",
      ].join("\n"),
    );
    expect(r.stderr).toBe("");
  });

  it("says whether BIRD runs the previous OSPF keys after a failed trial, and only with authentication", () => {
    const KEYS_HEAD = [
      "# HELP router_ospf_keys_reverted 1 while BIRD runs the previous OSPF keys: the Secret's new ones failed their trial or were refused.",
      "# TYPE router_ospf_keys_reverted gauge",
    ];
    const text = (keys: string | undefined) => collect(fresh(keys === undefined ? {} : { keys, keysAt: 100 })).text;
    for (const [keys, value] of [
      ["reverted", 1],
      ["refused", 1],
      ["trial", 0],
      ["confirmed", 0],
      ["in-use", 0],
    ] as const)
      expect(text(keys), keys).toBe(
        [...FULL_HEAD, ...AGE_HEAD, ...KEYS_HEAD, `router_ospf_keys_reverted ${value}`, ...tail(1), ""].join("\n"),
      );
    // without authentication (or a status from before keys were reported): no series at all
    for (const keys of ["none", undefined])
      expect(text(keys), String(keys)).toBe([...FULL_HEAD, ...AGE_HEAD, ...tail(1), ""].join("\n"));
  });

  it("writes a status without neighbours as readable with no neighbour series", () => {
    expect(collect(fresh()).text).toBe([...FULL_HEAD, ...AGE_HEAD, ...tail(1), ""].join("\n"));
  });

  it("accepts a status without a boot id (the uptime alone tells it fresh)", () => {
    const { boot: _boot, ...status } = fresh({ neighbours: [{ ...N254, state: "Full", role: "DR", deadIn: 39.488 }] });
    expect(collect(status).text).toBe(
      [
        ...FULL_HEAD,
        `router_ospf_neighbour_full{${L254}} 1`,
        ...AGE_HEAD,
        `router_ospf_neighbour_hello_age_seconds{${L254}} 0.512`,
        ...tail(1),
        "",
      ].join("\n"),
    );
  });

  // Each of these would otherwise pass for the router's neighbours now: a stale file keeps the adjacencies of the
  // moment the bird pod stopped, and a junk file has none, which would read as every neighbour lost.
  it.each([
    ["no file", undefined, /no status file/],
    ["an empty file", "", /holds 0 JSON values/],
    ["junk", "BIRD 2.0.12 ready.\n", /not JSON/],
    ["a truncated object", '{"uptime": 12.5, "readable": tr', /not JSON/],
    // jq 1.6 reads a leading NUL as a value of its own (more than one value); later versions refuse it
    ["NUL bytes around a status", () => `\0${JSON.stringify(fresh())}\0`, /holds [2-9] JSON values|not JSON/],
    ["two objects", () => `${JSON.stringify(fresh())}\n${JSON.stringify(fresh())}`, /holds 2 JSON values/],
    ["an array", () => JSON.stringify([fresh()]), /a JSON array, not an object/],
    ["no uptime", () => ({ ...fresh(), uptime: "12.5" }), /no uptime/],
    ["no neighbour list", () => fresh({ neighbours: { "10.50.0.254": "Full" } }), /no neighbour list/],
    [
      "BIRD not answering",
      () => fresh({ readable: false, error: "birdc failed (exit 1): Unable to connect" }),
      /BIRD did not answer: birdc failed \(exit 1\): Unable to connect/,
    ],
    // the bird pod stopped a minute ago and left its last status
    [
      "a stale status",
      () => fresh({ uptime: node().uptime - 60, neighbours: [{ ...N254, state: "Full", deadIn: 35 }] }),
      /stale: written at uptime/,
    ],
    // three status intervals and a little: the limit
    [
      "a status just too old",
      () =>
        fresh({
          uptime: node().uptime - 3 * OSPF_STATUS_INTERVAL - 1,
          neighbours: [{ ...N254, state: "Full", deadIn: 35 }],
        }),
      /stale/,
    ],
    // written before a reboot, later in that boot's life than the node is in this one
    [
      "a status from after the node's uptime",
      () => fresh({ uptime: node().uptime + 3600, neighbours: [{ ...N254, state: "Full", deadIn: 35 }] }),
      /stale/,
    ],
    // written before a reboot at an uptime the node has reached again
    [
      "a status of an earlier boot",
      () => fresh({ boot: randomUUID(), neighbours: [{ ...N254, state: "Full", deadIn: 35 }] }),
      /earlier boot/,
    ],
  ])("writes %s as unreadable, with no neighbour, and logs why", (_name, status, why) => {
    const r = collect(typeof status === "function" ? status() : status);
    expect(r.text).toBe(UNREADABLE);
    expect(r.stderr).toMatch(why);
  });

  it("writes a directory in the file's place as unreadable", () => {
    const dir = tempDir("ospf-metrics-dir-");
    mkdirSync(join(dir, "ospf.json"));
    const out = join(dir, "ospf.prom");
    const r = spawnSync(SCRIPT, [join(dir, "ospf.json"), "40", "5", out, "0"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(out, "utf8")).toMatch(/^router_ospf_status_readable 0$/m);
  });

  it("leaves out neighbours it cannot label and escapes what it writes", async () => {
    const r = collect(
      fresh({
        neighbours: [
          { ...N254, state: "Full", role: "DR", deadIn: 36.5 },
          // listed twice: written once
          { ...N254, state: "Full", role: "DR", deadIn: 36.5 },
          // quotes, a backslash and a newline in a label value would end the sample's line early
          { routerId: "10.50.0.9", interface: 'lan"0\\50\n', address: "10.50.0.9", state: "Full", deadIn: 30 },
          // no address, a router id that is a number, an empty interface: nothing to name the series by
          { routerId: "10.50.0.8", interface: "lan0.50", state: "Full", deadIn: 30 },
          { routerId: 1, interface: "lan0.50", address: "10.50.0.7", state: "Full", deadIn: 30 },
          { routerId: "10.50.0.6", interface: "", address: "10.50.0.6", state: "Full", deadIn: 30 },
          "10.50.0.5",
          null,
          // no state, a timer that is not a number, a timer beyond the dead interval: not Full, no age
          { routerId: "10.50.0.4", interface: "lan0.50", address: "10.50.0.4", deadIn: "soon" },
          { routerId: "10.50.0.3", interface: "lan0.50", address: "10.50.0.3", state: "full", deadIn: OSPF_DEAD_S + 1 },
        ],
      }),
    );
    const l = (id: string) => `router_id="10.50.0.${id}",interface="lan0.50",address="10.50.0.${id}"`;
    const odd = 'router_id="10.50.0.9",interface="lan\\"0\\\\50\\n",address="10.50.0.9"';
    expect(r.text).toBe(
      [
        ...FULL_HEAD,
        `router_ospf_neighbour_full{${l("254")}} 1`,
        `router_ospf_neighbour_full{${l("3")}} 0`,
        `router_ospf_neighbour_full{${l("4")}} 0`,
        `router_ospf_neighbour_full{${odd}} 1`,
        ...AGE_HEAD,
        `router_ospf_neighbour_hello_age_seconds{${l("254")}} 3.5`,
        `router_ospf_neighbour_hello_age_seconds{${odd}} 10`,
        ...tail(1),
        "",
      ].join("\n"),
    );
    // the node exporter reads the escaped interface back as it was
    const scraped = await nodeExporterReads(r.dir);
    expect(scraped).toMatch(/^node_textfile_scrape_error 0$/m);
    expect(scraped).toContain(
      `router_ospf_neighbour_full{address="10.50.0.9",interface="lan\\"0\\\\50\\n",router_id="10.50.0.9"} 1`,
    );
  });

  it("reads what the bird pod's status container writes (router-ospf-status, on BIRD 2's neighbour table)", () => {
    const dir = tempDir("ospf-metrics-producer-");
    // birdc as BIRD 2.0.12 answers `show ospf neighbors router_ospf` (DTime in seconds)
    mkdirSync(join(dir, "bin"));
    writeFileSync(
      join(dir, "bin/birdc"),
      [
        "#!/bin/sh",
        "cat <<'EOF'",
        "BIRD 2.0.12 ready.",
        "router_ospf:",
        "Router ID   \tPri\t     State     \tDTime\tInterface  Router IP",
        "10.50.0.254 \t  1\tFull/DR     \t36.488\tlan0.50    10.50.0.254",
        "10.50.0.253 \t  1\t2-Way/Other \t31.000\tlan0.50    10.50.0.253",
        "EOF",
        "",
      ].join("\n"),
    );
    chmodSync(join(dir, "bin/birdc"), 0o755);
    const status = join(dir, "ospf.json");
    const w = spawnSync(STATUS_SCRIPT, ["--once", join(dir, "bird.ctl"), status], {
      encoding: "utf8",
      env: { ...process.env, PATH: `${join(dir, "bin")}:${process.env.PATH}` },
    });
    expect(w.status, w.stderr).toBe(0);
    const r = collect(readFileSync(status, "utf8"));
    expect(r.text).toBe(
      [
        ...FULL_HEAD,
        `router_ospf_neighbour_full{${L253}} 0`,
        `router_ospf_neighbour_full{${L254}} 1`,
        ...AGE_HEAD,
        `router_ospf_neighbour_hello_age_seconds{${L253}} 9`,
        `router_ospf_neighbour_hello_age_seconds{${L254}} 3.512`,
        ...tail(1),
        "",
      ].join("\n"),
    );
  });

  it("exits 2 on bad arguments", () => {
    for (const args of [
      [],
      ["s", "40", "5", "o"],
      ["s", "forty", "5", "o", "0"],
      ["s", "40", "0", "o", "0"],
      ["s", "40", "5", "o", "-1"],
    ]) {
      const r = spawnSync(SCRIPT, args, { encoding: "utf8" });
      expect(r.status, args.join(" ")).toBe(2);
    }
  });
});

/** Starts the node exporter with only its textfile collector on `dir`; returns what /metrics serves. */
async function nodeExporterReads(dir: string): Promise<string> {
  const port = await freePort();
  const p = spawn(
    "prometheus-node-exporter",
    [
      `--web.listen-address=127.0.0.1:${port}`,
      "--collector.disable-defaults",
      "--collector.textfile",
      `--collector.textfile.directory=${dir}`,
    ],
    { stdio: "ignore" },
  );
  try {
    return await waitFor(
      "the node exporter to serve /metrics",
      () =>
        fetch(`http://127.0.0.1:${port}/metrics`)
          .then((r) => (r.ok ? r.text() : undefined))
          .catch(() => undefined),
      10_000,
      100,
    );
  } finally {
    p.kill();
  }
}

describe.skipIf(!t.ok)("router-ospf-metrics, looping", () => {
  let child: ReturnType<typeof spawn> | undefined;
  afterEach(() => {
    child?.kill("SIGKILL");
    child = undefined;
  });

  it("outlives missing, junk and stale statuses, follows the status as it changes, and never leaves a half file", async () => {
    const dir = tempDir("ospf-metrics-loop-");
    const file = join(dir, "ospf.json");
    const out = join(dir, "ospf.prom");
    let stderr = "";
    child = spawn(SCRIPT, [file, String(OSPF_DEAD_S), String(OSPF_STATUS_INTERVAL), out, "1"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((res) => child!.once("exit", (code) => res(code)));
    // Every read of the file while the script rewrites it once a second: always whole (it ends with the
    // timestamp's sample) and valid for promtool.
    const reads: string[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) {
        try {
          reads.push(readFileSync(out, "utf8"));
        } catch {
          // not written yet
        }
        await sleep(5);
      }
    })();
    const readable = (v: 0 | 1) => () => {
      try {
        return new RegExp(`^router_ospf_status_readable ${v}$`, "m").test(readFileSync(out, "utf8"));
      } catch {
        return false;
      }
    };
    const full = `router_ospf_neighbour_full{${L254}} 1`;
    const has = (line: string) => () => {
      try {
        return readFileSync(out, "utf8").includes(line);
      } catch {
        return false;
      }
    };
    try {
      await waitFor("readable 0 without a file", readable(0), 5000);
      writeFileSync(file, JSON.stringify(fresh({ neighbours: [{ ...N254, state: "Full", deadIn: 38 }] })));
      await waitFor("the neighbour Full", has(full), 5000);
      writeFileSync(file, '{"uptime": ');
      await waitFor("readable 0 on junk", readable(0), 5000);
      writeFileSync(file, JSON.stringify(fresh({ neighbours: [{ ...N254, state: "Loading", deadIn: 38 }] })));
      await waitFor("the neighbour Loading", has(`router_ospf_neighbour_full{${L254}} 0`), 5000);
      writeFileSync(
        file,
        JSON.stringify(fresh({ uptime: node().uptime - 600, neighbours: [{ ...N254, state: "Full", deadIn: 38 }] })),
      );
      await waitFor("readable 0 on a stale status", readable(0), 5000);
      // three more reads of the same stale status (its times move on): the reason is logged once
      await sleep(3500);
      expect(stderr.match(/stale/g), stderr).toHaveLength(1);
      writeFileSync(file, JSON.stringify(fresh({ neighbours: [{ ...N254, state: "Full", deadIn: 38 }] })));
      await waitFor("the neighbour Full again", has(full), 5000);
      await waitFor("the log saying the status is usable again", () => /usable again/.test(stderr), 5000);
    } finally {
      reading = false;
      await reader;
    }
    expect(child.exitCode, stderr).toBeNull();
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    child = undefined;

    expect(reads.length).toBeGreaterThan(100);
    const whole = /\nrouter_ospf_metrics_timestamp_seconds \d+\n$/;
    expect(reads.filter((r) => !whole.test(r))).toEqual([]);
    const distinct = [...new Set(reads)];
    for (const text of distinct) {
      const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
      expect(check.status, `${check.stdout}${check.stderr}\n${text}`).toBe(0);
    }
    // each bad status said why, once
    expect(stderr).toMatch(/no status file/);
    expect(stderr).toMatch(/not JSON/);
    expect(stderr).toMatch(/stale/);
  }, 60_000);

  it("writes files the node exporter exports without a textfile error, fresh or not", async () => {
    const current = collect(fresh({ neighbours: [{ ...N254, state: "Full", deadIn: 36.5 }] }));
    const stale = collect(fresh({ uptime: 1 }));
    const text = await nodeExporterReads(current.dir);
    expect(text).toMatch(/^node_textfile_scrape_error 0$/m);
    expect(text).toContain(
      `router_ospf_neighbour_full{address="10.50.0.254",interface="lan0.50",router_id="10.50.0.254"} 1`,
    );
    expect(text).toContain(
      `router_ospf_neighbour_hello_age_seconds{address="10.50.0.254",interface="lan0.50",router_id="10.50.0.254"} 3.5`,
    );
    expect(text).toMatch(/^router_ospf_status_readable 1$/m);
    const unreadable = await nodeExporterReads(stale.dir);
    expect(unreadable).toMatch(/^node_textfile_scrape_error 0$/m);
    expect(unreadable).toMatch(/^router_ospf_status_readable 0$/m);
    expect(unreadable).not.toContain("router_ospf_neighbour_full{");
  });
});
