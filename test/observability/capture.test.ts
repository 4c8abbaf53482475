/**
 * Packet capture on demand (`npm run capture`, cli/capture.ts) against the fake node's `talosctl pcap`
 * (test/fixtures/fake-node/node.js models Talos' PacketCapture: the link by kernel name, the filter as tcpdump -dd
 * instructions run on each frame like the kernel's socket filter, the stream as a pcap file, --duration ending
 * it). The pcap the operator gets is read back by the real tcpdump.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FakeNode } from "../helpers/fake-node";
import { devBox, nodeOptions, rendered, talosconfig } from "../helpers/lifecycle-fixtures";
import { tempDir } from "../helpers/temp";
import { tier } from "../helpers/tier";

const CLI = resolve(__dirname, "../../cli/capture.ts");
const MGMT = "10.10.0.1";

/** An Ethernet/IPv4 frame with a TCP or UDP header and `size` bytes of payload (checksums left zero). */
function frame(src: string, dst: string, proto: "tcp" | "udp", sport: number, dport: number, size = 64): Buffer {
  const l4 = Buffer.alloc(proto === "tcp" ? 20 : 8);
  l4.writeUInt16BE(sport, 0);
  l4.writeUInt16BE(dport, 2);
  if (proto === "tcp") {
    l4[12] = 5 << 4;
    l4[13] = 0x18; // PSH|ACK
    l4.writeUInt16BE(65535, 14);
  } else l4.writeUInt16BE(8 + size, 4);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + l4.length + size, 2);
  ip[8] = 64;
  ip[9] = proto === "tcp" ? 6 : 17;
  src.split(".").forEach((o, i) => (ip[12 + i] = Number(o)));
  dst.split(".").forEach((o, i) => (ip[16 + i] = Number(o)));
  const eth = Buffer.from("02000000000102000000000208 00".replace(/ /g, ""), "hex");
  return Buffer.concat([eth, ip, l4, Buffer.alloc(size, 0x61)]);
}

/**
 * The dev box, its NICs carrying the aliases the dev site's LinkAliasConfig documents give them (by MAC); the fake
 * node adds the VLAN links (lan0.10 …) the running configuration creates.
 */
function box() {
  const b = devBox();
  const alias: Record<string, string> = { enp1s0: "wan0", enp2s0: "lan0", enp3s0: "wan1" };
  return { ...b, links: b.links.map((l) => ({ ...l, ...(alias[l.name] ? { alias: alias[l.name] } : {}) })) };
}

/** tcpdump's reading of a pcap: one line per packet; its complaints on stderr. */
function readPcap(file: string): { lines: string[]; stderr: string; code: number | null } {
  const r = spawnSync("tcpdump", ["-nn", "-r", file], { encoding: "utf8" });
  return { lines: r.stdout.split("\n").filter(Boolean), stderr: r.stderr, code: r.status };
}

let node: FakeNode | undefined;
let running: string | undefined;

/** The router, installed and running the dev site's configuration, with these links. */
async function start(identity = box()): Promise<FakeNode> {
  running ??= rendered().config;
  return await FakeNode.start(nodeOptions({ identity, installed: true, bootstrapped: true, savedConfig: running }));
}
let dir: string;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});
const t = tier("packet capture", { commands: ["tcpdump"] });

async function run(args: string) {
  node ??= await start();
  dir = tempDir("capture-");
  return await node.run(`${process.execPath} --import tsx ${CLI} ${args}`, {
    env: { ROUTER_TALOSCONFIG: talosconfig(), D: dir },
    cwd: resolve(__dirname, "../.."),
  });
}

