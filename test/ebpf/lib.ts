/**
 * Shared plumbing for the eBPF tests: building ebpf/ once (serialised across test files), running
 * the C test tools and parsing their JSON lines, and network namespaces for the loader tests.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { NEW_EC_KEY, selfSigned } from "../helpers/tls";
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** Waiting is shared with the virtual appliance's tests. */
import { sleep, waitFor } from "../helpers/wait";
export { sleep, waitFor };

export const EBPF = resolve(__dirname, "../../ebpf");
export const BUILD = join(EBPF, "build");
export const TOOLS = join(BUILD, "test");
export const LOADER = join(BUILD, "router-dataplane");
export const FIXTURES = join(EBPF, "test/fixtures");

/** Commands every eBPF tier needs (the build's toolchain). */
export const BUILD_COMMANDS = ["make", "clang-19", "llvm-strip-19", "bpftool", "gcc", "flock", "curl-config"];

/**
 * Runs `make -C ebpf [target]` under a lock on the Makefile, so test files running in parallel
 * never build the same outputs at once. Throws with make's output on failure.
 */
export function buildEbpf(target = "all", env: Record<string, string> = {}): void {
  const r = spawnSync("flock", [join(EBPF, "Makefile"), "make", "-s", "-C", EBPF, target], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`make -C ebpf ${target} failed:\n${r.stdout}\n${r.stderr}`);
}

/** Parses the JSON lines of a tool's stdout (other lines are ignored). */
export function jsonLines<T = Record<string, unknown>>(out: string): T[] {
  return out
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as T);
}

export interface ToolRun<T> {
  status: number | null;
  lines: T[];
  stdout: string;
  stderr: string;
}

/** Runs a C test tool from ebpf/build/test and parses its JSON lines. */
export function runTool<T = Record<string, unknown>>(tool: string, args: string[], timeoutMs = 300_000): ToolRun<T> {
  const r = spawnSync(join(TOOLS, tool), args, { encoding: "utf8", timeout: timeoutMs, maxBuffer: 256 << 20 });
  return { status: r.status, lines: jsonLines<T>(r.stdout), stdout: r.stdout, stderr: r.stderr };
}

/** openssl arguments for a new P-256 key without a passphrase. */
export { NEW_EC_KEY };

/**
 * A test CA (dir/ca.pem, ca.key) and a server certificate it signs for the IP address ip (dir/srv.pem,
 * srv.key), valid for two days.
 */
export function testCertificates(dir: string, ip: string, cn: string): void {
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  writeFileSync(join(dir, "san.ext"), `subjectAltName=IP:${ip}\n`);
  selfSigned(dir, `/CN=${cn} test CA`);
  openssl("req", ...NEW_EC_KEY, "-keyout", "srv.key", "-out", "srv.csr", "-subj", `/CN=${cn}`);
  openssl(
    "x509",
    "-req",
    "-in",
    "srv.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "srv.pem",
    "-days",
    "2",
    "-extfile",
    "san.ext",
  );
}

/** A fresh temporary directory. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Mounts bpffs at /sys/fs/bpf unless it is there already. */
export function ensureBpffs(): void {
  const mounts = readFileSync("/proc/mounts", "utf8");
  if (!mounts.split("\n").some((l) => l.split(" ")[1] === "/sys/fs/bpf" && l.split(" ")[2] === "bpf"))
    execFileSync("mount", ["-t", "bpf", "bpf", "/sys/fs/bpf"]);
}

/** `ip ...` (throws on failure). */
export function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8" });
}

/** Runs a command inside a network namespace with /sys (and so bpffs) untouched. */
export function inNetns(ns: string, cmd: string, args: string[], input?: string): string {
  return execFileSync("nsenter", [`--net=/run/netns/${ns}`, cmd, ...args], { encoding: "utf8", input });
}

/** Spawns a long-running command inside a network namespace (env is added to ours). */
export function spawnInNetns(
  ns: string,
  cmd: string,
  args: string[],
  o: { env?: Record<string, string>; cwd?: string } = {},
): ChildProcess {
  return spawn("nsenter", [`--net=/run/netns/${ns}`, cmd, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...o.env },
    cwd: o.cwd,
  });
}

/** Collects a child's output; resolves when it exits. */
export function collect(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => (stdout += d));
  child.stderr?.on("data", (d) => (stderr += d));
  return new Promise((res) => child.on("close", (code) => res({ code, stdout, stderr })));
}

/** Stops a child process with SIGTERM and waits until it has exited (nothing to do if it already has). */
export async function stopProcess(c: ChildProcess | undefined): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const done = new Promise((r) => c.on("close", r));
  c.kill("SIGTERM");
  await done;
}

