/**
 * Network namespaces for kernel tests of the rendered configuration: named with a tag of this process (they are
 * global on the machine), veth pairs between them, commands inside them, TCP servers that answer with their own
 * name and the peer address they see, and a TCP prober that tells reached, refused (a reset), rejected (ICMP
 * administratively prohibited) and dropped (no answer) apart. Everything made here is removed by `close`.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A TCP server: answers every connection with `<label> <peer address>` and closes it. */
const SERVER = `
const net = require("node:net");
const [label, ...ports] = process.argv.slice(2);
let up = 0;
for (const port of ports) {
  const s = net.createServer((c) => c.end(label + " " + c.remoteAddress.replace(/^::ffff:/, "") + "\\n"));
  s.listen({ port: Number(port), host: "::", ipv6Only: false }, () => { if (++up === ports.length) console.log("ready"); });
}
`;

/** A TCP probe: connects from `src` to `dst`:`port` and prints one outcome line. */
const PROBE = `
const net = require("node:net");
const [dst, port, src, ms] = process.argv.slice(2);
const s = net.connect({ host: dst, port: Number(port), localAddress: src || undefined });
let data = "";
const done = (line) => { console.log(line); process.exit(0); };
s.setTimeout(Number(ms), () => done("dropped"));
s.on("data", (d) => (data += d));
s.on("end", () => done("reached " + data.trim()));
s.on("error", (e) => done(e.code === "ECONNREFUSED" ? "refused" : e.code === "EHOSTUNREACH" || e.code === "ENETUNREACH" ? "rejected " + e.code : "error " + e.code));
`;

export type Outcome =
  { kind: "reached"; answer: string } | { kind: "refused" | "rejected" | "dropped" | "error"; answer?: undefined };

export class Netns {
  private readonly made: string[] = [];
  private readonly children: ChildProcess[] = [];
  private scratch = "";

  /** `tag` names this test's namespaces (with the process id, so two runs never share one). */
  constructor(private readonly tag: string) {}

  /**
   * This test's scratch directory (the server and probe scripts, batch files), made on first use: a test file
   * whose tier is skipped still constructs its Netns in the describe body, and must leave nothing behind.
   */
  get dir(): string {
    if (!this.scratch) {
      this.scratch = mkdtempSync(join(tmpdir(), "netns-"));
      writeFileSync(join(this.scratch, "server.js"), SERVER);
      writeFileSync(join(this.scratch, "probe.js"), PROBE);
    }
    return this.scratch;
  }

  /** The global name of a namespace of this test. */
  name(ns: string): string {
    return `${this.tag}${ns}${process.pid % 100000}`;
  }

  add(...names: string[]): void {
    for (const n of names) {
      run("ip", ["netns", "del", this.name(n)], false);
      run("ip", ["netns", "add", this.name(n)]);
      this.made.push(this.name(n));
      this.exec(n, ["ip", "link", "set", "lo", "up"]);
      this.exec(n, ["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
    }
  }

  /** A veth pair: `a` in namespace `nsA`, `b` in `nsB`, both up. */
  link(nsA: string, a: string, nsB: string, b: string): void {
    run("ip", ["link", "add", a, "netns", this.name(nsA), "type", "veth", "peer", "name", b, "netns", this.name(nsB)]);
    this.exec(nsA, ["ip", "link", "set", a, "up"]);
    this.exec(nsB, ["ip", "link", "set", b, "up"]);
  }

  exec(ns: string, args: string[], ok = true): { code: number; out: string; stdout: string } {
    return run("ip", ["netns", "exec", this.name(ns), ...args], ok);
  }

  /** `ip -batch` of `ip` commands (without the leading `ip`). */
  ip(ns: string, cmds: string[]): void {
    const f = join(this.dir, `${ns}-${Math.random().toString(36).slice(2)}.batch`);
    writeFileSync(f, `${cmds.join("\n")}\n`);
    this.exec(ns, ["ip", "-batch", f]);
  }

  /** Loads an nft file into a namespace. */
  nft(ns: string, text: string): void {
    const f = join(this.dir, `${ns}-${Math.random().toString(36).slice(2)}.nft`);
    writeFileSync(f, text);
    this.exec(ns, ["nft", "-f", f]);
  }

  /** Starts TCP servers answering `<label> <peer>` on `ports`; resolves once they listen. */
  async serve(ns: string, label: string, ports: number[]): Promise<void> {
    await this.background(ns, ["node", join(this.dir, "server.js"), label, ...ports.map(String)], /ready/);
  }

  /** Starts a long-running command in a namespace; resolves when its output matches `ready` (or at once). */
  background(ns: string, args: string[], ready?: RegExp): Promise<void> {
    const child = spawn("ip", ["netns", "exec", this.name(ns), ...args], { stdio: ["ignore", "pipe", "pipe"] });
    this.children.push(child);
    if (!ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`${args.join(" ")} in ${ns}: not ready: ${out}`)), 15_000);
      const seen = (d: Buffer) => {
        out += d.toString();
        if (ready.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on("data", seen);
      child.stderr!.on("data", seen);
      child.on("exit", (code) => reject(new Error(`${args.join(" ")} in ${ns} exited ${code}: ${out}`)));
    });
  }

  /** One TCP connection attempt from `src` (an address of the namespace) to `dst`:`port`. */
  probe(ns: string, dst: string, port: number, src = "", ms = 1500): Outcome {
    const line = this.exec(ns, ["node", join(this.dir, "probe.js"), dst, String(port), src, String(ms)]).out.trim();
    const [kind, ...rest] = line.split(" ");
    if (kind === "reached") return { kind, answer: rest.join(" ") };
    return { kind: kind as "refused" | "rejected" | "dropped" | "error" };
  }

  close(): void {
    for (const c of this.children) if (c.exitCode === null && c.pid) c.kill("SIGKILL");
    for (const ns of this.made.splice(0)) run("ip", ["netns", "del", ns], false);
    if (this.scratch) rmSync(this.scratch, { recursive: true, force: true });
    this.scratch = "";
  }
}

/** Runs a command; `out` is stdout and stderr together, `stdout` alone (for a machine-readable answer). */
export function run(cmd: string, args: string[], ok = true): { code: number; out: string; stdout: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 30_000 });
  if (ok && r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}${r.stdout}`);
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
}
