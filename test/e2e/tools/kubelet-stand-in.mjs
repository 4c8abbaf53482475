// SPDX-License-Identifier: Apache-2.0
/*
 * kubelet-stand-in: the node's kubelet port (10250) in the virtual appliance, which has no kubelet.
 *
 *   node kubelet-stand-in.mjs STATE_FILE KEY_FILE CERT_FILE [PORT]
 *       Listens on PORT (10250) on every address. STATE_FILE (JSON, read again on every request, so the harness
 *       can add pods while it runs) holds the node's name, the service-account tokens the harness mounted in
 *       pods, the render's RBAC objects and every container the harness runs with its memory cgroup:
 *         { "node": NAME, "tokens": { TOKEN: { "namespace": NS, "serviceAccount": SA } }, "rbac": [OBJECT...],
 *           "cgroup": { "version": 1 | 2, "mount": DIR },
 *           "pods": [ { "pod": NAME, "namespace": NS, "cgroup": DIR,
 *                       "containers": [ { "container": NAME, "image": REF, "cgroup": DIR } ] } ] }
 *       Prints `listening` once bound. Runs until killed.
 *
 * What it models of the kubelet (kubernetes/kubernetes pkg/kubelet/server):
 * - HTTPS with a self-signed serving certificate (Talos' kubelet has no CA-signed one unless asked);
 * - authentication by bearer token only (Talos turns the kubelet's anonymous authentication off): no token or an
 *   unknown one is 401 Unauthorized (the real one asks the API server with a TokenReview; here the tokens are the
 *   ones the harness mounted);
 * - authorization as the kubelet's webhook authorizer asks it (auth.go, GetRequestAttributes): a path under
 *   /metrics is the `metrics` subresource of the `nodes` resource, named after the node, verb from the HTTP method
 *   (GET → get); the answer is the render's RBAC's, evaluated here the way the API server's RBAC authorizer does
 *   for a service account (user system:serviceaccount:NS:SA, groups system:serviceaccounts,
 *   system:serviceaccounts:NS and system:authenticated; ClusterRoleBindings only, nodes being cluster-scoped);
 *   refused is 403 with the kubelet's "Forbidden (user=…, verb=…, resource=…, subresource=…)";
 * - GET /metrics/cadvisor: cAdvisor's container_memory_usage_bytes and container_memory_working_set_bytes for
 *   every pod (container="") and container, labelled as the kubelet labels them (container, id, image, name,
 *   namespace, pod). The values are the kernel's accounting of the containers' real processes, read from their
 *   memory cgroups the way cAdvisor reads them (google/cadvisor container/libcontainer/handler.go,
 *   setMemoryStats): usage is memory.usage_in_bytes (cgroup v1) or memory.current (v2); the working set is usage
 *   less inactive file pages (memory.stat total_inactive_file on v1, inactive_file on v2), 0 when they exceed it.
 *   Nothing else of the kubelet is served (its own /metrics is 404 here).
 *
 * The probes of the appliance's firewall tests wait for the server to speak first (test/e2e/tools/netprobe.c,
 * `serve`): a connection that sends nothing within 300 ms gets netprobe's answer ("router tcp PORT PEER") instead,
 * so the kubelet's port answers those probes as every other node port does. A TLS client speaks first.
 */
import { readFileSync } from "node:fs";
import { createServer as createHttps } from "node:https";
import { createServer as createTcp } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { setTimeout, clearTimeout } from "node:timers";
import { URL } from "node:url";

const [stateFile, keyFile, certFile, portArg] = process.argv.slice(2);
const port = Number(portArg ?? 10250);

const readState = () => JSON.parse(readFileSync(stateFile, "utf8"));
const readNumber = (file) => Number(readFileSync(file, "utf8").trim());

/** The key of memory.stat in a cgroup, or undefined. */
function statValue(dir, key) {
  for (const line of readFileSync(join(dir, "memory.stat"), "utf8").split("\n")) {
    const [k, v] = line.split(" ");
    if (k === key) return Number(v);
  }
  return undefined;
}

/** cAdvisor's usage and working set of a memory cgroup (handler.go setMemoryStats). */
function memoryOf(version, dir) {
  const usage = readNumber(join(dir, version === 2 ? "memory.current" : "memory.usage_in_bytes"));
  const inactive = statValue(dir, version === 2 ? "inactive_file" : "total_inactive_file");
  const workingSet = inactive === undefined ? usage : usage < inactive ? 0 : usage - inactive;
  return { usage, workingSet };
}

const escapeLabel = (v) => String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const labelText = (labels) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeLabel(labels[k])}"`)
    .join(",");

