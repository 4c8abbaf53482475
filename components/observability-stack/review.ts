/**
 * The observability layer's facts for review tooling (components/review.ts ObservabilityFacts), read by the
 * policy pack's intent policy "observability endpoints answer management zones only, alert credentials are
 * secrets" (policies/intent/observability.ts) and by `npm run diff`.
 *
 * Endpoints: each TCP port the router serves metrics, alerts, logs or dashboards on (the loader's metrics, the
 * node exporter, Prometheus, Alertmanager, the log store, Grafana), with every zone whose new connections to it
 * the zone policy accepts — from any source: a zone's own address, and each address a rule singles out.
 * Receivers: each alert receiver and the credential it sends (the webhook token, the SMTP password); whether that
 * credential is a Pulumi secret is known only from the value, so the component fills it in. Pure.
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { nthAddress, prefixSize } from "../site/ip";
import { evaluate, type PolicyModel } from "../site/policy";
import { OBSERVABILITY_PORTS } from "../site/schema-observability";
import type { ObservabilityFacts } from "../review";

/** An address of the documentation range standing for the internet (RFC 5737 TEST-NET-2). */
const OUTSIDE = "198.51.100.7";

/** The router's observability endpoints by name → TCP port. */
function endpoints(site: Site): [string, number][] {
  const own: [string, number][] = site.dataplane.enabled ? [["dataplane-metrics", site.dataplane.metricsPort]] : [];
  if (!site.observability.enabled) return own;
  return [
    ...own,
    ["node-exporter", OBSERVABILITY_PORTS.nodeExporter],
    ["prometheus", OBSERVABILITY_PORTS.prometheus],
    ["alertmanager", OBSERVABILITY_PORTS.alertmanager],
    ["logs", OBSERVABILITY_PORTS.logs],
    ["dashboards", OBSERVABILITY_PORTS.dashboards],
  ];
}

/** A host address inside a prefix: the tenth, or the first after the network address in a small one. */
function hostIn(cidr: string): string {
  return nthAddress(cidr, prefixSize(cidr) > 11n ? 10 : 1);
}

/** Source addresses to try from a zone: one of its own (or the internet's) and one inside each rule's sources. */
function sources(plan: SitePlan, model: PolicyModel, zone: string): string[] {
  const own = plan.segments
    .filter((s) => s.zone === zone)
    .flatMap((s) => (s.ipv4 ? [hostIn(s.ipv4.cidr)] : s.ipv6 ? [hostIn(s.ipv6.prefix)] : []));
  const singled = model.rules.flatMap((r) =>
    (r.src?.[4] ?? []).map((p) => (p.endsWith("/32") ? p.slice(0, -3) : nthAddress(p, 1))),
  );
  return [...new Set([...(own.length ? own : [OUTSIDE]), ...singled])];
}

/** Every observability endpoint with the zones whose new connections to it are accepted. */
export function endpointFacts(site: Site, plan: SitePlan, model: PolicyModel): ObservabilityFacts["endpoints"] {
  return endpoints(site).map(([name, port]) => ({
    name,
    port,
    reachableFrom: model.zones
      .filter((zone) =>
        sources(plan, model, zone).some(
          (src) =>
            evaluate(model, { from: zone, to: "router", proto: "tcp", port, src, dst: plan.managementAddress })
              .verdict === "accept",
        ),
      )
      .sort(),
  }));
}

/** Each alert receiver with the secret key of the credential it sends (secret: filled in by the component). */
export function receiverCredentials(site: Site, secretsSet: ReadonlySet<string>): { name: string; key?: string }[] {
  return site.observability.alerts.receivers.map((r) => {
    const key = r.email?.username
      ? "alertSmtpPassword"
      : r.webhook && secretsSet.has("alertWebhookToken")
        ? "alertWebhookToken"
        : undefined;
    return { name: r.name, ...(key ? { key } : {}) };
  });
}
