/**
 * The DNS stack's rendered files, checked by the programs that will read them, at the paths they will read
 * them from: `unbound-checkconf`, `knotc conf-check` and `knotc zone-check` (every zone file), `kea-dhcp-ddns -t`,
 * `dnsdist --check-config`, `router-dns-stats --check` and `dns-feeds --check`. The files go into a private mount
 * namespace (tmpfs over /etc/router and /var/lib/router, which must exist as empty directories), with a test
 * TSIG key and a test certificate where the stack's Secret would put them. Asynchronous, so many sites can be
 * checked at once.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tier } from "../../helpers/tier";
import { tempDir } from "../../helpers/temp";
import { PATHS } from "../../../components/dns-stack/plan";
import { FEEDS_SCRIPT, STATS_BIN, writeTestSecrets } from "./fixtures";

export { buildStats, STATS_BIN, TEST_TSIG } from "./fixtures";

export const dnsValidatorsTier = () =>
  tier("DNS validators", {
    root: true,
    commands: [
      "unshare",
      "mount",
      "unbound-checkconf",
      "knotc",
      "kea-dhcp-ddns",
      "dnsdist",
      "openssl",
      "make",
      "gcc",
      "cdb",
      "awk",
    ],
  });

/** Test secrets in the Secret's layout, once per test file in a temporary directory removed after its tests. */
let secretsDir: string | undefined;
export function testSecrets(): string {
  if (secretsDir && existsSync(secretsDir)) return secretsDir;
  secretsDir = writeTestSecrets(tempDir("dns-secrets-"));
  return secretsDir;
}

const SCRIPT = `
set -u
mkdir -p /etc/router /var/lib/router
mount -t tmpfs none /etc/router
mount -t tmpfs none /var/lib/router
mkdir -p ${PATHS.config} ${PATHS.secrets} ${PATHS.unboundState} ${PATHS.knotDb} ${PATHS.lists} ${PATHS.queryLog}
cp "$1"/* ${PATHS.config}/
cp "$2"/tsig* "$2"/tls.* ${PATHS.secrets}/
cp /usr/share/dns/root.key ${PATHS.unboundState}/root.key
ip link set lo up
check() {
  name=$1; shift
  if out=$("$@" 2>&1); then echo "OK $name"; else printf 'FAIL %s: %s\\n' "$name" "$(echo "$out" | grep -iE 'error|fail|invalid|not|cannot|line' | head -5)"; fi
}
C=${PATHS.config}
check unbound-checkconf unbound-checkconf $C/unbound.conf
check "knotc conf-check" knotc -c $C/knot.conf conf-check
check "knotc zone-check" knotc -c $C/knot.conf zone-check
check "kea-dhcp-ddns -t" kea-dhcp-ddns -t $C/kea-dhcp-ddns.json
check "dnsdist --check-config" dnsdist --check-config -C $C/dnsdist.conf
check "router-dns-stats --check" "$3" --check -c $C/stats.conf
if [ -e $C/feeds.conf ]; then check "dns-feeds --check" "$4" $C/feeds.conf --check; fi
`;

/** Problems of one render's DNS files (`dns/<file>` → content); [] when every checker accepts them. */
export function dnsCheck(files: Map<string, string>): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), "dns-check-"));
  const conf = join(dir, "conf");
  mkdirSync(conf);
  for (const [path, content] of files) if (path.startsWith("dns/")) writeFileSync(join(conf, path.slice(4)), content);
  return new Promise((done) =>
    execFile(
      "unshare",
      ["-m", "-n", "sh", "-c", SCRIPT, "sh", conf, testSecrets(), STATS_BIN, FEEDS_SCRIPT],
      { encoding: "utf8", timeout: 60_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        rmSync(dir, { recursive: true, force: true });
        const lines = stdout.split("\n").filter((l) => l.startsWith("OK ") || l.startsWith("FAIL "));
        const problems = lines.filter((l) => l.startsWith("FAIL ")).map((l) => l.slice(5));
        if (lines.length < 6) problems.push(`the checks did not all run (${err?.message ?? ""}): ${stderr}${stdout}`);
        done(problems);
      },
    ),
  );
}
