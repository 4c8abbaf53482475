/**
 * Reads the site from Pulumi config (`router:*` keys, project defaults merged by Pulumi), validates it before
 * any resource exists, and returns the typed Site, its plan and its secrets as Pulumi secrets.
 */
import * as pulumi from "@pulumi/pulumi";
import { CONFIG_NAMESPACE, SiteValidationError } from "./issues";
import { parseSite } from "./parse";
import { planSite, type SitePlan } from "./plan";
import { secretKeys, type SecretKey, type Site } from "./schema";

/** Secret config values. Only ever handled as Pulumi secrets. */
export type SiteSecrets = Partial<Record<SecretKey, pulumi.Output<string>>>;

export interface LoadedSite {
  site: Site;
  plan: SitePlan;
  secrets: SiteSecrets;
}

/** Raw `router:*` config values by key; objects arrive as JSON text, secrets are kept as text. */
export function rawSiteConfig(all: Record<string, string>): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const [fullKey, text] of Object.entries(all)) {
    if (!fullKey.startsWith(`${CONFIG_NAMESPACE}:`)) continue;
    const key = fullKey.slice(CONFIG_NAMESPACE.length + 1);
    if (key in secretKeys) {
      raw[key] = text;
      continue;
    }
    try {
      raw[key] = JSON.parse(text);
    } catch {
      raw[key] = text;
    }
  }
  return raw;
}

/**
 * Loads and validates the site. On invalid input, fails the program before any resource is registered, with
 * every problem listed (config key path, what was wrong, what is allowed).
 */
export function loadSite(): LoadedSite {
  const result = parseSite(rawSiteConfig(pulumi.runtime.allConfig()));
  if (!result.ok) throw new pulumi.RunError(new SiteValidationError(result.issues).message);
  const config = new pulumi.Config(CONFIG_NAMESPACE);
  const secrets: SiteSecrets = {};
  for (const key of Object.keys(secretKeys) as SecretKey[]) {
    const value = config.getSecret(key);
    if (value !== undefined) secrets[key] = value;
  }
  return { site: result.site, plan: planSite(result.site), secrets };
}
