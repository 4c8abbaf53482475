/**
 * The rules of router:observability: each breaks the dev site in one place and asserts the config path and the
 * key words of the message (which says what is allowed).
 */
import { describe, expect, it } from "vitest";
import { parseSite } from "../../components/site/parse";
import { devSiteRaw, expectIssue, expectValid, setAt, type RawSite } from "../helpers/site-fixtures";

function dev(edit: (raw: RawSite) => void): RawSite {
  const raw = devSiteRaw();
  edit(raw);
  return raw;
}
const webhook = { name: "noc", webhook: { url: "https://hooks.example.net/x" } };
const mail = {
  name: "mail",
  email: { to: ["noc@example.net"], from: "r@example.net", smarthost: "smtp.example.net:587", username: "r" },
};

describe("router:observability", () => {
  it("defaults to a working stack when the key is left out", () => {
    const site = expectValid(devSiteRaw());
    expect(site.observability.enabled).toBe(true);
    expect(site.observability.scrapeInterval).toBe("15s");
    expect(site.observability.retention).toBe("168h");
  });

  it("rejects a scrape interval the box cannot keep or that misses a failover", () => {
    expectIssue(
      parseSite(setAt(devSiteRaw(), "observability", { scrapeInterval: "1s" })),
      "router:observability.scrapeInterval",
      "5s to 5m",
    );
    expectIssue(
      parseSite(setAt(devSiteRaw(), "observability", { scrapeInterval: "10m" })),
      "router:observability.scrapeInterval",
      "5s to 5m",
    );
  });

  it("rejects a retention shorter than one TSDB block and log retention under a day", () => {
    expectIssue(
      parseSite(setAt(devSiteRaw(), "observability", { retention: "1h" })),
      "router:observability.retention",
      "at least 2h",
    );
    expectIssue(
      parseSite(setAt(devSiteRaw(), "observability", { logs: { retention: "12h" } })),
      "router:observability.logs.retention",
      "at least 24h",
    );
  });

  it("rejects IDS alert thresholds out of range, naming each", () => {
    const r = parseSite(
      setAt(devSiteRaw(), "observability", {
        alerts: { thresholds: { idsAlertsPerMinute: 0, idsCaptureDropPercent: 150 } },
      }),
    );
    expectIssue(r, "router:observability.alerts.thresholds.idsAlertsPerMinute", "≥ 1");
    expectIssue(r, "router:observability.alerts.thresholds.idsCaptureDropPercent", "from 1 to 100");
  });

  it("rejects a receiver that is neither or both of webhook and e-mail, and repeated names", () => {
    const both = { ...webhook, email: mail.email };
    const r = parseSite(setAt(devSiteRaw(), "observability", { alerts: { receivers: [both, { name: "noc" }] } }));
    expectIssue(r, "router:observability.alerts.receivers[0]", "exactly one of webhook and email");
    expectIssue(r, "router:observability.alerts.receivers[1]", "exactly one of webhook and email");
    expectIssue(r, "router:observability.alerts.receivers[1].name", "repeats the receiver name noc");
  });

  it("asks for the SMTP password when a receiver logs in, and refuses it without TLS (the password would be in clear)", () => {
    expectIssue(
      parseSite(setAt(devSiteRaw(), "observability", { alerts: { receivers: [mail] } })),
      "router:alertSmtpPassword",
      "is not set",
    );
    const clear = { ...mail, email: { ...mail.email, requireTls: false } };
    const r = parseSite(
      dev((raw) => ((raw.observability = { alerts: { receivers: [clear] } }), (raw.alertSmtpPassword = "pw"))),
    );
    expectIssue(r, "router:observability.alerts.receivers[0].email.requireTls", "in clear");
  });

  it("refuses a webhook token over plain http, and a token or password nothing uses", () => {
    const plain = { name: "noc", webhook: { url: "http://hooks.example.net/x" } };
    expectIssue(
      parseSite(
        dev((raw) => ((raw.observability = { alerts: { receivers: [plain] } }), (raw.alertWebhookToken = "t"))),
      ),
      "router:observability.alerts.receivers[0].webhook.url",
      "in clear",
    );
    expectIssue(
      parseSite(dev((raw) => (raw.alertWebhookToken = "t"))),
      "router:alertWebhookToken",
      "no receiver is a webhook",
    );
    expectIssue(
      parseSite(dev((raw) => (raw.alertSmtpPassword = "t"))),
      "router:alertSmtpPassword",
      "no e-mail receiver",
    );
  });

  it("needs the remote-write and log-forwarding passwords with a username, over https only", () => {
    const r = parseSite(
      setAt(devSiteRaw(), "observability", {
        remoteWrite: { url: "http://tsdb.example.net/api/v1/write", username: "lab" },
        logs: { forward: { url: "https://logs.example.net/insert/jsonline", username: "lab" } },
      }),
    );
    expectIssue(r, "router:remoteWritePassword", "is not set");
    expectIssue(r, "router:observability.remoteWrite.url", "in clear");
    expectIssue(r, "router:logForwardPassword", "is not set");
    expectIssue(
      parseSite(dev((raw) => (raw.remoteWritePassword = "pw"))),
      "router:remoteWritePassword",
      "username is not",
    );
  });

  it("rejects a loader metrics port that an observability service takes", () => {
    const r = parseSite(setAt(devSiteRaw(), "dataplane.metricsPort", 9090));
    expectIssue(r, "router:dataplane.metricsPort", "a port of the observability stack");
  });

  it("rejects malformed collectors and URLs with what is allowed", () => {
    const r = parseSite(
      setAt(devSiteRaw(), "observability", { flows: { collectors: ["collector"] }, remoteWrite: { url: "ftp://x" } }),
    );
    expectIssue(r, "router:observability.flows.collectors[0]", "host:port");
    expectIssue(r, "router:observability.remoteWrite.url", "http(s) URL");
  });
});
