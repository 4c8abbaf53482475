// A scripted single-hop BFD neighbour (RFC 5880 section 4.1 control packets, RFC 5881 ports), written from the RFCs
// alone: it sends what a plan says and records every control packet it receives, so a test can watch how the other
// end's state machine answers.
//
//   node bfd-neighbour.mjs LOCAL PEER PLAN_JSON
//
// PLAN_JSON: [{ "ms": duration, "state": "down"|"init"|"up", "my": discriminator, "your": "zero"|"learned" }, ...]
// Each step sends a packet every 300 ms for its duration. "learned" puts the last My Discriminator received from
// the peer in Your Discriminator. At the end the script prints one JSON line: every packet received, with the time
// since start, the sender's state and both discriminators.
import { Buffer } from "node:buffer";
import console from "node:console";
import dgram from "node:dgram";
import process from "node:process";
import { setTimeout } from "node:timers";

const [local, peer, planJson] = process.argv.slice(2);
const plan = JSON.parse(planJson);
const STATES = ["admin-down", "down", "init", "up"];
const INTERVAL_US = 300_000;
const t0 = Date.now();
const received = [];
let learned = 0;

const rx = dgram.createSocket("udp4");
rx.on("message", (b) => {
  if (b.length < 24 || b[0] >> 5 !== 1) return;
  const your = b.readUInt32BE(8);
  learned = b.readUInt32BE(4);
  received.push({ t: Date.now() - t0, state: STATES[b[1] >> 6], poll: (b[1] & 0x20) !== 0, my: learned, your });
});
await new Promise((resolve) => rx.bind(3784, local, resolve));

const tx = dgram.createSocket("udp4");
await new Promise((resolve) => tx.bind(49152 + (process.pid % 16000), local, resolve));
tx.setTTL(255);

function packet(step) {
  const b = Buffer.alloc(24);
  b[0] = 1 << 5; // version 1, diagnostic 0
  b[1] = STATES.indexOf(step.state) << 6;
  b[2] = 3; // detect multiplier
  b[3] = 24; // length
  b.writeUInt32BE(step.my, 4);
  b.writeUInt32BE(step.your === "learned" ? learned : 0, 8);
  b.writeUInt32BE(INTERVAL_US, 12); // desired min TX
  b.writeUInt32BE(INTERVAL_US, 16); // required min RX
  b.writeUInt32BE(0, 20); // required min echo RX
  return b;
}

console.log("ready");
for (const step of plan) {
  const end = Date.now() + step.ms;
  while (Date.now() < end) {
    tx.send(packet(step), 3784, peer);
    await new Promise((r) => setTimeout(r, INTERVAL_US / 1000));
  }
}
console.log(JSON.stringify(received));
rx.close();
tx.close();
