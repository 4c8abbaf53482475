/**
 * Stack (intent) policies over the facts the layers publish: each with the dev site as its passing fixture and
 * failing fixtures whose messages are asserted — either a site variant rendered through the whole program (the
 * render stops with the violation and writes nothing), or, where site validation already refuses the mistake,
 * the published facts edited directly (the policy is the second line of defence).
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { RecordedResource } from "../../cli/mock-runtime";
import { PolicyViolationError, renderStack } from "../../cli/render";
import type { FirewallFacts, LayerReview, ObservabilityFacts } from "../../components/review";
import { managementKeepsApis } from "../../policies/intent/management";
import { wanAcceptsOnlyForwards } from "../../policies/intent/wan";
import { untrustedZonesNotAnyToAny } from "../../policies/intent/untrusted";
import { routerDnsNtpServed } from "../../policies/intent/served";
import { forwardTargetsAcceptingZones } from "../../policies/intent/forwards";
import { idsCoversRequiredPairs } from "../../policies/intent/ids";
import { observabilityForOperatorsOnly } from "../../policies/intent/observability";
import { ospfAuthenticatedWhereClientsAre } from "../../policies/intent/ospf";
import { devStack } from "../helpers/stacks";
import { devResources, message, run, violations } from "./helpers";

type Raw = Record<string, unknown>;
let dev: RecordedResource[];

/** The dev resources with the firewall facts edited. */
function withFirewall(edit: (fw: FirewallFacts) => void): RecordedResource[] {
  const rs = structuredClone(dev);
  edit((rs.find((r) => r.name === "lab-dataplane")!.outputs!.review as LayerReview).firewall!);
  return rs;
}

/** Renders a dev variant; returns the mandatory messages of one policy (the render must have stopped on them). */
async function renderViolations(policy: string, edit: (raw: Raw) => void): Promise<string[]> {
  try {
    await renderStack({ stack: "dev", config: devStack(edit), enforcePolicies: true });
  } catch (e) {
    if (!(e instanceof PolicyViolationError)) throw e;
    return e.findings.filter((f) => f.level === "mandatory" && f.policy === policy).map(message);
  }
  throw new Error("the render passed the policy pack");
}
const policiesOf = (raw: Raw) => (raw.firewall as { policies: Raw[] }).policies;
const rulesOf = (raw: Raw) => (raw.firewall as { rules: Raw[] }).rules;

beforeAll(async () => {
  dev = await devResources();
}, 60_000);

describe("management-keeps-apis", () => {
  it("passes the dev site", async () => {
    expect(await run(managementKeepsApis(), dev)).toEqual([]);
  });

  it("refuses facts in which the management zone loses the Talos API", async () => {
    const rs = withFirewall((fw) => (fw.managementAccess.find((a) => a.port === 50000)!.verdict = "drop"));
    expect(await violations(managementKeepsApis(), rs)).toEqual([
      "management zone mgmt would lose the Talos API (tcp/50000): the zone policy answers drop (allowed: accept from every management zone)",
    ]);
  });

  it("refuses a site whose only management zone has no segment", async () => {
    const rs = withFirewall((fw) => {
      fw.managementAccess = [];
    });
    expect(await violations(managementKeepsApis(), rs)).toEqual([
      "management zone mgmt has no segment, so no host can reach the Talos and Kubernetes APIs from it (allowed: a segment in it)",
    ]);
  });
});

describe("wan-accepts-only-forwards", () => {
  it("passes the dev site (its forwards publish the NAS and WireGuard)", async () => {
    expect(await run(wanAcceptsOnlyForwards(), dev)).toEqual([]);
  });

  it("stops the render of a site that accepts the internet into a zone, by policy or by rule", async () => {
    expect(
      await renderViolations("wan-accepts-only-forwards", (raw) => {
        policiesOf(raw).unshift({ from: "wan", to: "servers", action: "accept" });
        rulesOf(raw).push({
          name: "open-ssh",
          from: ["any"],
          to: ["trusted"],
          protocol: "tcp",
          ports: [22],
          action: "accept",
        });
      }),
    ).toEqual([
      "wan → servers accepts every new connection from the internet (allowed: drop or reject; publish a service with a port forward)",
      "rule open-ssh accepts new connections from wan into trusted (allowed: no accept rule from a WAN zone into an internal zone; publish a service with a port forward)",
    ]);
  }, 30_000);
});

