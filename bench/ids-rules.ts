/**
 * A generated Suricata rule set of a realistic size for bench:ids (no real set is at hand offline): `n` rules in
 * the proportions of a public set's common kinds — TCP payload content on a destination port, HTTP URI and
 * header, DNS query names, TLS server names — each with its own fast pattern, so the multi-pattern matcher and
 * the rule groups grow as with a real set. None matches the benchmark's traffic (iperf3's random payload against
 * 16-character tokens). Sids from 8,000,000. Deterministic.
 */
import { createHash } from "node:crypto";

const SID_BASE = 8_000_000;

/** A 16-character token of rule i (hex of a hash: printable, distinct). */
function token(i: number): string {
  return createHash("sha256").update(`bench-ids-${i}`).digest("hex").slice(0, 16);
}

/** Rule i of the set. */
function rule(i: number): string {
  const sid = SID_BASE + i;
  const t = token(i);
  const msg = `BENCH generated ${i}`;
  switch (i % 20) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
    case 7: {
      const port = [21, 22, 25, 80, 443, 445, 1433, 3306, 3389, 5432, 8080, 8443][i % 12];
      return `alert tcp $EXTERNAL_NET any -> $HOME_NET ${port} (msg:"${msg}"; flow:established,to_server; content:"${t}"; classtype:misc-activity; sid:${sid}; rev:1;)`;
    }
    case 8:
    case 9:
    case 10:
    case 11:
      return `alert http $EXTERNAL_NET any -> $HOME_NET any (msg:"${msg}"; flow:established,to_server; http.uri; content:"/${t}"; classtype:web-application-attack; sid:${sid}; rev:1;)`;
    case 12:
    case 13:
      return `alert http $HOME_NET any -> $EXTERNAL_NET any (msg:"${msg}"; flow:established,to_server; http.user_agent; content:"${t}"; classtype:trojan-activity; sid:${sid}; rev:1;)`;
    case 14:
    case 15:
    case 16:
      return `alert dns $HOME_NET any -> any any (msg:"${msg}"; dns.query; content:"${t}.example"; nocase; classtype:trojan-activity; sid:${sid}; rev:1;)`;
    default:
      return `alert tls $HOME_NET any -> $EXTERNAL_NET any (msg:"${msg}"; flow:established,to_server; tls.sni; content:"${t}.example"; nocase; classtype:trojan-activity; sid:${sid}; rev:1;)`;
  }
}

/** The generated rules, one per line. */
export function generatedRules(n: number): string {
  return `${Array.from({ length: n }, (_, i) => rule(i)).join("\n")}\n`;
}
