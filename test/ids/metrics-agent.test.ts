/**
 * The IDS metrics agent (images/ids/router-ids-metrics) on its own: EVE records as Suricata's unix_dgram output
 * sends them (one JSON object per datagram), written here by hand in the shape of Suricata 7's alert and stats
 * records (output-json-alert.c, output-json-stats.c), and the metrics file it must write from them — labels kept
 * to the bounded sets, what is not EVE counted apart, Suricata's own counters passed on as they are. And the inline
 * queues from a queue table written here in the kernel's format (the real table: test/ids/inline-bypass.test.ts),
 * and from one it cannot parse.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/stacks";
import { tempDir } from "../helpers/temp";
import { tier } from "../helpers/tier";
import { waitFor } from "../helpers/wait";

const t = tier("ids metrics agent", { commands: ["/usr/bin/python3", "socat"] });
const AGENT = join(ROOT, "images/ids/router-ids-metrics");

/** Sends one datagram to a unix datagram socket (Node has no AF_UNIX datagrams: socat, as Suricata would). */
function send(path: string, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn("socat", ["-u", "STDIN", `UNIX-SENDTO:${path}`]);
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`socat exited ${code}`))));
    p.stdin.end(text);
  });
}

describe.skipIf(!t.ok)("the IDS metrics agent", () => {
  const dir = tempDir("ids-metrics-agent-");
  const out = join(dir, "ids.prom");
  const sock = { ids: join(dir, "ids.sock"), ips: join(dir, "ips.sock") };
  let agent: ChildProcess | undefined;
  afterAll(() => agent?.kill("SIGTERM"));

  it("counts alerts by process, severity and action, and passes Suricata's counters on", async () => {
    agent = spawn(
      "/usr/bin/python3",
      [AGENT, "--socket", `ids=${sock.ids}`, "--socket", `ips=${sock.ips}`, "--out", out, "--interval", "0.2"],
      { stdio: "inherit" },
    );
    await waitFor("the agent's sockets", () => (existsSync(sock.ids) && existsSync(sock.ips) ? true : undefined));
    const alert = (severity: unknown, action: string) =>
      JSON.stringify({
        event_type: "alert",
        src_ip: "203.0.113.66",
        alert: { action, gid: 1, signature_id: 9100003, severity, signature: "x" },
      });
    await send(sock.ids, alert(1, "allowed"));
    await send(sock.ids, alert(1, "allowed"));
    await send(sock.ips, alert(2, "blocked"));
    await send(sock.ids, alert(255, "allowed")); // not one of Suricata's four severities
    await send(sock.ids, "not json");
    await send(
      sock.ids,
      JSON.stringify({
        event_type: "stats",
        stats: { decoder: { pkts: 1500 }, capture: { kernel_packets: 1600, kernel_drops: 100 } },
      }),
    );
    await send(
      sock.ips,
      JSON.stringify({
        event_type: "stats",
        stats: { decoder: { pkts: 40 }, ips: { accepted: 38, blocked: 2, rejected: 0, replaced: 0 } },
      }),
    );
    const text = await waitFor(
      "the metrics file with every record",
      () => {
        const s = existsSync(out) ? readFileSync(out, "utf8") : "";
        return s.includes("router_ids_bad_records_total 1") && s.includes('verdict="blocked"') ? s : undefined;
      },
      5_000,
      100,
    );
    const samples = text.split("\n").filter((l) => l && !l.startsWith("#"));
    expect(samples.sort()).toEqual(
      [
        'router_ids_alerts_total{process="ids",severity="1",action="allowed"} 2',
        'router_ids_alerts_total{process="ids",severity="other",action="allowed"} 1',
        'router_ids_alerts_total{process="ips",severity="2",action="blocked"} 1',
        'router_ids_packets_total{process="ids"} 1500',
        'router_ids_packets_total{process="ips"} 40',
        'router_ids_capture_kernel_packets_total{process="ids"} 1600',
        'router_ids_capture_kernel_drops_total{process="ids"} 100',
        'router_ids_ips_packets_total{process="ips",verdict="accepted"} 38',
        'router_ids_ips_packets_total{process="ips",verdict="blocked"} 2',
        'router_ids_ips_packets_total{process="ips",verdict="rejected"} 0',
        'router_ids_ips_packets_total{process="ips",verdict="replaced"} 0',
        "router_ids_bad_records_total 1",
        ...samples.filter((l) => l.startsWith("router_ids_stats_timestamp_seconds")),
      ].sort(),
    );
    const now = Date.now() / 1000;
    const stamps = samples.filter((l) => l.startsWith("router_ids_stats_timestamp_seconds"));
    expect(stamps.map((l) => l.replace(/ .*/, ""))).toEqual([
      'router_ids_stats_timestamp_seconds{process="ids"}',
      'router_ids_stats_timestamp_seconds{process="ips"}',
    ]);
    for (const l of stamps) expect(Math.abs(Number(l.split(" ")[1]) - now)).toBeLessThan(30);
  }, 20_000);

  it("reports the inline queues from the kernel's table, and says when it cannot read it", async () => {
    // The table's lines as net/netfilter/nfnetlink_queue.c seq_show prints them ("%5u %6u %5u %1u %5u %5u %5u %8u
    // %2d": queue_num peer_portid queue_total copy_mode copy_range queue_dropped queue_user_dropped id_sequence 1);
    // queue 7 is bound, 8 has no line (no listener), 5 is outside the agent's range.
    const table = join(dir, "nfnetlink_queue");
    writeFileSync(
      table,
      "    5   4242     0 2 65531     0     0       10  1\n    7   4243     3 2 65531    12     4     1500  1\n",
    );
    const out2 = join(dir, "queues.prom");
    const run = (file: string) =>
      spawnSync(
        "timeout",
        [
          "1",
          "/usr/bin/python3",
          AGENT,
          "--socket",
          `ids=${join(dir, "q.sock")}`,
          "--out",
          out2,
          "--nfqueue",
          "7-8",
          "--nfqueue-table",
          file,
        ],
        { encoding: "utf8" },
      );
    run(table);
    const samples = readFileSync(out2, "utf8")
      .split("\n")
      .filter((l) => l.startsWith("router_ids_queue"));
    expect(samples).toEqual([
      "router_ids_queue_table_readable 1",
      'router_ids_queue_listening{queue="7"} 1',
      'router_ids_queue_listening{queue="8"} 0',
      'router_ids_queue_packets_total{queue="7"} 1500',
      'router_ids_queue_backlog_packets{queue="7"} 3',
      'router_ids_queue_dropped_total{queue="7",reason="full"} 12',
      'router_ids_queue_dropped_total{queue="7",reason="socket"} 4',
    ]);
    writeFileSync(table, "garbled\n");
    run(table);
    const garbled = readFileSync(out2, "utf8")
      .split("\n")
      .filter((l) => l.startsWith("router_ids_queue"));
    expect(garbled).toEqual([
      "router_ids_queue_table_readable 0",
      'router_ids_queue_listening{queue="7"} 0',
      'router_ids_queue_listening{queue="8"} 0',
    ]);
  });
});
