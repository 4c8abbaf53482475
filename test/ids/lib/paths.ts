/** The IDS stack's directories (components/ids-stack/suricata.ts IdsPaths) under one test root; Debian's share. */
import { join } from "node:path";
import type { IdsPaths } from "../../../components/ids-stack/suricata";

export function idsPathsUnder(root: string): IdsPaths {
  return {
    config: join(root, "etc"),
    rules: join(root, "rules"),
    data: join(root, "data"),
    logs: join(root, "logs"),
    run: join(root, "run"),
    alerts: join(root, "alerts"),
    share: "/etc/suricata",
  };
}
