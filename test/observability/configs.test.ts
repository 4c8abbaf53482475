/**
 * The observability stack's rendered configurations through the real tools: `promtool check config` and
 * `check rules`, `amtool check-config`, `syslog-ng --syntax-only`; every dashboard query parsed by the PromQL
 * grammar (@prometheus-io/lezer-promql) with no error node, and every metric a panel or rule reads written by
 * something a scrape job of the site collects.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parser } from "@prometheus-io/lezer-promql";
import { devSite } from "../helpers/dev-site";
import { tier } from "../helpers/tier";
import { renderStackFiles } from "../../components/observability-stack/files";
import { dashboardQueries, dashboardSpecs } from "../../components/observability-stack/dashboards";
import { PROMETHEUS_RULES, REMOTE_WRITE_PASSWORD_FILE } from "../../components/observability-stack/prometheus";
import { SMTP_PASSWORD_FILE, WEBHOOK_TOKEN_FILE } from "../../components/observability-stack/alertmanager";
import { SA_DIR, scrapeJobs } from "../../components/observability-stack/targets";
import { alertRules } from "../../components/observability-stack/alerts";
import { dnsScrapes } from "../../components/dns-stack/scrape";
import { compilePolicy } from "../../components/site/policy";

const work = mkdtempSync(join(tmpdir(), "obs-configs-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * The dev site with every option of the stack in use (forwarding, receivers of both kinds, collectors, Zeek's logs,
 * the BGP and OSPF collectors and their rules).
 */
function fullSite() {
  return devSite((raw) => {
    raw.ids.zeek = { enabled: true, image: `docker.io/zeek/zeek:7.0.5@sha256:${"a".repeat(64)}` };
    raw.observability = {
      remoteWrite: { url: "https://metrics.example.net/api/v1/write", username: "lab" },
      alerts: {
        receivers: [
          { name: "noc", webhook: { url: "https://hooks.example.net/router" } },
          {
            name: "mail",
            email: {
              to: ["noc@example.net"],
              from: "router@example.net",
              smarthost: "smtp.example.net:587",
              username: "router",
            },
          },
        ],
      },
      logs: { forward: { url: "https://logs.example.net/insert/jsonline", username: "lab" } },
      flows: { collectors: ["192.0.2.10:4739"] },
    };
    raw.routing = {
      bgp: { asn: 65010, routerId: "10.50.0.1", neighbors: [{ address: "10.50.0.250", asn: 65020, bfd: true }] },
      ospf: { routerId: "10.50.0.1", segments: ["servers"] },
    };
    raw.remoteWritePassword = "pw";
    raw.alertWebhookToken = "tok";
    raw.alertSmtpPassword = "pw";
    raw.logForwardPassword = "pw";
  });
}

const sites = { "the dev site": devSite(), "the dev site with every option": fullSite() };

/**
 * Runs a command in a private mount namespace where the files a configuration names (service-account token,
 * secret files, the rule file) exist, as they do in the pod.
 */
function inPod(files: Record<string, string>, argv: string[]) {
  const lines = ["set -e"];
  const dirs = new Set(Object.keys(files).map((p) => p.replace(/\/[^/]+$/, "")));
  for (const d of dirs) {
    const root = d.split("/").slice(0, 2).join("/");
    const scratch = join(work, `root-${root.replace(/\W/g, "")}`);
    mkdirSync(scratch, { recursive: true });
    lines.push(`mountpoint -q ${root} || mount -t tmpfs none ${root} 2>/dev/null || true`, `mkdir -p ${d}`);
  }
  Object.entries(files).forEach(([p, content], i) => {
    const src = join(work, `file-${i}`);
    writeFileSync(src, content);
    lines.push(`cp ${src} ${p}`);
  });
  lines.push(`exec ${argv.map((a) => `'${a}'`).join(" ")}`);
  return spawnSync("unshare", ["-m", "sh", "-c", lines.join("\n")], { encoding: "utf8" });
}

const t = tier("observability validators", { root: true, commands: ["promtool", "amtool", "syslog-ng", "unshare"] });

describe.skipIf(!t.ok)("the observability stack's configurations", () => {
  for (const [title, { site, plan, policy }] of Object.entries(sites)) {
    const files = renderStackFiles(site, plan, policy, { webhookToken: true });
    const cm = files.configMaps;

    it(`pass promtool check config and check rules (${title})`, () => {
      const r = inPod(
        {
          [`${SA_DIR}/token`]: "token",
          [`${SA_DIR}/ca.crt`]: "ca",
          [REMOTE_WRITE_PASSWORD_FILE]: "pw",
          [PROMETHEUS_RULES]: cm["prometheus-rules"]["router.rules.yml"],
          "/etc/prometheus/config/prometheus.yml": cm.prometheus["prometheus.yml"],
        },
        ["promtool", "check", "config", "/etc/prometheus/config/prometheus.yml"],
      );
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/SUCCESS: \d+ rules found/);
    });

    it(`pass amtool check-config (${title})`, () => {
      const r = inPod(
        {
          [WEBHOOK_TOKEN_FILE]: "tok",
          [SMTP_PASSWORD_FILE]: "pw",
          "/etc/alertmanager/config/alertmanager.yml": cm.alertmanager["alertmanager.yml"],
        },
        ["amtool", "check-config", "/etc/alertmanager/config/alertmanager.yml"],
      );
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`${site.observability.alerts.receivers.length + 1} receivers`);
    });

    it(`pass syslog-ng --syntax-only (${title})`, () => {
      const r = inPod(
        {
          "/etc/syslog-ng/secrets/forward.conf": '@define forward_password "pw"\n',
          "/etc/syslog-ng/conf/syslog-ng.conf": cm["log-collector"]["syslog-ng.conf"],
        },
        ["syslog-ng", "--syntax-only", "-f", "/etc/syslog-ng/conf/syslog-ng.conf"],
      );
      expect(r.status, r.stdout + r.stderr).toBe(0);
    });
  }

  it("rejects a broken configuration, so the checks above can fail", () => {
    const r = inPod({ "/etc/prometheus/x.yml": "global: {scrape_interval: banana}\n" }, [
      "promtool",
      "check",
      "config",
      "/etc/prometheus/x.yml",
    ]);
    expect(r.status).not.toBe(0);
  });
});

