// SPDX-License-Identifier: Apache-2.0
/*
 * feed-server: the test internet's web server of domain lists (the sites' feed URLs).
 *
 *   node feed-server.mjs ADDRESS CERT KEY DIR PORT...
 *       Listens for HTTPS on ADDRESS at each PORT with the certificate CERT (PEM, the chain's leaf first) and its
 *       key KEY. A GET of https://HOST[:PORT]/PATH?QUERY answers 200 with the file DIR/<encodeURIComponent of
 *       HOST/PATH?QUERY> (read at each request, so a test publishes a new body by renaming a file over it), 404
 *       when there is none, 405 to any other method. HOST is the request's Host header without its port (what
 *       a client sends for the URL's host, RFC 9110 section 7.2). Prints one line `{"host", "path", "status"}`
 *       per request and `listening` once every port is bound. Runs until killed.
 */
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { createServer } from "node:https";
import { join } from "node:path";
import process from "node:process";

const [address, cert, key, dir, ...ports] = process.argv.slice(2);
const tls = { cert: readFileSync(cert), key: readFileSync(key) };

/** The body file of a request, by its host (without port) and its path with query. */
function bodyFile(host, path) {
  return join(dir, encodeURIComponent(`${host.replace(/:\d+$/, "").toLowerCase()}${path}`));
}

async function answer(req, res) {
  const host = req.headers.host ?? "";
  let status = 405;
  let body = "";
  if (req.method === "GET") {
    try {
      body = await readFile(bodyFile(host, req.url ?? "/"));
      status = 200;
    } catch {
      status = 404;
    }
  }
  process.stdout.write(`${JSON.stringify({ host, path: req.url, status })}\n`);
  res.writeHead(status, { "content-type": "text/plain" }).end(status === 200 ? body : "");
}

let bound = 0;
for (const port of ports)
  createServer(tls, (req, res) => void answer(req, res)).listen(Number(port), address, () => {
    if (++bound === ports.length) process.stdout.write("listening\n");
  });