describe("untrusted-zones-not-any-to-any", () => {
  it("passes the dev site (guests reach only the WAN)", async () => {
    expect(await run(untrustedZonesNotAnyToAny(), dev)).toEqual([]);
  });

  it("stops the render of a site that lets guests anywhere, or IoT devices anywhere on any port", async () => {
    expect(
      await renderViolations("untrusted-zones-not-any-to-any", (raw) => {
        policiesOf(raw).find((p) => p.from === "guest" && p.to === "any")!.action = "accept";
        rulesOf(raw).push({ name: "iot-anything", from: ["iot"], to: ["any"], protocol: "any", action: "accept" });
      }),
    ).toEqual([
      "the zone policy guest → any accepts everything from the untrusted zone guest (allowed: accept only toward the zones it needs, e.g. guest → wan)",
      "the untrusted zone guest is accepted into every other zone (iot, mgmt, servers, trusted, wan) (allowed: at least the management zone closed to it)",
      "rule iot-anything accepts any protocol and port from the untrusted zone iot to every zone (allowed: rules naming their zones, protocols or ports)",
    ]);
  }, 30_000);
});

describe("router-dns-ntp-served", () => {
  it("passes the dev site: the DNS layer serves every zone whose segments hand out the router's DNS", async () => {
    expect(await run(routerDnsNtpServed(), dev)).toEqual([]);
    const dns = dev.find((r) => r.name === "lab-dns")!.outputs!.review as LayerReview;
    expect(dns.served).toEqual([{ service: "dns", zones: ["guest", "iot", "mgmt", "servers", "trusted"] }]);
  });

  it("refuses facts in which the DNS layer stops serving a zone that is told to use it", async () => {
    const rs = structuredClone(dev);
    const dns = rs.find((r) => r.name === "lab-dns")!.outputs!.review as LayerReview;
    dns.served![0].zones = dns.served![0].zones.filter((z) => z !== "guest");
    const findings = await run(routerDnsNtpServed(), rs);
    expect(findings.map((f) => [f.level, message(f)])).toEqual([
      [
        "mandatory",
        "segment guest tells its clients to use the router (10.40.0.1, fd12:3456:789a:40::1) for DNS, but no layer of the router serves DNS to zone guest (allowed: serve dns to the zone, or hand out other servers)",
      ],
    ]);
  });

  it("stops the render of a site that sends a zone's clients to the router for DNS the router does not serve there", async () => {
    expect(
      await renderViolations("router-dns-ntp-served", (raw) => {
        (raw.zones as Raw[]).find((z) => z.name === "guest")!.services = ["dhcp", "ntp", "ping"];
        const dns = raw.dns as { zones: Raw[] };
        dns.zones = dns.zones.filter((z) => z.zone !== "guest");
        const guest = (raw.segments as Raw[]).find((s) => s.name === "guest")!;
        guest.dhcp = { ...(guest.dhcp as Raw), dnsServers: ["10.40.0.1"] };
      }),
    ).toEqual([
      "segment guest tells its clients to use the router (10.40.0.1) for DNS, but no layer of the router serves DNS to zone guest and zone guest does not have the dns service, so the firewall refuses it (allowed: serve dns to the zone, or hand out other servers)",
    ]);
  }, 30_000);

  it("refuses facts without a DNS layer at all: mandatory, not advisory", async () => {
    const rs = structuredClone(dev);
    delete (rs.find((r) => r.name === "lab-dns")!.outputs!.review as LayerReview).served;
    const findings = await run(routerDnsNtpServed(), rs);
    expect(findings.map((f) => f.level)).toEqual(Array(5).fill("mandatory"));
    expect(message(findings[0])).toBe(
      "segment mgmt tells its clients to use the router (10.10.0.1, fd12:3456:789a:10::1) for DNS, but the program has no layer that serves DNS at all (allowed: serve dns to the zone, or hand out other servers)",
    );
  });

  it("stops the render of a site that sends a zone's clients to the router for NTP the zone may not use", async () => {
    expect(
      await renderViolations("router-dns-ntp-served", (raw) => {
        const guest = (raw.segments as Raw[]).find((s) => s.name === "guest")!;
        guest.dhcp = { ...(guest.dhcp as Raw), ntpServers: ["10.40.0.1"] };
      }),
    ).toEqual([
      "segment guest tells its clients to use the router (10.40.0.1) for NTP, but no layer of the router serves NTP to zone guest and zone guest does not have the ntp service, so the firewall refuses it (allowed: serve ntp to the zone, or hand out other servers)",
    ]);
  }, 30_000);

  it("refuses facts in which chrony stops serving a zone that is told to use it", async () => {
    const rs = structuredClone(dev);
    const services = rs.find((r) => r.name === "lab-services")!.outputs!.review as LayerReview;
    services.served![0].zones = services.served![0].zones.filter((z) => z !== "trusted");
    expect(await violations(routerDnsNtpServed(), rs)).toEqual([
      "segment trusted tells its clients to use the router (10.20.0.1) for NTP, but no layer of the router serves NTP to zone trusted (allowed: serve ntp to the zone, or hand out other servers)",
    ]);
  });
});