/** True once the loader's metrics endpoint answers (`metrics` reads it; a refused connection throws). */
export function metricsUp(metrics: () => Map<string, number>): boolean {
  try {
    return metrics().has("router_dataplane_reloads_total");
  } catch {
    return false;
  }
}

/**
 * GET /health of a loader from ns (at host:port): the status code and the parsed body, or undefined when nothing
 * answers within 2 s.
 */
export function loaderHealth<T>(ns: string, port: number, host = "127.0.0.1"): { code: number; body: T } | undefined {
  const r = spawnSync(
    "nsenter",
    [`--net=/run/netns/${ns}`, "curl", "-s", "-m", "2", "-w", "\n%{http_code}", `http://${host}:${port}/health`],
    { encoding: "utf8" },
  );
  const i = r.stdout.lastIndexOf("\n");
  const code = Number(r.stdout.slice(i + 1));
  if (r.status !== 0 || !code) return undefined;
  return { code, body: JSON.parse(r.stdout.slice(0, i)) as T };
}

/** Parses Prometheus text into name{labels} -> value. */
export function parseMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/** Per-tag counts a UDP sink printed when it stopped. */
export type SinkCounts = Record<string, { received: number; distinct: number }>;

/**
 * Starts `traffic sink` on port in ns (children collects the process, for a kill on cleanup) and waits until it
 * listens; stop() ends it after in-flight datagrams had 300 ms to arrive and returns its per-tag counts.
 */
export async function udpSink(
  ns: string,
  children: ChildProcess[],
  port = 9999,
): Promise<{ stop(): Promise<SinkCounts> }> {
  const child = spawnInNetns(ns, join(TOOLS, "traffic"), ["sink", "--port", String(port)]);
  children.push(child);
  const out = collect(child);
  let ready = "";
  child.stdout?.on("data", (d) => (ready += d));
  await waitFor("the sink", () => ready.includes('"ready"'));
  return {
    async stop(): Promise<SinkCounts> {
      await sleep(300);
      child.kill("SIGTERM");
      const r = await out;
      const last = jsonLines<{ tags?: SinkCounts }>(r.stdout).find((l) => l.tags);
      if (!last?.tags) throw new Error(`sink printed no counts: ${r.stdout} ${r.stderr}`);
      return last.tags;
    },
  };
}

/** What `traffic send` sends: UDP frames from any source (spoofed ones included) through a packet socket. */
export interface Frames {
  ifname: string;
  dstMac: string;
  src: string;
  dst: string;
  tag: number;
  count: number;
  pps: number;
  port?: number;
  /** Source port (default 40000, as `traffic send` has it). */
  sport?: number;
}

/** Sends frames from ns with `traffic send`; resolves to the number sent. */
export async function sendFrames(ns: string, f: Frames): Promise<number> {
  const r = await collect(
    spawnInNetns(ns, join(TOOLS, "traffic"), [
      "send",
      ...["--ifname", f.ifname, "--dst-mac", f.dstMac, "--src", f.src, "--dst", f.dst],
      ...["--port", String(f.port ?? 9999), "--sport", String(f.sport ?? 40000), "--tag", String(f.tag)],
      ...["--count", String(f.count), "--pps", String(f.pps)],
    ]),
  );
  if (r.code !== 0) throw new Error(`traffic send failed: ${r.stderr}`);
  return jsonLines<{ sent: number }>(r.stdout)[0].sent;
}

/**
 * Starts the loader (command cmd, e.g. [LOADER, "--config", FILE], or behind setpriv) in ns, hands its log lines to
 * onLog, and waits until it logged one more `started` than log() held before and until ready() holds. Throws with
 * the log when it exits instead.
 */
export async function startLoaderIn(
  ns: string,
  cmd: string[],
  o: { log: () => string; onLog: (chunk: string) => void; ready: () => boolean },
): Promise<ChildProcess> {
  const started = () => jsonLines<{ event: string }>(o.log()).filter((e) => e.event === "started").length;
  const before = started();
  const child = spawnInNetns(ns, cmd[0], cmd.slice(1));
  child.stderr?.on("data", (d) => o.onLog(String(d)));
  await waitFor("the loader to start", () => started() > before || child.exitCode !== null, 30_000);
  if (child.exitCode !== null) throw new Error(`loader exited ${child.exitCode}:\n${o.log()}`);
  await waitFor("the loader's HTTP endpoint", o.ready);
  return child;
}

/** Replaces a file the way updaters do: write a temporary, then rename it over (one inotify event, never half). */
export function replaceFile(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}
