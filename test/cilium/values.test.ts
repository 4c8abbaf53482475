/** Cilium's Helm values against the 1.20.0 chart: its values.schema.json and the keys the chart knows. */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv from "ajv";
import { parse } from "yaml";
import { renderCiliumValues } from "../../components/cilium-fabric/values";
import { parseSite } from "../../components/site/parse";
import { planSite } from "../../components/site/plan";
import { rawSiteConfig } from "../../components/site/load";
import { readStackConfig } from "../../cli/stack-config";
import { ROOT } from "../helpers/stacks";

const FIX = join(__dirname, "../fixtures/cilium");
const schema = JSON.parse(readFileSync(join(FIX, "values.schema.1.20.0.json"), "utf8"));
const chartDefaults = parse(readFileSync(join(FIX, "values.1.20.0.yaml"), "utf8")) as Record<string, unknown>;
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

function dev() {
  const r = parseSite(rawSiteConfig(readStackConfig(ROOT, "dev").values));
  if (!r.ok) throw new Error("dev site invalid");
  return { site: r.site, plan: planSite(r.site) };
}

/** Dotted paths of every leaf we set (lists count as leaves). */
function leafPaths(v: unknown, prefix = ""): string[] {
  if (v && typeof v === "object" && !Array.isArray(v))
    return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) =>
      leafPaths(x, prefix ? `${prefix}.${k}` : k),
    );
  return [prefix];
}

function existsIn(obj: Record<string, unknown>, path: string): boolean {
  let cur: unknown = obj;
  for (const k of path.split(".")) {
    if (!cur || typeof cur !== "object" || !(k in (cur as object))) return false;
    cur = (cur as Record<string, unknown>)[k];
  }
  return true;
}

describe("Cilium values", () => {
  const { site, plan } = dev();
  const values = renderCiliumValues(site, plan);

  it("validate against the chart's values.schema.json", () => {
    const ok = validate(values);
    expect(validate.errors ?? [], JSON.stringify(validate.errors)).toEqual([]);
    expect(ok).toBe(true);
  });

  it("set only keys the chart defines (the schema allows unknown keys, so a typo would pass it silently)", () => {
    const unknown = leafPaths(values).filter((p) => !existsIn(chartDefaults, p));
    expect(unknown).toEqual([]);
  });

  it("the schema check is not vacuous: a wrongly typed value is rejected", () => {
    expect(validate({ ...values, kubeProxyReplacement: 3 })).toBe(false);
    expect(validate({ ...values, hubble: { enabled: "yes" } })).toBe(false);
  });

  it("carry what Talos requires", () => {
    expect(values).toMatchObject({
      ipam: { mode: "kubernetes" },
      kubeProxyReplacement: true,
      k8sServiceHost: "localhost",
      k8sServicePort: 7445,
      cgroup: { autoMount: { enabled: false }, hostRoot: "/sys/fs/cgroup" },
    });
    const caps = (values.securityContext as { capabilities: { ciliumAgent: string[] } }).capabilities.ciliumAgent;
    expect(caps).not.toContain("SYS_MODULE");
    expect(caps).toContain("NET_ADMIN");
  });

  it("run the datapath on every segment link and never on the WAN", () => {
    expect(values.devices).toEqual(["lan0.10", "lan0.20", "lan0.30", "lan0.40", "lan0.50"]);
    expect(JSON.stringify(values.devices)).not.toContain("wan");
    expect(values.loadBalancer).toEqual({ acceleration: "disabled" });
  });

  it("enable Hubble metrics, the host firewall and the bandwidth manager, dual stack", () => {
    expect(values).toMatchObject({
      hostFirewall: { enabled: true },
      bandwidthManager: { enabled: true, bbr: true },
      hubble: { enabled: true, relay: { enabled: true }, metrics: { enabled: site.cilium.hubble.metrics } },
      ipv6: { enabled: true },
      ipv4NativeRoutingCIDR: "10.244.0.0/16",
      ipv6NativeRoutingCIDR: "fd9c:5a1e:244::/56",
    });
  });

  it("turn IPv6 off for an IPv4-only cluster", () => {
    const v4site = {
      ...site,
      cluster: { ...site.cluster, podCidrs: ["10.244.0.0/16"], serviceCidrs: ["10.96.0.0/12"] },
    };
    const v = renderCiliumValues(v4site, plan);
    expect(v).toMatchObject({ ipv6: { enabled: false }, enableIPv6Masquerade: false });
    expect(v).not.toHaveProperty("ipv6NativeRoutingCIDR");
    expect(validate(v)).toBe(true);
  });
});
