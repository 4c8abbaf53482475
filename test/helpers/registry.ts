/**
 * A real OCI registry for tests (Debian's distribution registry, `docker-registry`): TLS with a test CA on a free
 * loopback port, htpasswd authentication when credentials are given. skopeo and the other Go clients trust it
 * through `SSL_CERT_FILE` in the returned environment, as the operator's machine trusts its registry's certificate
 * through the system store.
 */
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { stopProcess, testCertificates, waitFor } from "../ebpf/lib";

/** Commands the registry needs (for a test tier). */
export const REGISTRY_COMMANDS = ["docker-registry", "htpasswd", "openssl", "curl"];

export interface TestRegistry {
  /** host:port */
  server: string;
  /** The test CA's certificate (PEM file). */
  ca: string;
  /** process.env plus SSL_CERT_FILE: the environment a client that must trust the registry runs in. */
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (closed again: the caller binds it). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? res(a.port) : rej(new Error("no port"))));
    });
  });
}

/** Starts a registry storing under `dir` and waits until it answers; with `auth`, every request needs it. */
export async function startRegistry(dir: string, auth?: { user: string; password: string }): Promise<TestRegistry> {
  testCertificates(dir, "127.0.0.1", "router registry");
  if (auth) {
    const h = spawnSync("htpasswd", ["-niB", auth.user], { input: auth.password, encoding: "utf8" });
    if (h.status !== 0) throw new Error(`htpasswd failed: ${h.stderr}`);
    writeFileSync(join(dir, "htpasswd"), h.stdout);
  }
  const server = `127.0.0.1:${await freePort()}`;
  writeFileSync(
    join(dir, "config.yml"),
    [
      "version: 0.1",
      "log: { level: warn }",
      `storage: { filesystem: { rootdirectory: ${dir}/data } }`,
      `http: { addr: "${server}", tls: { certificate: ${dir}/srv.pem, key: ${dir}/srv.key } }`,
      ...(auth ? [`auth: { htpasswd: { realm: router-test, path: ${dir}/htpasswd } }`] : []),
      "",
    ].join("\n"),
  );
  const registry = spawn("docker-registry", ["serve", join(dir, "config.yml")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let regErr = "";
  registry.stderr?.on("data", (d: Buffer) => (regErr += d.toString()));
  const ca = join(dir, "ca.pem");
  await waitFor(`the registry on ${server} (${regErr})`, () => {
    const r = spawnSync(
      "curl",
      ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca, `https://${server}/v2/`],
      { encoding: "utf8" },
    );
    return r.stdout === (auth ? "401" : "200");
  });
  return { server, ca, env: { ...process.env, SSL_CERT_FILE: ca }, stop: () => stopProcess(registry) };
}
