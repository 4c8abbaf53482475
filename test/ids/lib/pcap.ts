/**
 * A small packet-capture writer for the IDS samples: Ethernet/IPv4 frames with TCP (a real handshake, sequence
 * and acknowledgement numbers, data both ways, FIN) and UDP, checksums computed, written as a classic pcap file
 * (libpcap's format: magic a1b2c3d4, version 2.4, link type 1 = Ethernet; tcpdump's and Suricata's readers take
 * it). Deterministic: timestamps advance 1 ms per frame from a fixed start, so a sample is the same bytes every
 * run.
 */
import { writeFileSync } from "node:fs";

const START = 1_767_225_600; // 2026-01-01T00:00:00Z

function ip4(a: string): Buffer {
  return Buffer.from(a.split(".").map(Number));
}

/** The Internet checksum (RFC 1071) of the buffers, as one sequence. */
function checksum(...parts: Buffer[]): number {
  const b = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function ipv4(src: string, dst: string, proto: number, l4: Buffer, id: number): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + l4.length, 2);
  h.writeUInt16BE(id & 0xffff, 4);
  h.writeUInt16BE(0x4000, 6); // don't fragment
  h[8] = 64;
  h[9] = proto;
  ip4(src).copy(h, 12);
  ip4(dst).copy(h, 16);
  h.writeUInt16BE(checksum(h), 10);
  return Buffer.concat([h, l4]);
}

function pseudo(src: string, dst: string, proto: number, len: number): Buffer {
  const p = Buffer.alloc(12);
  ip4(src).copy(p, 0);
  ip4(dst).copy(p, 4);
  p[9] = proto;
  p.writeUInt16BE(len, 10);
  return p;
}

export const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

export interface Endpoint {
  ip: string;
  port: number;
}

/** A capture being written: frames in order. */
export class Capture {
  private frames: Buffer[] = [];
  private id = 1;

  private ether(payload: Buffer): Buffer {
    const e = Buffer.alloc(14);
    Buffer.from([0x02, 0, 0, 0, 0, 0x02]).copy(e, 0);
    Buffer.from([0x02, 0, 0, 0, 0, 0x01]).copy(e, 6);
    e.writeUInt16BE(0x0800, 12);
    return Buffer.concat([e, payload]);
  }

  tcp(from: Endpoint, to: Endpoint, flags: number, seq: number, ack: number, data = Buffer.alloc(0)): void {
    const t = Buffer.alloc(20);
    t.writeUInt16BE(from.port, 0);
    t.writeUInt16BE(to.port, 2);
    t.writeUInt32BE(seq >>> 0, 4);
    t.writeUInt32BE(ack >>> 0, 8);
    t[12] = 5 << 4;
    t[13] = flags;
    t.writeUInt16BE(64_240, 14);
    const seg = Buffer.concat([t, data]);
    seg.writeUInt16BE(checksum(pseudo(from.ip, to.ip, 6, seg.length), seg), 16);
    this.frames.push(this.ether(ipv4(from.ip, to.ip, 6, seg, this.id++)));
  }

  udp(from: Endpoint, to: Endpoint, data: Buffer): void {
    const u = Buffer.alloc(8);
    u.writeUInt16BE(from.port, 0);
    u.writeUInt16BE(to.port, 2);
    u.writeUInt16BE(8 + data.length, 4);
    const dgram = Buffer.concat([u, data]);
    dgram.writeUInt16BE(checksum(pseudo(from.ip, to.ip, 17, dgram.length), dgram) || 0xffff, 6);
    this.frames.push(this.ether(ipv4(from.ip, to.ip, 17, dgram, this.id++)));
  }

