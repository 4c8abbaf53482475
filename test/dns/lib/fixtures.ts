/**
 * What the DNS tests and the DNS benchmark need besides the rendered files: the stack's own programs built, and
 * test secrets in the layout of the stack's Secret (a TSIG key in Knot's and D2's forms, a DoT/DoH certificate).
 * No vitest here: the benchmark runs outside it.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { testCertificates } from "../../ebpf/lib";
import { renderKnotTsig } from "../../../components/dns-stack/knot";
import { renderD2Tsig } from "../../../components/dns-stack/ddns";

export const DNS_IMAGE_DIR = resolve(__dirname, "../../../images/dns");
export const STATS_BIN = join(DNS_IMAGE_DIR, "build/router-dns-stats");
export const FEEDS_SCRIPT = join(DNS_IMAGE_DIR, "dns-feeds");
/** A TSIG secret for tests (the stack's own comes from a Pulumi random resource). */
export const TEST_TSIG = "q6mJ1oHMWTFD0lO3m0ChUX3Ufa4Ucf5Gx2vsQ0RmRZw=";

/** Builds router-dns-stats (make -C images/dns stats); throws with make's output on failure. */
export function buildStats(): void {
  execFileSync("flock", [join(DNS_IMAGE_DIR, "Makefile"), "make", "-s", "-C", DNS_IMAGE_DIR, "stats"], {
    stdio: "pipe",
  });
}

/**
 * Writes a list's constant database into `dir` where the feeds job would (`<name>.cdb`), atomically (tinycdb's
 * temporary file + rename), as the lists the front reads.
 */
export function writeListDb(dir: string, name: string, entries: string[]): void {
  execFileSync("sh", ["-c", `sed 's/$/ 1/' | cdb -c -m -u -t "$1/.$2.tmp" "$1/$2.cdb"`, "sh", dir, name], {
    input: `${entries.join("\n")}\n`,
  });
}

/** Writes test secrets into `dir` (created) in the Secret's layout; returns `dir`. */
export function writeTestSecrets(dir: string): string {
  mkdirSync(dir, { recursive: true });
  testCertificates(dir, "10.10.0.1", "router");
  execFileSync("sh", ["-c", "cp srv.pem tls.crt && cp srv.key tls.key"], { cwd: dir });
  writeFileSync(join(dir, "tsig.knot.conf"), renderKnotTsig(TEST_TSIG));
  writeFileSync(join(dir, "tsig-keys.json"), renderD2Tsig(TEST_TSIG));
  return dir;
}