describe("forward-targets-in-accepting-zones", () => {
  it("passes the dev site (forwards land in servers)", async () => {
    expect(await run(forwardTargetsAcceptingZones(), dev)).toEqual([]);
  });

  it("stops the render of a site that forwards the internet into the management zone or to an IoT device", async () => {
    expect(
      await renderViolations("forward-targets-in-accepting-zones", (raw) => {
        (raw.portForwards as Raw[]).push(
          { name: "switch-ui", protocol: "tcp", port: 8080, to: "10.10.0.2", toPort: 443 },
          { name: "camera", protocol: "tcp", port: 8554, to: "10.30.0.20", toPort: 554 },
        );
      }),
    ).toEqual([
      "port forward switch-ui (tcp/8080) sends the internet to 10.10.0.2:443, which is in the management zone mgmt (allowed: a host in servers, trusted)",
      "port forward camera (tcp/8554) sends the internet to 10.30.0.20:554, which is in zone iot, which does not accept published services (allowed: a host in servers, trusted)",
    ]);
  }, 30_000);
});

describe("ids-covers-required-pairs", () => {
  it("passes the dev site (its IDS layer inspects wan → servers inline, as the site asks)", async () => {
    expect(await run(idsCoversRequiredPairs(), dev)).toEqual([]);
    const ids = (dev.find((r) => r.type === "router:ids:IdsStack")!.outputs!.review as LayerReview).ids!;
    expect(ids.required).toEqual([{ from: "wan", to: "servers", mode: "inline" }]);
  });

  it("is not applicable when the site turns the IDS off", async () => {
    const rs = (await renderStack({ stack: "dev", config: devStack((raw) => ((raw.ids as Raw).enabled = false)) })).run
      .resources;
    expect(rs.some((r) => (r.outputs?.review as LayerReview | undefined)?.ids)).toBe(false);
    expect(await run(idsCoversRequiredPairs(), rs)).toEqual([]);
  }, 30_000);

  it("stops a render whose inline pair leads into a zone with no link (its queue rule matches nothing)", async () => {
    const found = await renderViolations("ids-covers-required-pairs", (raw) => {
      (raw.zones as Raw[]).push({ name: "dmz" });
      ((raw.ids as Raw).ips as { pairs: Raw[] }).pairs.push({ from: "wan", to: "dmz" });
    });
    expect(found).toEqual([
      "zone pair wan → dmz must be inspected inline but the IDS only detects there (allowed: inline, NFQUEUE, for the pair)",
    ]);
  }, 30_000);

  it("refuses a required pair left uncovered, and detection where inline is required", async () => {
    const rs = structuredClone(dev);
    rs.push({
      ...rs.find((r) => r.name === "lab-dataplane")!,
      urn: "urn:pulumi:dev::router::router:ids:IdsStack::lab-ids",
      type: "router:ids:IdsStack",
      name: "lab-ids",
      outputs: {
        review: {
          ids: {
            required: [
              { from: "wan", to: "servers", mode: "inline" },
              { from: "iot", to: "wan", mode: "detect" },
              { from: "guest", to: "wan", mode: "detect" },
            ],
            covered: [
              { from: "wan", to: "servers", mode: "detect" },
              { from: "guest", to: "wan", mode: "inline" },
            ],
          },
        },
      },
    });
    expect(await violations(idsCoversRequiredPairs(), rs)).toEqual([
      "zone pair wan → servers must be inspected inline but the IDS only detects there (allowed: inline, NFQUEUE, for the pair)",
      "zone pair iot → wan must be inspected (detect) but the IDS covers it not at all (allowed: cover every required pair)",
    ]);
  });
});

