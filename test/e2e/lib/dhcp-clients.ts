/**
 * DHCP clients of the virtual appliance: busybox udhcpc for DHCPv4 (the segments' clients, and the router's own
 * WAN client acting like Talos': address plus a default route with the DHCPv4Config metric) and ISC dhclient
 * for DHCPv6. Each records what it received in a state file of the work directory, with a timestamped event log
 * beside it, so tests read leases without asking the client.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { q } from "../../../components/images";
import type { Daemon, Shell } from "./exec";

const UDHCPC_SCRIPT = [
  "#!/bin/sh",
  "# udhcpc event script: configure the lease like a DHCP client of the host, and record what was received",
  '[ -n "$E2E_STATE" ] || exit 1',
  'out="$E2E_STATE"',
  'echo "$(date +%s.%N) $1 ${ip:-}" >> "$out.events"',
  'case "$1" in',
  "deconfig|leasefail|nak)",
  '  [ "$1" = deconfig ] && [ -s "$out.addr" ] && ip addr del "$(cat "$out.addr")" dev "$interface" 2>/dev/null && : > "$out.addr"',
  "  ;;",
  "bound|renew)",
  '  old="$(cat "$out.addr" 2>/dev/null)"',
  '  if [ "$old" != "$ip/$mask" ]; then',
  '    [ -n "$old" ] && ip addr del "$old" dev "$interface" 2>/dev/null',
  '    ip addr add "$ip/$mask" dev "$interface"',
  '    echo "$ip/$mask" > "$out.addr"',
  "  fi",
  '  if [ -n "$router" ]; then set -- $router; ip route replace default via "$1" dev "$interface" ${E2E_METRIC:+metric $E2E_METRIC}; fi',
  '  env | grep -E "^(interface|ip|mask|subnet|router|dns|domain|search|ntpsrv|lease|serverid|hostname)=" > "$out.tmp"',
  '  mv "$out.tmp" "$out"',
  "  ;;",
  "esac",
  "exit 0",
  "",
].join("\n");

/** `key=value` lines of a state file (values may contain `=`). */
function readState(file: string): Record<string, string> | undefined {
  if (!existsSync(file)) return undefined;
  return Object.fromEntries(
    readFileSync(file, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

/** Timestamped events a client's script logged: [seconds since the epoch, event, address]. */
export function clientEvents(stateFile: string): [number, string, string | undefined][] {
  const f = `${stateFile}.events`;
  if (!existsSync(f)) return [];
  return readFileSync(f, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(" "))
    .map(([t, ev, ip]) => [Number(t), ev, ip]);
}

export class DhcpClients {
  constructor(private readonly shell: Shell) {}

  private udhcpcScript(): string {
    const path = join(this.shell.work, "udhcpc.script");
    if (!existsSync(path)) writeFileSync(path, UDHCPC_SCRIPT, { mode: 0o755 });
    return path;
  }

  /** File the DHCPv4 client on a link of a namespace records its lease in. */
  state4(ns: string, link = "eth0"): string {
    return join(this.shell.work, `${ns}.${link}.dhcp4`);
  }

  /** Starts a DHCPv4 client on a link of a namespace; `metric` for the default route it installs. */
  start4(ns: string, link: string, metric?: number, extra: string[] = []): Daemon {
    const env: NodeJS.ProcessEnv = { ...process.env, E2E_STATE: this.state4(ns, link) };
    if (metric !== undefined) env.E2E_METRIC = String(metric);
    const argv = ["busybox", "udhcpc", "-f", "-i", link, "-s", this.udhcpcScript(), "-t", "20", "-T", "1", "-A", "1"];
    return this.shell.daemon(`${ns}-udhcpc`, ns, [...argv, "-O", "search", "-O", "ntpsrv", ...extra], env);
  }

  /** The last lease a DHCPv4 client recorded (udhcpc's variables). */
  lease4(ns: string, link = "eth0"): Record<string, string> | undefined {
    return readState(this.state4(ns, link));
  }

  state6(ns: string): string {
    return join(this.shell.work, `${ns}.dhcp6`);
  }

  /** dhclient passes its script only its own variables: the state file is written into the script. */
  private dhclientScript(ns: string): string {
    const path = join(this.shell.work, `${ns}.dhclient6.script`);
    writeFileSync(
      path,
      [
        "#!/bin/sh",
        "# dhclient -6 script: configure the leased address and record what was received",
        `out=${q(this.state6(ns))}`,
        'echo "$(date +%s.%N) $reason ${new_ip6_address:-}" >> "$out.events"',
        'case "$reason" in',
        "BOUND6|RENEW6|REBIND6|REBOOT6)",
        '  [ -n "$new_ip6_address" ] && ip -6 addr replace "$new_ip6_address/${new_ip6_prefixlen:-128}" dev "$interface" nodad',
        '  set | grep -E "^(reason|interface|new_ip6_address|new_ip6_prefixlen|new_dhcp6_name_servers|new_dhcp6_domain_search|new_dhcp6_server_id)=" | tr -d "\'" > "$out.tmp"',
        '  mv "$out.tmp" "$out"',
        "  ;;",
        "esac",
        "exit 0",
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    return path;
  }

  /** Starts a stateful DHCPv6 client on eth0 of a namespace. */
  start6(ns: string): Daemon {
    const w = this.shell.work;
    return this.shell.daemon(`${ns}-dhclient6`, ns, [
      "dhclient",
      "-6",
      "-d",
      "-D",
      "LL",
      "-sf",
      this.dhclientScript(ns),
      "-lf",
      join(w, `${ns}.dhclient6.leases`),
      "-pf",
      join(w, `${ns}.dhclient6.pid`),
      "eth0",
    ]);
  }

  lease6(ns: string): Record<string, string> | undefined {
    return readState(this.state6(ns));
  }
}
