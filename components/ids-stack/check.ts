/**
 * `suricata -T` on the site's Suricata files before anything of the IDS stack ships: at `pulumi up`, on the
 * machine that builds the IDS image from the same Debian packages, the rendered suricata.yaml with the site's
 * local rules and thresholds, laid out in a temporary directory (relative paths, so the files are rendered once,
 * for that layout). A rule or threshold line Suricata refuses fails the update with Suricata's errors; the
 * ConfigMap and DaemonSet wait for it. The fetched rule sources are tested on the router before each update
 * (ruleUpdateCommand). Pure: the script and its environment.
 */
import type { Site } from "../site/schema";
import type { IdsPlan } from "./plan";
import { suricataFiles, type IdsPaths } from "./suricata";

/** Where the files lie for the check, relative to its temporary directory. */
export const CHECK_PATHS: IdsPaths = {
  config: "etc",
  rules: "rules",
  data: "data",
  logs: "logs",
  run: "run",
  alerts: "alerts",
  share: "/etc/suricata",
};

/** The environment variable carrying a file (base64): IDS_FILE_ and the file's name in capitals. */
function envName(file: string): string {
  return `IDS_FILE_${file.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

/** The check's bash script and environment (each file base64-encoded: no quoting of rule text in the script). */
export function rulesCheck(site: Site, ids: IdsPlan): { script: string; environment: Record<string, string> } {
  const files = suricataFiles(site, ids, CHECK_PATHS);
  const environment = Object.fromEntries(
    [...files].sort(([a], [b]) => a.localeCompare(b)).map(([n, t]) => [envName(n), Buffer.from(t).toString("base64")]),
  );
  const P = CHECK_PATHS;
  const script = [
    "set -euo pipefail",
    'd=$(mktemp -d); trap \'rm -rf "$d"\' EXIT; cd "$d"',
    `mkdir -p ${[P.config, P.rules, P.data, P.logs, P.run, P.alerts].join(" ")}`,
    ...[...files.keys()].sort().map((n) => `printf '%s' "$${envName(n)}" | base64 -d > ${P.config}/${n}`),
    `cp ${P.config}/local.rules ${P.rules}/suricata.rules`,
    `if ! suricata -T -c ${P.config}/suricata.yaml -l ${P.logs} > check.log 2>&1; then`,
    `  grep -E '"(Error|Warning)"' check.log >&2 || cat check.log >&2`,
    '  echo "router:ids.rules: suricata -T refuses the site\'s local rules or thresholds (above); the IDS stack is not updated" >&2',
    "  exit 1",
    "fi",
    'echo "suricata -T: the site\'s rules and thresholds load"',
  ].join("\n");
  return { script, environment };
}
