/**
 * Alertmanager (Debian's build, in our observability image): every alert goes to every receiver of the site
 * (webhook or e-mail), grouped per alert name, repeated at the site's interval, resolved notices included.
 * Credentials are never inline: the webhook token and the SMTP password are files of a Secret the pod mounts
 * (`credentials_file`, `auth_password_file`). Pure; `amtool check-config` checks the output.
 */
import { stringify } from "yaml";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { OBSERVABILITY_PORTS } from "../site/schema-observability";
import { hostPort } from "./targets";

export const ALERTMANAGER_CONFIG = "/etc/alertmanager/config/alertmanager.yml";
export const ALERTMANAGER_DATA = "/alertmanager";
export const ALERTMANAGER_SECRETS = "/etc/alertmanager/secrets";
export const WEBHOOK_TOKEN_FILE = `${ALERTMANAGER_SECRETS}/webhook-token`;
export const SMTP_PASSWORD_FILE = `${ALERTMANAGER_SECRETS}/smtp-password`;

/** alertmanager.yml. `webhookToken`: whether the secret alertWebhookToken is set (its file is then mounted). */
export function renderAlertmanagerConfig(site: Site, opts: { webhookToken: boolean }): string {
  const a = site.observability.alerts;
  const receivers = a.receivers.map((r) => ({
    name: r.name,
    ...(r.webhook
      ? {
          webhook_configs: [
            {
              url: r.webhook.url,
              send_resolved: true,
              ...(opts.webhookToken
                ? { http_config: { authorization: { type: "Bearer", credentials_file: WEBHOOK_TOKEN_FILE } } }
                : {}),
            },
          ],
        }
      : {}),
    ...(r.email
      ? {
          email_configs: [
            {
              to: r.email.to.join(", "),
              from: r.email.from,
              smarthost: r.email.smarthost,
              require_tls: r.email.requireTls,
              send_resolved: true,
              ...(r.email.username ? { auth_username: r.email.username, auth_password_file: SMTP_PASSWORD_FILE } : {}),
            },
          ],
        }
      : {}),
  }));
  const config = {
    route: {
      // The root receiver has no integration: alerts reach the site's receivers through the child routes.
      receiver: "router-none",
      group_by: ["alertname", "wan", "segment"],
      group_wait: "10s",
      group_interval: "1m",
      repeat_interval: a.repeatInterval,
      routes: a.receivers.map((r) => ({ receiver: r.name, continue: true })),
    },
    // A critical alert silences warnings that share its cause (all WANs down covers each WAN down).
    inhibit_rules: [
      { source_matchers: ['alertname="AllWansDown"'], target_matchers: ['alertname=~"WanDown|WanFailedOver"'] },
    ],
    receivers: [{ name: "router-none" }, ...receivers],
  };
  return `# Alertmanager of site ${site.site.name} (rendered)\n${stringify(config)}`;
}

/** Alertmanager's command line. */
export function alertmanagerArgs(plan: SitePlan): string[] {
  return [
    `--config.file=${ALERTMANAGER_CONFIG}`,
    `--storage.path=${ALERTMANAGER_DATA}`,
    `--web.listen-address=${hostPort(plan.managementAddress, OBSERVABILITY_PORTS.alertmanager)}`,
    // One router, no cluster peers: gossip off.
    "--cluster.listen-address=",
  ];
}