describe("observability-for-operators-only", () => {
  const facts = (rs: RecordedResource[]) =>
    (rs.find((r) => r.type === "router:observability:ObservabilityStack")!.outputs!.review as LayerReview)
      .observability!;

  it("passes the dev site (every endpoint answers the mgmt zone only)", async () => {
    expect(await run(observabilityForOperatorsOnly(), dev)).toEqual([]);
    expect(facts(dev).endpoints.map((e) => `${e.name} ${e.port} ${e.reachableFrom.join(",")}`)).toEqual([
      "dataplane-metrics 9430 mgmt",
      "node-exporter 9100 mgmt",
      "prometheus 9090 mgmt",
      "alertmanager 9093 mgmt",
      "logs 9428 mgmt",
      "dashboards 8080 mgmt",
    ]);
  });

  it("stops a render whose rules open the node exporter to a zone, or the loader's metrics to one address of another", async () => {
    const found = await renderViolations("observability-for-operators-only", (raw) => {
      rulesOf(raw).unshift(
        {
          name: "scrape-from-trusted",
          from: "trusted",
          to: "router",
          protocol: "tcp",
          ports: [9100],
          action: "accept",
        },
        {
          name: "one-guest-scrapes",
          from: "guest",
          to: "router",
          protocol: "tcp",
          ports: [9430],
          source: ["10.30.0.99"],
          action: "accept",
        },
      );
    });
    expect(found).toEqual([
      "dataplane-metrics (tcp/9430) is reachable from non-management zone guest (allowed: management zones only)",
      "node-exporter (tcp/9100) is reachable from non-management zone trusted (allowed: management zones only)",
    ]);
  }, 30_000);

  it("publishes a webhook receiver's token as a Pulumi secret", async () => {
    const rs = (
      await renderStack({
        stack: "dev",
        config: devStack(
          (raw) =>
            (raw.observability = {
              alerts: { receivers: [{ name: "noc", webhook: { url: "https://alerts.example.net/hook" } }] },
            }),
          { alertWebhookToken: "t0ken" },
        ),
      })
    ).run.resources;
    expect(facts(rs).receivers).toEqual([
      { name: "noc", credential: { key: "alertWebhookToken", set: true, pulumiSecret: true } },
    ]);
    expect(await run(observabilityForOperatorsOnly(), rs)).toEqual([]);
  }, 30_000);

  it("refuses facts in which a receiver's credential is a plain value or not set", async () => {
    const rs = structuredClone(dev);
    const obs: ObservabilityFacts = facts(rs);
    obs.receivers = [
      { name: "noc", credential: { key: "alertWebhookToken", set: true, pulumiSecret: false } },
      { name: "mail", credential: { key: "alertSmtpPassword", set: false, pulumiSecret: false } },
      { name: "open" },
    ];
    expect(await violations(observabilityForOperatorsOnly(), rs)).toEqual([
      "alert receiver noc sends alertWebhookToken as a plain value (allowed: a Pulumi secret, pulumi config set --secret alertWebhookToken …)",
      "alert receiver mail sends alertSmtpPassword but it is not set (allowed: pulumi config set --secret alertSmtpPassword …)",
    ]);
  });
});

describe("ospf-authenticated-where-clients-are", () => {
  const withOspf =
    (authentication?: Raw) =>
    (raw: Raw): void => {
      raw.routing = { ospf: { routerId: "10.10.0.1", segments: ["servers", "trusted"], passive: ["mgmt"] } };
      if (authentication) (raw.routing as { ospf: Raw }).ospf.authentication = authentication;
    };
  const render = async (edit: (raw: Raw) => void, secrets: Record<string, string> = {}) =>
    (await renderStack({ stack: "dev", config: devStack(edit, secrets), enforcePolicies: true })).run.resources;

  it("passes the dev site (no OSPF)", async () => {
    expect(await run(ospfAuthenticatedWhereClientsAre(), dev)).toEqual([]);
  });

  it("advises, without stopping the render, on each active OSPF segment with pools that runs no authentication", async () => {
    const findings = await run(ospfAuthenticatedWhereClientsAre(), await render(withOspf()));
    expect(findings.map((f) => f.level)).toEqual(["advisory", "advisory"]);
    expect(findings.map(message)).toEqual([
      expect.stringMatching(
        /^segment trusted runs OSPF without authentication and leases addresses to clients \(10\.20\.0\.\d+-10\.20\.0\.\d+.*\): any of them can announce routes inside routing\.ospf\.accept to the router \(allowed: set routing\.ospf\.authentication with the secret router:ospfKey, or run OSPF on a segment without pools\)$/,
      ),
      expect.stringMatching(/^segment servers runs OSPF without authentication/),
    ]);
  }, 30_000);

  it("passes the same site with authentication and its key", async () => {
    const rs = await render(withOspf({ algorithm: "hmac-sha256" }), { ospfKey: "the area's key, 16+" });
    expect(await run(ospfAuthenticatedWhereClientsAre(), rs)).toEqual([]);
  }, 30_000);
});