function cadvisorMetrics(state) {
  const series = [];
  const idOf = (dir) => `/${dir.slice(state.cgroup.mount.length).replace(/^\/+/, "")}`;
  for (const p of state.pods) {
    const cgroups = [
      { labels: { container: "", image: "", name: "" }, dir: p.cgroup },
      ...p.containers.map((c) => ({
        labels: { container: c.container, image: c.image, name: c.container },
        dir: c.cgroup,
      })),
    ];
    for (const { labels, dir } of cgroups) {
      let m;
      try {
        m = memoryOf(state.cgroup.version, dir);
      } catch {
        continue; // a container that has stopped and whose cgroup is gone
      }
      series.push({ labels: { ...labels, id: idOf(dir), namespace: p.namespace, pod: p.pod }, ...m });
    }
  }
  const out = [];
  const family = (name, help, value) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const s of series) out.push(`${name}{${labelText(s.labels)}} ${value(s)}`);
  };
  family(
    "container_memory_usage_bytes",
    "Current memory usage in bytes, including all memory regardless of when it was accessed",
    (s) => s.usage,
  );
  family("container_memory_working_set_bytes", "Current working set in bytes.", (s) => s.workingSet);
  return `${out.join("\n")}\n`;
}

const VERBS = { GET: "get", HEAD: "get", POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete" };

/** The kubelet's request attributes for a path (auth.go): [subresource] of nodes/NODE. */
function subresourceOf(path) {
  for (const [prefix, sub] of [
    ["/stats", "stats"],
    ["/metrics", "metrics"],
    ["/logs", "log"],
    ["/spec", "spec"],
    ["/checkpoint", "checkpoint"],
  ])
    if (path === prefix || path.startsWith(`${prefix}/`)) return sub;
  return "proxy";
}

const has = (list, value) => (list ?? []).includes(value) || (list ?? []).includes("*");

/** Whether the RBAC objects allow `who` `verb` on nodes/`sub` named `node` (cluster scope). */
function allowed(rbac, who, verb, sub, node) {
  const user = `system:serviceaccount:${who.namespace}:${who.serviceAccount}`;
  const groups = ["system:serviceaccounts", `system:serviceaccounts:${who.namespace}`, "system:authenticated"];
  const roles = new Map(rbac.filter((o) => o.kind === "ClusterRole").map((o) => [o.metadata.name, o]));
  for (const b of rbac.filter((o) => o.kind === "ClusterRoleBinding")) {
    const bound = (b.subjects ?? []).some(
      (s) =>
        (s.kind === "ServiceAccount" && s.name === who.serviceAccount && s.namespace === who.namespace) ||
        (s.kind === "User" && s.name === user) ||
        (s.kind === "Group" && groups.includes(s.name)),
    );
    const role = b.roleRef?.kind === "ClusterRole" ? roles.get(b.roleRef.name) : undefined;
    if (!bound || !role) continue;
    for (const r of role.rules ?? []) {
      if (r.nonResourceURLs) continue;
      const resource = has(r.resources, `nodes/${sub}`) || (r.resources ?? []).includes(`*/${sub}`);
      const named = !r.resourceNames?.length || r.resourceNames.includes(node);
      if (has(r.verbs, verb) && has(r.apiGroups, "") && resource && named) return { user, ok: true };
    }
  }
  return { user, ok: false };
}

const https = createHttps({ key: readFileSync(keyFile), cert: readFileSync(certFile) }, (req, res) => {
  const state = readState();
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1]?.trim();
  const who = token === undefined ? undefined : state.tokens[token];
  if (!who) return res.writeHead(401, { "content-type": "text/plain" }).end("Unauthorized");
  const path = new URL(req.url, "https://kubelet").pathname;
  const verb = VERBS[req.method] ?? req.method.toLowerCase();
  const sub = subresourceOf(path);
  const a = allowed(state.rbac, who, verb, sub, state.node);
  if (!a.ok)
    return res
      .writeHead(403, { "content-type": "text/plain" })
      .end(`Forbidden (user=${a.user}, verb=${verb}, resource=nodes, subresource=${sub})`);
  if (req.method !== "GET" || path !== "/metrics/cadvisor")
    return res.writeHead(404, { "content-type": "text/plain" }).end("404 page not found\n");
  res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(cadvisorMetrics(state));
});
https.on("tlsClientError", () => {});

const tcp = createTcp((socket) => {
  socket.on("error", () => {});
  const peer = (socket.remoteAddress ?? "").replace(/^::ffff:/, "");
  const greet = setTimeout(() => socket.end(`router tcp ${port} ${peer}\n`), 300);
  socket.once("data", (chunk) => {
    clearTimeout(greet);
    socket.pause();
    socket.unshift(chunk);
    // a TLS record of type handshake starts a TLS client's first flight
    if (chunk[0] === 0x16) https.emit("connection", socket);
    else socket.destroy();
  });
});
tcp.listen(port, "::", () => process.stdout.write("listening\n"));
