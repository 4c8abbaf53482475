/**
 * Cross-field rules of router:observability: intervals the stack can keep, receivers that can be reached, and
 * credentials that are set exactly where they are used and never cross the network in clear.
 */
import { configPath, type SiteIssue } from "./issues";
import { durationSeconds } from "./duration";
import { OBSERVABILITY_LOCAL_PORTS, OBSERVABILITY_PORTS } from "./schema-observability";
import type { PartialSite } from "./validate";
import { indexed } from "./salvage";

type Issues = SiteIssue[];
const path = (...p: (string | number)[]) => configPath("observability", p);

function checkIntervals(o: NonNullable<PartialSite["observability"]>, out: Issues): void {
  const scrape = durationSeconds(o.scrapeInterval);
  if (scrape < 5 || scrape > 300)
    out.push({
      path: path("scrapeInterval"),
      message: `is ${o.scrapeInterval} (allowed: 5s to 5m; shorter floods the box, longer misses a failover)`,
    });
  if (durationSeconds(o.retention) < 2 * 3600)
    out.push({ path: path("retention"), message: `is ${o.retention} (allowed: at least 2h, one TSDB block)` });
  if (durationSeconds(o.logs.retention) < 24 * 3600)
    out.push({ path: path("logs", "retention"), message: `is ${o.logs.retention} (allowed: at least 24h)` });
  if (durationSeconds(o.flows.activeTimeout) < 10)
    out.push({ path: path("flows", "activeTimeout"), message: `is ${o.flows.activeTimeout} (allowed: at least 10s)` });
}

function checkReceivers(s: PartialSite, o: NonNullable<PartialSite["observability"]>, out: Issues): void {
  const seen = new Set<string>();
  for (const { index: i, value: r } of indexed(o.alerts.receivers)) {
    if (seen.has(r.name))
      out.push({
        path: path("alerts", "receivers", i, "name"),
        message: `repeats the receiver name ${r.name} (allowed: a name not used by another receiver)`,
      });
    seen.add(r.name);
    if (!!r.webhook === !!r.email)
      out.push({
        path: path("alerts", "receivers", i),
        message: "must have exactly one of webhook and email (allowed: webhook: {url} or email: {to, from, smarthost})",
      });
    if (r.email?.username && !s.secretsSet.has("alertSmtpPassword"))
      out.push({
        path: configPath("alertSmtpPassword"),
        message: `is not set but receiver ${r.name} logs in to its SMTP relay (allowed: \`pulumi config set --secret alertSmtpPassword …\`)`,
      });
    if (r.email?.username && !r.email.requireTls)
      out.push({
        path: path("alerts", "receivers", i, "email", "requireTls"),
        message: "is false while the receiver logs in: the password would cross the network in clear (allowed: true)",
      });
    if (r.webhook && s.secretsSet.has("alertWebhookToken") && r.webhook.url.startsWith("http://"))
      out.push({
        path: path("alerts", "receivers", i, "webhook", "url"),
        message:
          "is plain http while alertWebhookToken is set: the token would cross the network in clear (allowed: an https:// URL)",
      });
  }
  if (s.secretsSet.has("alertSmtpPassword") && !o.alerts.receivers.some((r) => r.email?.username))
    out.push({
      path: configPath("alertSmtpPassword"),
      message: "is set but no e-mail receiver has a username (allowed: remove it, or set email.username on a receiver)",
    });
  if (s.secretsSet.has("alertWebhookToken") && !o.alerts.receivers.some((r) => r.webhook))
    out.push({
      path: configPath("alertWebhookToken"),
      message: "is set but no receiver is a webhook (allowed: remove it, or add a webhook receiver)",
    });
}

/** A basic-auth user needs its secret password and https; a password needs a user. */
function checkCredentials(
  s: PartialSite,
  target: { url: string; username?: string } | undefined,
  where: (string | number)[],
  secret: string,
  out: Issues,
): void {
  if (target?.username && !s.secretsSet.has(secret))
    out.push({
      path: configPath(secret),
      message: `is not set but router:observability.${where.join(".")}.username is (allowed: \`pulumi config set --secret ${secret} …\`)`,
    });
  if (target?.username && target.url.startsWith("http://"))
    out.push({
      path: path(...where, "url"),
      message:
        "is plain http while a username is set: the password would cross the network in clear (allowed: an https:// URL)",
    });
  if (s.secretsSet.has(secret) && !target?.username)
    out.push({
      path: configPath(secret),
      message: `is set but router:observability.${where.join(".")}.username is not (allowed: remove it, or set the username)`,
    });
}

export function validateObservability(s: PartialSite): SiteIssue[] {
  const out: SiteIssue[] = [];
  const o = s.observability;
  if (!o) return out;
  checkIntervals(o, out);
  checkReceivers(s, o, out);
  checkCredentials(s, o.remoteWrite, ["remoteWrite"], "remoteWritePassword", out);
  checkCredentials(s, o.logs.forward, ["logs", "forward"], "logForwardPassword", out);
  const taken = [...Object.values(OBSERVABILITY_PORTS), ...Object.values(OBSERVABILITY_LOCAL_PORTS)] as number[];
  if (o.enabled && s.dataplane && taken.includes(s.dataplane.metricsPort))
    out.push({
      path: configPath("dataplane", ["metricsPort"]),
      message: `is ${s.dataplane.metricsPort}, a port of the observability stack (allowed: a port other than ${[...taken].sort((a, b) => a - b).join(", ")})`,
    });
  return out;
}