describe.skipIf(!t.ok)("packet capture on demand", () => {
  it("captures what the filter keeps on a WAN named by its alias, into a pcap the operator reads, ending at --seconds", async () => {
    node = await start();
    await node.traffic("enp1s0", [
      frame("198.51.100.7", "203.0.113.2", "tcp", 40000, 443),
      frame("198.51.100.8", "203.0.113.2", "udp", 5353, 53),
      frame("203.0.113.2", "198.51.100.7", "tcp", 443, 40000),
    ]);
    const r = await run("--link wan0 --filter 'tcp port 443' --seconds 1 --out $D/wan0.pcap");
    expect(r.code, r.stderr).toBe(0);
    const pcap = readPcap(join(dir, "wan0.pcap"));
    expect(pcap.code, pcap.stderr).toBe(0);
    expect(pcap.lines.length).toBeGreaterThan(10);
    expect(
      pcap.lines.every((l) =>
        / IP 198\.51\.100\.7\.40000 > 203\.0\.113\.2\.443: | IP 203\.0\.113\.2\.443 > 198\.51\.100\.7\.40000: /.test(l),
      ),
    ).toBe(true);
    // On the kernel name the alias stands for, and the stream ended by talosctl's --duration.
    const pcapCall = r.calls.find((c) => c.sub === "pcap")!;
    expect(pcapCall.argv).toEqual(expect.arrayContaining(["--interface", "enp1s0", "--duration", "1s", "-o", "-"]));
    expect(await node.captures()).toEqual([expect.objectContaining({ link: "enp1s0", ended: "duration" })]);
    expect(r.stderr).toMatch(
      new RegExp(
        `capture: ${pcap.lines.length} packets, \\d+ bytes on wan0 \\(enp1s0\\) into ${dir}/wan0.pcap; ended at the time bound`,
      ),
    );
    // The admin talosconfig went through a pipe, never a file or the command line.
    expect(pcapCall.files?.["--talosconfig"]).toMatchObject({ kind: "pipe" });
    expect(r.calls.flatMap((c) => c.argv).join(" ")).not.toContain("PRIVATE KEY");
  });

  it("stops at --max-size with whole packets only, the file never larger", async () => {
    node = await start();
    await node.traffic("enp1s0", [frame("198.51.100.7", "203.0.113.2", "udp", 40000, 9999, 958)], 2);
    const r = await run("--link wan0 --max-size 10KB --seconds 30 --out $D/big.pcap");
    expect(r.code, r.stderr).toBe(0);
    expect(r.seconds).toBeLessThan(20);
    const file = join(dir, "big.pcap");
    const pcap = readPcap(file);
    expect(pcap.code, pcap.stderr).toBe(0);
    expect(pcap.stderr).not.toMatch(/truncated/);
    // 24-byte header, then records of 16 + 1000 bytes: as many as fit in 10 000 bytes.
    expect(statSync(file).size).toBe(24 + 9 * 1016);
    expect(pcap.lines).toHaveLength(9);
    expect(r.stderr).toMatch(/ended at the size bound/);
    const [c] = await node.captures();
    expect(c.ended).toBe("client gone");
  });

  it("never captures its own Talos API stream on the management link", async () => {
    node = await start();
    await node.traffic("lan0.10", [
      frame(MGMT, "10.10.0.50", "tcp", 50000, 51000),
      frame("10.10.0.50", MGMT, "tcp", 51000, 50000),
      frame("10.10.0.2", MGMT, "udp", 40000, 9999),
    ]);
    const r = await run("--link lan0.10 --filter 'host 10.10.0.1' --seconds 1 --out $D/mgmt.pcap");
    expect(r.code, r.stderr).toBe(0);
    const pcap = readPcap(join(dir, "mgmt.pcap"));
    expect(pcap.lines.length).toBeGreaterThan(10);
    expect(pcap.lines.filter((l) => !l.includes("10.10.0.2.40000 > 10.10.0.1.9999: UDP"))).toEqual([]);
  });

  it("refuses bad arguments, every problem at once and naming its flag, before anything reaches the node", async () => {
    const r = await run("--link eth9 --seconds 99999 --max-size 1TB");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /--link: "eth9" is not a link of site lab; one of: wan0 \(WAN wan0\), wan1 \(WAN wan1\), lan0 \(trunk of 5 VLANs \(tagged frames\)\), lan0\.10 \(segment mgmt \(VLAN 10\)\)/,
    );
    expect(r.stderr).toMatch(/--seconds: "99999" is not a whole number of seconds from 1 to 3600/);
    expect(r.stderr).toMatch(/--max-size: "1TB" is not a size/);
    expect(r.stderr).toMatch(/--out: missing/);
    expect(r.calls).toEqual([]);
    expect(existsSync(join(dir, "x.pcap"))).toBe(false);
  });

  it("a filter tcpdump cannot compile stops before the capture, with tcpdump's reason", async () => {
    const r = await run("--link wan0 --filter 'port https-ish' --out $D/x.pcap");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/capture: --filter: tcpdump: .*https-ish/);
    expect(r.calls.map((c) => c.sub)).toEqual(["get"]);
    expect(existsSync(join(dir, "x.pcap"))).toBe(false);
  });

  it("a link the node does not have stops the command before any capture", async () => {
    const b = box();
    // Without the trunk's NIC, the node has neither lan0 nor the VLAN links on it.
    node = await start({ ...b, links: b.links.filter((l) => l.name !== "enp2s0") });
    const r = await run("--link lan0.10 --out $D/x.pcap");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the node has no link named lan0\.10/);
    expect(readFileSync(join(node.dir, "calls.jsonl"), "utf8")).not.toMatch(/"pcap"/);
  });
});
