/**
 * Packet capture on demand: captures on one router link, with a filter, into a pcap file on the operator's machine
 * (or stdout, `--out -`, for `| wireshark -k -i -`). `talosctl pcap` does the capture on the node; this command
 * names links as the site does, compiles the filter with the local tcpdump (`tcpdump -dd`, for the link type the
 * node reports), never captures its own Talos API stream, and bounds every capture in time (`--seconds`, passed to
 * talosctl as `--duration` and enforced here too) and size (`--max-size`: the file holds whole packets only and
 * never exceeds it; the capture stops when the next packet would).
 *
 *   npm run capture -- --link wan0 [--filter 'tcp port 443'] [--seconds 60] [--max-size 50MB] --out wan0.pcap
 *                      [--stack dev]
 *
 * The admin talosconfig comes from ROUTER_TALOSCONFIG (`pulumi stack output talosconfig --show-secrets`), handed
 * to talosctl through a pipe, never a file or the command line; without it, talosctl uses its own (TALOSCONFIG,
 * ~/.talos/config). Exit 0 when the capture ended at its time or size bound (or Ctrl-C), 2 for bad arguments
 * (every problem at once, nothing sent to the node), 1 when talosctl failed.
 */
import { spawn, spawnSync } from "node:child_process";
import { closeSync, openSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseAllDocuments } from "yaml";
import { readStackConfig } from "./stack-config";
import { parseSite } from "../components/site/parse";
import { planSite, type SitePlan } from "../components/site/plan";
import { rawSiteConfig } from "../components/site/load";
import { formatIssues } from "../components/site/issues";
import { CAPTURE_LIMITS, captureExpression, captureLinks, parseSize } from "../components/observability-stack/capture";

const ROOT = resolve(__dirname, "..");

export interface CaptureRequest {
  link: string;
  expression: string;
  seconds: number;
  maxBytes: number;
  out: string;
}

/** Checks the arguments against the site; every problem at once, each naming its flag and what is allowed. */
export function captureRequest(
  plan: SitePlan,
  v: { link?: string; filter?: string; seconds?: string; "max-size"?: string; out?: string },
): { ok: true; req: CaptureRequest } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const links = captureLinks(plan);
  if (!v.link || !links.some((l) => l.name === v.link))
    problems.push(
      `--link: ${v.link ? `"${v.link}" is not a link of site ${plan.siteName}` : "missing"}; one of: ${links
        .map((l) => `${l.name} (${l.what})`)
        .join(", ")}`,
    );
  const { seconds: S, bytes: B } = CAPTURE_LIMITS;
  const seconds = v.seconds === undefined ? S.default : Number(v.seconds);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > S.max)
    problems.push(`--seconds: "${v.seconds}" is not a whole number of seconds from 1 to ${S.max}`);
  const maxBytes = v["max-size"] === undefined ? B.default : parseSize(v["max-size"]);
  if (maxBytes === undefined || maxBytes < B.min || maxBytes > B.max)
    problems.push(`--max-size: "${v["max-size"]}" is not a size from ${B.min} bytes to 2GiB (e.g. 4096, 20MB, 1GiB)`);
  if (!v.out) problems.push("--out: missing; a pcap file to write, or - for stdout");
  if (problems.length) return { ok: false, problems };
  return {
    ok: true,
    req: { link: v.link!, expression: captureExpression(plan, v.filter), seconds, maxBytes: maxBytes!, out: v.out! },
  };
}

/** tcpdump's DLT name for a Talos link type (PacketCapture: ether and loopback are Ethernet, none is raw IP). */
export function dltFor(linkType: string): string | undefined {
  return linkType === "ether" || linkType === "loopback" ? "EN10MB" : linkType === "none" ? "RAW" : undefined;
}

/** `tcpdump -dd` of the expression for the link type: the instruction lines talosctl's --bpf-filter takes. */
export function compileFilter(
  expression: string,
  dlt: string,
): { ok: true; lines: string } | { ok: false; error: string } {
  const r = spawnSync("tcpdump", ["-dd", "-y", dlt, expression], { encoding: "utf8" });
  if (r.error) return { ok: false, error: `tcpdump is needed to compile the filter (${r.error.message})` };
  if (r.status !== 0) return { ok: false, error: `--filter: ${r.stderr.trim() || `tcpdump exited ${r.status}`}` };
  return { ok: true, lines: r.stdout };
}

/**
 * Cuts a pcap stream at a size bound on packet boundaries: push() returns what may still be written (the file
 * header and whole records only) and whether the bound was reached. Reads the header's byte order.
 */
export class PcapBound {
  private pending = Buffer.alloc(0);
  private header = false;
  private le = true;
  written = 0;
  packets = 0;
  full = false;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): Buffer {
    if (this.full) return Buffer.alloc(0);
    this.pending = Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      let len: number;
      if (!this.header) {
        if (this.pending.length < 24) break;
        const magic = this.pending.readUInt32LE(0);
        this.le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
        len = 24;
      } else {
        if (this.pending.length < 16) break;
        len = 16 + (this.le ? this.pending.readUInt32LE(8) : this.pending.readUInt32BE(8));
        if (this.pending.length < len) break;
      }
      if (this.written + len > this.maxBytes) {
        this.full = true;
        break;
      }
      out.push(this.pending.subarray(0, len));
      this.pending = this.pending.subarray(len);
      this.written += len;
      if (this.header) this.packets++;
      this.header = true;
    }
    return Buffer.concat(out);
  }
}

