/**
 * One list load of the DNS benchmark, timed step by step. The clock starts when the feeds job is started (the
 * list already published on the test internet's HTTPS server); each step's end is read from what the step leaves
 * behind, not from the job's own account of itself:
 *
 *   fetch + check   the job's start to the checked list in place (NAME.txt's mtime: router-fetch writes a temporary
 *                   file, fsyncs it and renames it)
 *   database        NAME.txt's mtime to the new database written (NAME.cdb's mtime)
 *   handoff         the database written to its rename over the old one (NAME.cdb's ctime: a rename changes it)
 *   front opens     the rename to the front mapping the new file (its inode in /proc/<dnsdist>/maps; tinycdb maps
 *                   the database it opens, and dnsdist opens the new file on a lookup once its refresh interval
 *                   has passed and the file's mtime is newer than the one it has)
 *   first answer    the front's open to the first answer that blocks a name only the new list has, from a client
 *                   that asks for it every PROBE_MS (as the zone's clients would keep asking)
 *
 * and, off the critical path, the job's exit (it writes the list's status after the rename). The probe name must
 * resolve before the load (a name the test internet answers), so a blocked answer can only come from the new list.
 */
import { spawn } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** How often the probing client asks (ms). */
export const PROBE_MS = 20;

export interface LoadSteps {
  /** Seconds of each step (see the header), and of the whole load (the job's start to the first blocked answer). */
  fetch: number;
  database: number;
  handoff: number;
  frontOpens: number;
  firstAnswer: number;
  total: number;
  /** The job's exit, from its start (s). */
  jobExit: number;
  /** The job's CPU time, user + system (s): what a load costs, however long the machine makes it wait. */
  jobCpu: number;
}

export const STEP_NAMES: [keyof LoadSteps, string][] = [
  ["fetch", "fetch + check (router-fetch)"],
  ["database", "database (cdb)"],
  ["handoff", "handoff (rename)"],
  ["frontOpens", "front opens the new database"],
  ["firstAnswer", "first answer from the new list"],
  ["total", "whole load"],
  ["jobExit", "(the job's exit, from its start)"],
  ["jobCpu", "(the job's CPU time, user + system)"],
];

/** A DNS query for `name` (type A, class IN, recursion desired) with id `id` (RFC 1035 4.1). */
function query(name: string, id: number): Buffer {
  const labels = name.split(".").flatMap((l) => [Buffer.from([l.length]), Buffer.from(l, "ascii")]);
  const header = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

/**
 * The probing client: a Node script run in the client's namespace that asks `server` for `name` every PROBE_MS
 * and prints `<epoch ms> <rcode>` for each answer (RCODE: the low 4 bits of the header's fourth byte).
 */
export function writeProber(path: string): void {
  writeFileSync(
    path,
    [
      'const dgram = require("node:dgram");',
      "const [server, hex, ms] = process.argv.slice(2);",
      'const s = dgram.createSocket("udp4");',
      "let id = 0;",
      's.on("message", (m) => process.stdout.write(`${Date.now()} ${m[3] & 15}\\n`));',
      "setInterval(() => {",
      '  const q = Buffer.from(hex, "hex");',
      "  id = (id + 1) & 0xffff; q[0] = id >> 8; q[1] = id & 0xff;",
      "  s.send(q, 53, server);",
      "}, Number(ms));",
      "",
    ].join("\n"),
  );
}

/** Inodes of the files named `file` that process `pid` maps. */
function mappedInodes(pid: number, file: string): Set<number> {
  const out = new Set<number>();
  try {
    for (const line of readFileSync(`/proc/${pid}/maps`, "utf8").split("\n"))
      if (line.endsWith(`/${file}`)) out.add(Number(line.split(/\s+/)[4]));
  } catch {
    // the process is gone: no inode
  }
  return out;
}

export interface LoadRun {
  /** The client namespace, the front's address and its process id. */
  clientNs: string;
  server: string;
  frontPid: number;
  /** The lists directory as the node sees it, and the list's name. */
  listsDir: string;
  list: string;
  /** A name only the new list holds (it must resolve before the load). */
  probe: string;
  /** The prober script (writeProber). */
  prober: string;
  /** Starts the feeds job; resolves with its CPU time (s) when it exits. */
  job: () => Promise<number>;
  timeoutMs: number;
}

/** Runs one load and times its steps (see the header). Throws when a step does not happen within the timeout. */
export async function timedLoad(r: LoadRun): Promise<LoadSteps> {
  const child = spawn(
    "ip",
    [
      "netns",
      "exec",
      r.clientNs,
      process.execPath,
      r.prober,
      r.server,
      query(r.probe, 0).toString("hex"),
      `${PROBE_MS}`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const answers: { at: number; rcode: number }[] = [];
  let rest = "";
  child.stdout.on("data", (d: Buffer) => {
    const lines = (rest + d.toString()).split("\n");
    rest = lines.pop()!;
    for (const l of lines) {
      const [at, rcode] = l.split(" ").map(Number);
      answers.push({ at, rcode });
    }
  });
  const cdb = join(r.listsDir, `${r.list}.cdb`);
  try {
    const deadline = Date.now() + r.timeoutMs;
    while (!answers.length) {
      if (Date.now() > deadline) throw new Error(`no answer to ${r.probe} from ${r.server}`);
      await new Promise((res) => setTimeout(res, PROBE_MS));
    }
    if (answers.some((a) => a.rcode !== 0))
      throw new Error(`${r.probe} must resolve before the load (rcodes ${answers.map((a) => a.rcode).join(",")})`);
    const t0 = Date.now();
    const since = answers.length;
    let exited = 0;
    let jobCpu = 0;
    void r.job().then((cpu) => {
      jobCpu = cpu;
      exited = Date.now();
    });
    // When each inode of the list's database first showed in the front's maps (the job may first create an empty
    // database, which the front opens too): the step ends when the final file's inode shows.
    const seen = new Map<number, number>();
    let blocked = 0;
    const final = () => (exited ? statSync(cdb).ino : -1);
    while (!(exited && seen.has(final()) && blocked)) {
      if (Date.now() > deadline + 60_000)
        throw new Error(`the load did not finish: ${JSON.stringify({ seen: [...seen], blocked, exited })}`);
      await new Promise((res) => setTimeout(res, 5));
      for (const i of mappedInodes(r.frontPid, `${r.list}.cdb`)) if (!seen.has(i)) seen.set(i, Date.now());
      if (!blocked) blocked = answers.slice(since).find((a) => a.rcode === 3)?.at ?? 0;
    }
    const opened = seen.get(final())!;
    const st = statSync(cdb, { bigint: true });
    const ms = (ns: bigint) => Number(ns / 1000n) / 1000;
    const txt = ms(statSync(join(r.listsDir, `${r.list}.txt`), { bigint: true }).mtimeNs);
    const built = ms(st.mtimeNs);
    const renamed = ms(st.ctimeNs);
    const s = (a: number, b: number) => (b - a) / 1000;
    return {
      fetch: s(t0, txt),
      database: s(txt, built),
      handoff: s(built, renamed),
      frontOpens: s(renamed, opened),
      firstAnswer: s(opened, blocked),
      total: s(t0, blocked),
      jobExit: s(t0, exited),
      jobCpu,
    };
  } finally {
    child.kill();
  }
}
