/**
 * Test certificates made by openssl (the real tool): a self-signed EC P-256 certificate and its key, the test CAs
 * and client certificates the tiers trust. Nothing here is a secret of a site.
 */
import { spawnSync } from "node:child_process";

/** openssl's arguments for a new EC P-256 key, unencrypted. */
export const NEW_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/**
 * Writes a self-signed certificate for `subject` (`/CN=…`) and its key into `dir` as `cert` and `key` (names
 * relative to dir), valid for `days`; throws with openssl's message when it fails.
 */
export function selfSigned(dir: string, subject: string, cert = "ca.pem", key = "ca.key", days = 2): void {
  const r = spawnSync(
    "openssl",
    ["req", "-x509", ...NEW_EC_KEY, "-keyout", key, "-out", cert, "-days", String(days), "-subj", subject],
    { cwd: dir, encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`openssl req -x509 -subj ${subject}: ${r.stderr}`);
}