/**
 * talosctl with the site's node as endpoint. With ROUTER_TALOSCONFIG set, bash hands it over a real pipe
 * (`/dev/fd/8`, as the lifecycle scripts do: talosctl reads the path, which a Node socket pair would not serve).
 */
function talosctl(plan: SitePlan, args: string[]) {
  const global = ["--nodes", plan.managementAddress, "--endpoints", plan.managementAddress];
  const viaPipe = 'exec talosctl --talosconfig /dev/fd/8 "$@" 8< <(printf \'%s\' "$ROUTER_TALOSCONFIG")';
  return process.env.ROUTER_TALOSCONFIG
    ? spawn("bash", ["-c", viaPipe, "talosctl", ...global, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn("talosctl", [...global, ...args], { stdio: ["ignore", "pipe", "pipe"] });
}

async function collect(child: ReturnType<typeof talosctl>): Promise<{ code: number | null; out: string; err: string }> {
  let out = "";
  let err = "";
  child.stdout?.on("data", (d) => (out += d));
  child.stderr?.on("data", (d) => (err += d));
  const code = await new Promise<number | null>((r) => child.on("close", r));
  return { code, out, err };
}

/** The node's kernel name and link type of a site link: the LinkStatus whose id or alias is that name. */
async function resolveLink(plan: SitePlan, name: string): Promise<{ id: string; type: string }> {
  const r = await collect(talosctl(plan, ["get", "links", "-o", "yaml"]));
  if (r.code !== 0) throw new Error(`talosctl get links failed: ${r.err.trim()}`);
  const links = parseAllDocuments(r.out)
    .map((d) => d.toJSON() as { metadata?: { id?: string }; spec?: { alias?: string; type?: string } } | null)
    .filter((l) => l?.metadata?.id);
  const link = links.find((l) => l!.metadata!.id === name) ?? links.find((l) => l!.spec?.alias === name);
  if (!link) throw new Error(`the node has no link named ${name} (nor with that alias)`);
  return { id: link.metadata!.id!, type: link.spec?.type ?? "" };
}

/** Runs the capture; resolves with what was written and why it ended. */
async function capture(plan: SitePlan, req: CaptureRequest, filter: string, linkId: string) {
  const bound = new PcapBound(req.maxBytes);
  const fd = req.out === "-" ? 1 : openSync(req.out, "w", 0o600);
  const child = talosctl(plan, [
    "pcap",
    "--interface",
    linkId,
    "--bpf-filter",
    filter,
    "--duration",
    `${req.seconds}s`,
    "-o",
    "-",
  ]);
  let ended = "time";
  const stop = (why: string) => {
    ended = why;
    child.kill("SIGTERM");
  };
  // talosctl ends the stream at --duration; this is the bound if it does not.
  const watchdog = setTimeout(() => stop("time (talosctl did not stop)"), (req.seconds + 10) * 1000);
  const onInt = () => stop("interrupted");
  process.on("SIGINT", onInt);
  child.stdout!.on("data", (d: Buffer) => {
    writeSync(fd, bound.push(d));
    if (bound.full && ended === "time") stop("size");
  });
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  const code = await new Promise<number | null>((r) => child.on("close", r));
  clearTimeout(watchdog);
  process.off("SIGINT", onInt);
  if (fd !== 1) closeSync(fd);
  return { code: ended === "time" ? code : 0, err, ended, packets: bound.packets, bytes: bound.written };
}

function planOf(stack: string): SitePlan {
  const cfg = readStackConfig(ROOT, stack);
  const parsed = parseSite(rawSiteConfig(cfg.values));
  if (!parsed.ok) throw new Error(formatIssues(parsed.issues));
  return planSite(parsed.site);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      stack: { type: "string", default: "dev" },
      link: { type: "string" },
      filter: { type: "string" },
      seconds: { type: "string" },
      "max-size": { type: "string" },
      out: { type: "string", short: "o" },
    },
  });
  const plan = planOf(values.stack!);
  const checked = captureRequest(plan, values);
  if (!checked.ok) {
    process.stderr.write(`capture: ${checked.problems.join("\n")}\n`);
    return 2;
  }
  const req = checked.req;
  const link = await resolveLink(plan, req.link);
  const dlt = dltFor(link.type);
  if (!dlt) throw new Error(`link ${req.link} (${link.id}) is of type ${link.type}, which Talos cannot capture on`);
  const filter = compileFilter(req.expression, dlt);
  if (!filter.ok) {
    process.stderr.write(`capture: ${filter.error}\n`);
    return 2;
  }
  const r = await capture(plan, req, filter.lines, link.id);
  if (r.code !== 0) {
    process.stderr.write(`capture: talosctl pcap failed: ${r.err.trim()}\n`);
    return 1;
  }
  process.stderr.write(
    `capture: ${r.packets} packets, ${r.bytes} bytes on ${req.link} (${link.id}) into ${req.out}; ended at the ${r.ended} bound\n`,
  );
  return 0;
}

if (require.main === module)
  main().then(
    (code) => (process.exitCode = code),
    (e: Error) => {
      process.stderr.write(`capture: ${e.message}\n`);
      process.exitCode = 1;
    },
  );