  /** A TCP connection from client to server: handshake, then `exchange` (data both ways), then FIN both ways. */
  session(client: Endpoint, server: Endpoint, exchange: (string | Buffer)[][]): void {
    let cs = 1000 + client.port * 7;
    let ss = 50_000 + server.port * 13;
    this.tcp(client, server, TCP.SYN, cs, 0);
    this.tcp(server, client, TCP.SYN | TCP.ACK, ss, cs + 1);
    cs++;
    ss++;
    this.tcp(client, server, TCP.ACK, cs, ss);
    for (const [req, resp] of exchange) {
      const q = Buffer.from(req ?? "");
      if (q.length) {
        this.tcp(client, server, TCP.PSH | TCP.ACK, cs, ss, q);
        cs += q.length;
        this.tcp(server, client, TCP.ACK, ss, cs);
      }
      const r = Buffer.from(resp ?? "");
      if (r.length) {
        this.tcp(server, client, TCP.PSH | TCP.ACK, ss, cs, r);
        ss += r.length;
        this.tcp(client, server, TCP.ACK, cs, ss);
      }
    }
    this.tcp(client, server, TCP.FIN | TCP.ACK, cs, ss);
    this.tcp(server, client, TCP.FIN | TCP.ACK, ss, cs + 1);
    this.tcp(client, server, TCP.ACK, cs + 1, ss + 1);
  }

  /** A SYN answered by a reset (a closed port), as a scan sees it. */
  probe(client: Endpoint, server: Endpoint): void {
    const seq = 7000 + server.port;
    this.tcp(client, server, TCP.SYN, seq, 0);
    this.tcp(server, client, TCP.RST | TCP.ACK, 0, seq + 1);
  }

  write(path: string): void {
    const g = Buffer.alloc(24);
    g.writeUInt32LE(0xa1b2c3d4, 0);
    g.writeUInt16LE(2, 4);
    g.writeUInt16LE(4, 6);
    g.writeUInt32LE(65_535, 16);
    g.writeUInt32LE(1, 20);
    const recs = this.frames.map((f, i) => {
      const h = Buffer.alloc(16);
      h.writeUInt32LE(START + Math.floor(i / 1000), 0);
      h.writeUInt32LE((i % 1000) * 1000, 4);
      h.writeUInt32LE(f.length, 8);
      h.writeUInt32LE(f.length, 12);
      return Buffer.concat([h, f]);
    });
    writeFileSync(path, Buffer.concat([g, ...recs]));
  }
}

/** A DNS query for an A record (RFC 1035 wire format), id given. */
export function dnsQuery(name: string, id: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(0x0100, 2); // recursion desired
  h.writeUInt16BE(1, 4);
  return Buffer.concat([h, dnsName(name), Buffer.from([0, 1, 0, 1])]);
}

/** The answer to dnsQuery: the question again and one A record. */
export function dnsAnswer(name: string, id: number, address: string): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(0x8180, 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(1, 6);
  const rr = Buffer.alloc(16);
  rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
  rr.writeUInt16BE(1, 2);
  rr.writeUInt16BE(1, 4);
  rr.writeUInt32BE(300, 6);
  rr.writeUInt16BE(4, 10);
  ip4(address).copy(rr, 12);
  return Buffer.concat([h, dnsName(name), Buffer.from([0, 1, 0, 1]), rr]);
}

function dnsName(name: string): Buffer {
  return Buffer.concat([
    ...name.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0]),
  ]);
}

/** A TLS 1.2 ClientHello record (RFC 5246 §7.4.1.2) with a server_name extension (RFC 6066 §3). */
export function clientHello(sni: string): Buffer {
  const host = Buffer.from(sni);
  const sniList = Buffer.concat([Buffer.from([0]), u16(host.length), host]);
  const sniExt = Buffer.concat([u16(0), u16(sniList.length + 2), u16(sniList.length), sniList]);
  const groups = Buffer.concat([u16(10), u16(6), u16(4), u16(0x001d), u16(0x0017)]);
  const formats = Buffer.concat([u16(11), u16(2), Buffer.from([1, 0])]);
  const exts = Buffer.concat([sniExt, groups, formats]);
  const suites = [0xc02f, 0xc030, 0xc02b, 0xc02c, 0x009c, 0x002f];
  const body = Buffer.concat([
    u16(0x0303),
    Buffer.alloc(32, 0x5a),
    Buffer.from([0]),
    u16(suites.length * 2),
    ...suites.map(u16),
    Buffer.from([1, 0]),
    u16(exts.length),
    exts,
  ]);
  const hs = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), u16(hs.length), hs]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}
