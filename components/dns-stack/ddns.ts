/**
 * Dynamic names: Kea's DHCP servers send a name-change request for every lease whose client gives a host name,
 * and Kea's DHCP-DDNS daemon (D2) turns it into TSIG-signed RFC 2136 updates to Knot — add when the lease is
 * granted, remove when it is released or expires. Conflicts follow RFC 4703: D2 adds a name only where no
 * other client's DHCID (and no static record) holds it. The TSIG key comes from the stack's Secret through
 * Kea's include directive; it is never rendered here. Pure.
 */
import type { Site } from "../site/schema";
import type { SegmentPlan } from "../site/plan";
import { PATHS, PORTS, TSIG_KEY_NAME, type DnsPlan } from "./plan";

/** Where the Secret's key list for D2 is mounted (a JSON list of Kea tsig-keys entries). */
export const D2_TSIG_FILE = `${PATHS.secrets}/tsig-keys.json`;

export function renderD2(site: Site, dns: DnsPlan): string {
  const server = [{ "ip-address": "127.0.0.1", port: PORTS.authoritative }];
  const domain = (name: string) => ({ name: `${name}.`, "key-name": TSIG_KEY_NAME, "dns-servers": server });
  const body = {
    "ip-address": "127.0.0.1",
    port: PORTS.ddns,
    "dns-server-timeout": 1000,
    "ncr-protocol": "UDP",
    "ncr-format": "JSON",
    "control-socket": { "socket-type": "unix", "socket-name": "/run/kea/kea-ddns-ctrl-socket" },
    "tsig-keys": "@TSIG_KEYS@",
    "forward-ddns": { "ddns-domains": [domain(dns.domain)] },
    "reverse-ddns": {
      "ddns-domains": dns.authZones.filter((z) => z.kind !== "forward").map((z) => domain(z.name)),
    },
    loggers: [
      {
        name: "kea-dhcp-ddns",
        output_options: [{ output: "stdout", pattern: "%-5p %m\n" }],
        severity: "INFO",
        debuglevel: 0,
      },
    ],
  };
  const text = JSON.stringify({ DhcpDdns: body }, null, 2);
  // Kea's own include directive takes the key list from the Secret at load time (the parser allows it anywhere
  // a value may stand); JSON.stringify cannot write it, so it replaces a marker.
  return `// kea-dhcp-ddns of site ${site.site.name} (rendered)\n${text.replace('"@TSIG_KEYS@"', `<?include "${D2_TSIG_FILE}"?>`)}\n`;
}

/** The D2 key list (from the Secret). */
export function renderD2Tsig(secret: string): string {
  return `${JSON.stringify([{ name: TSIG_KEY_NAME, algorithm: "HMAC-SHA256", secret }], null, 2)}\n`;
}

/** The DHCP servers' global DDNS settings: where D2 listens and how names are formed and defended. */
export function keaDdnsGlobal(): Record<string, unknown> {
  return {
    "dhcp-ddns": {
      "enable-updates": true,
      "server-ip": "127.0.0.1",
      "server-port": PORTS.ddns,
      "sender-ip": "127.0.0.1",
      "sender-port": 0,
      "max-queue-size": 1024,
      "ncr-protocol": "UDP",
      "ncr-format": "JSON",
    },
    // The server updates both names itself, whatever the client asks (a client must not write to the zone).
    "ddns-override-client-update": true,
    "ddns-override-no-update": true,
    "ddns-replace-client-name": "never",
    "ddns-update-on-renew": false,
    // RFC 4703: a name another client (DHCID) or a static record holds is not taken.
    "ddns-use-conflict-resolution": true,
    "hostname-char-set": "[^A-Za-z0-9.-]",
    "hostname-char-replacement": "-",
  };
}

/** A segment's DDNS settings: its clients' names are `<host>.<segment>.<site domain>`. */
export function keaDdnsSubnet(seg: SegmentPlan): Record<string, unknown> {
  return { "ddns-send-updates": true, "ddns-qualifying-suffix": `${seg.domain}.` };
}