describe("the dashboards", () => {
  const { site, plan } = devSite();
  const queries = dashboardQueries(site, plan);

  it("have an overview and one dashboard per area, every panel with a query", () => {
    const boards = new Set(queries.map((q) => q.dashboard));
    expect([...boards]).toEqual(
      expect.arrayContaining([
        "router-overview",
        "router-wan",
        "router-segments",
        "router-firewall",
        "router-dhcp",
        "router-dns",
        "router-system",
      ]),
    );
    for (const q of queries) expect(q.panel.query.length, q.panel.title).toBeGreaterThan(0);
  });

  it("have a dynamic routing dashboard exactly where the site routes, with a row per protocol it runs", () => {
    const rows = (s: typeof site) =>
      dashboardSpecs(s, plan)
        .filter((d) => d.uid === "router-routing")
        .flatMap((d) => d.rows.map((r) => r.title));
    expect(rows(site)).toEqual([]);
    const ospf = { ...site, routing: { ...site.routing, ospf: fullSite().site.routing.ospf } };
    const bgp = { ...site, routing: { ...site.routing, bgp: fullSite().site.routing.bgp } };
    expect(ospf.routing.ospf && bgp.routing.bgp).toBeTruthy();
    expect(rows(ospf)).toEqual(["OSPF"]);
    expect(rows(bgp)).toEqual(["BGP"]);
    expect(rows({ ...ospf, routing: { ...ospf.routing, bgp: bgp.routing.bgp } })).toEqual(["OSPF", "BGP"]);
  });

  const everyQuery = [...queries, ...dashboardQueries(fullSite().site, fullSite().plan)];
  it.each([...new Map(everyQuery.map((q) => [`${q.dashboard}: ${q.panel.title}`, q.panel.query])).entries()])(
    "parses %s as PromQL",
    (_title, query) => {
      const errors: number[] = [];
      parser.parse(query).iterate({ enter: (n) => void (n.type.isError && errors.push(n.from)) });
      expect(errors, query).toEqual([]);
    },
  );

  it.each(Object.entries(sites))(
    "read only metrics a scrape job of %s collects, each router_* one written by the exporter's source",
    (_name, { site, plan }) => {
      const policy = compilePolicy(site, plan);
      const jobs = new Set(scrapeJobs(site, plan, [dnsScrapes(site, plan, policy)]).map((j) => j.job));
      const root = join(__dirname, "../..");
      const read = (...files: string[]) => files.map((f) => readFileSync(join(root, f), "utf8")).join("\n");
      const loader = readdirSync(join(root, "ebpf/loader"))
        .filter((f) => f.endsWith(".c"))
        .map((f) => `ebpf/loader/${f}`);
      // Who writes each family of metric and the job that scrapes it; the router's own, in which source.
      const families: { name: RegExp; job: string; source?: string }[] = [
        { name: /^router_dataplane_/, job: "dataplane", source: read(...loader) },
        { name: /^router_dns_/, job: "dns", source: read("images/dns/stats/metrics.c") },
        { name: /^router_dhcp_/, job: "node", source: read("images/observability/router-dhcp-metrics") },
        { name: /^router_flow_/, job: "node", source: read("images/observability/router-talker-metrics") },
        { name: /^router_ids_/, job: "node", source: read("images/ids/router-ids-metrics") },
        { name: /^router_bgp_/, job: "node", source: read("images/observability/router-bgp-metrics") },
        { name: /^router_ospf_/, job: "node", source: read("images/observability/router-ospf-metrics") },
        { name: /^node_/, job: "node" },
        { name: /^container_/, job: "cadvisor" },
        { name: /^kubelet_/, job: "kubelet" },
        { name: /^(up|ALERTS)$/, job: "prometheus" },
      ];
      const exprs = [
        ...dashboardQueries(site, plan).map((q) => q.panel.query),
        ...alertRules(site, plan).map((r) => r.expr),
      ];
      const problems: string[] = [];
      for (const expr of exprs)
        parser.parse(expr).iterate({
          enter: (n) => {
            if (n.name !== "VectorSelector") return;
            const id = n.node.getChild("Identifier");
            if (!id) return;
            const metric = expr.slice(id.from, id.to);
            const f = families.find((x) => x.name.test(metric));
            if (!f) problems.push(`${metric}: no exporter of the router writes it (${expr})`);
            else if (!jobs.has(f.job)) problems.push(`${metric}: no job ${f.job} scrapes it`);
            else if (f.source && !new RegExp(`${metric}(?![a-z0-9_])`).test(f.source))
              problems.push(`${metric}: its exporter's source does not write it`);
          },
        });
      expect(problems).toEqual([]);
    },
  );

  it("finds a PromQL syntax error (the parse check can fail)", () => {
    let error = false;
    parser.parse("sum(rate(x[5m])").iterate({ enter: (n) => void (n.type.isError && (error = true)) });
    expect(error).toBe(true);
  });
});
