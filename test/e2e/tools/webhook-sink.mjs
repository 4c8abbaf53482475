// SPDX-License-Identifier: Apache-2.0
/*
 * webhook-sink: the virtual appliance's alert receiver.
 *
 *   node webhook-sink.mjs ADDRESS PORT
 *       Listens for HTTP on ADDRESS:PORT and answers every request 200. Each POST body that is JSON is printed to
 *       stdout as one line `{"at": MS_SINCE_EPOCH, "path": PATH, "body": BODY}`; anything else as
 *       `{"at": MS, "path": PATH, "invalid": TEXT}`. Prints `listening` once bound. Runs until killed.
 *
 * Alertmanager's webhook integration POSTs one JSON document per notification (a group's alerts with their
 * status, labels and times): prometheus/alertmanager notify/webhook/webhook.go, `Message`.
 */
import { createServer } from "node:http";
import process from "node:process";

const [address, port] = process.argv.slice(2);
const server = createServer((req, res) => {
  let text = "";
  req.setEncoding("utf8");
  req.on("data", (chunk) => (text += chunk));
  req.on("end", () => {
    let line;
    try {
      line = { at: Date.now(), path: req.url, body: JSON.parse(text) };
    } catch {
      line = { at: Date.now(), path: req.url, invalid: text };
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
    res.writeHead(200).end();
  });
});
server.listen(Number(port), address, () => process.stdout.write("listening\n"));
