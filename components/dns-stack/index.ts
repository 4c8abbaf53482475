/**
 * DnsStack: the router's DNS for every zone whose services include dns (DESIGN decision 12). dnsdist answers
 * on the router's addresses (plain, DoT and DoH) with per-zone filtering and a cache, Unbound resolves
 * (DNSSEC, rebinding protection, DoT upstreams or recursion), Knot is authoritative for the site's domain and
 * reverse zones and takes Kea D2's TSIG-signed updates, an unprivileged job keeps the fetched lists, and a
 * collector turns dnsdist's reports into per-zone metrics and a query log. Everything runs from the DNS image
 * (images/dns), shipped like the services image. The TSIG key and the site's DNS CA are Pulumi secrets; they
 * reach the daemons only through a Kubernetes Secret, never a rendered file.
 *
 * Its host side is a ruleset contribution (host.ts dnsRuleset), registered in components/host-layers.ts. Its
 * rollout gate follows the DaemonSets and then asks each touched segment's gateways for the router's own name
 * (probe.ts; over DoT and DoH too on encrypted zones, trusting the site's DNS CA), rolling back the DNS daemons that changed when a segment does not answer.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import { createHash } from "node:crypto";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import type { Site } from "../site/schema";
import { segmentPrefixes, type SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import { shipImage, type ImageBuild } from "../images";
import { planDns, type DnsPlan } from "./plan";
import { DNS_SECRET, dnsConfigs, renderDnsObjects, secretKeys } from "./k8s";
import { renderDnsSummary } from "./summary";
import { renderDnsFacts } from "./review";
import { renderKnotTsig } from "./knot";
import { renderD2Tsig } from "./ddns";
import { DAEMON_LABEL, daemonSecret } from "../daemonset";
import { rolloutGateScript } from "../network-services/rollout";
import { ROUTER_NAMESPACE } from "../talos-node/machine-config";
import { durationSeconds } from "../site/duration";
import { dnsProbeStep, dnsProbes } from "./probe";

export interface DnsStackArgs {
  /** The validated site. */
  site: Site;
  /** Facts derived from the site. */
  plan: SitePlan;
  /** The compiled zone policy (which zones the router answers DNS in). */
  policy: PolicyModel;
  /** Provider for the router's cluster. */
  provider: k8s.Provider;
  /**
   * What must exist first: the fabric, the confirmed host (the segments' addresses dnsdist binds) and the
   * router-system namespace (the network services create it).
   */
  after: pulumi.Resource[];
  /** Admin kubeconfig (secret): the rollout gate reads the DaemonSets' status with it. */
  kubeconfig: pulumi.Input<string>;
  /** Password of router:registry (secret). */
  registryPassword?: pulumi.Input<string>;
}

export const DNS_IMAGE: ImageBuild = { name: "router-dns", build: "make -C images/dns", oci: "images/dns/out/oci" };

/** The site's DNS CA and the router's DoT/DoH certificate it signs (names and addresses of the zones served). */
function certificate(parent: pulumi.Resource, name: string, plan: SitePlan, dns: DnsPlan) {
  const caKey = new tls.PrivateKey(`${name}-ca-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent });
  const ca = new tls.SelfSignedCert(
    `${name}-ca`,
    {
      privateKeyPem: caKey.privateKeyPem,
      subject: { commonName: `${plan.siteName} DNS CA`, organization: plan.domain },
      isCaCertificate: true,
      validityPeriodHours: 10 * 8760,
      allowedUses: ["cert_signing", "crl_signing"],
    },
    { parent },
  );
  const encrypted = dns.zones.filter((z) => z.encrypted);
  const segments = plan.segments.filter((s) => encrypted.some((z) => z.segments.includes(s.name)));
  const key = new tls.PrivateKey(`${name}-tls-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent });
  const request = new tls.CertRequest(
    `${name}-tls-request`,
    {
      privateKeyPem: key.privateKeyPem,
      subject: { commonName: plan.fqdn },
      dnsNames: [plan.fqdn, ...segments.map((s) => `${plan.hostname}.${s.domain}`)],
      ipAddresses: encrypted.flatMap((z) => z.listen),
    },
    { parent },
  );
  const cert = new tls.LocallySignedCert(
    `${name}-tls`,
    {
      certRequestPem: request.certRequestPem,
      caPrivateKeyPem: caKey.privateKeyPem,
      caCertPem: ca.certPem,
      validityPeriodHours: 8760,
      earlyRenewalHours: 720,
      allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
    },
    { parent },
  );
  return { caCert: ca.certPem, chain: pulumi.interpolate`${cert.certPem}${ca.certPem}`, key: key.privateKeyPem };
}

/**
 * The rollout gate: follows the DaemonSets (a daemon that does not become available is rolled back to its previous
 * revision and the update fails saying so), then the segments the change touched must answer the router's own
 * name at their gateways from the node's side (probe.ts), or the DNS daemons that changed are rolled back and the
 * update fails naming the segment. Any change of a DaemonSet or its configuration, or of a segment the stack
 * serves, re-runs it.
 */
function rolloutGate(
  parent: pulumi.Resource,
  name: string,
  g: DnsStackArgs & {
    dns: DnsPlan;
    daemons: string[];
    image: pulumi.Output<string>;
    digest: pulumi.Output<string>;
    daemonSets: pulumi.Resource[];
    /** The site's DNS CA certificate (public), which the probe verifies DoT and DoH with; absent without them. */
    caCert?: pulumi.Output<string>;
  },
): command.local.Command {
  const probes = dnsProbes(g.plan, g.dns);
  return new command.local.Command(
    `${name}-rollout`,
    {
      interpreter: ["/bin/bash", "-c"],
      environment: pulumi.secret({ ROUTER_KUBECONFIG: g.kubeconfig }),
      create: pulumi.all([g.image, g.caCert ?? ""]).apply(([image, caCert]) =>
        rolloutGateScript({
          namespace: ROUTER_NAMESPACE,
          daemons: g.daemons,
          subnets: g.plan.segments.flatMap(segmentPrefixes),
          timeout: durationSeconds(g.site.node.healthTimeout),
          what: "DNS daemon",
          probe: dnsProbeStep(image, probes, caCert || undefined),
        }),
      ),
      triggers: [g.digest, ...probes.map((p) => p.fingerprint)],
    },
    { parent, dependsOn: g.daemonSets },
  );
}

export class DnsStack extends pulumi.ComponentResource {
  /** The DNS image pinned by digest (undefined when no zone has DNS). */
  readonly image?: pulumi.Output<string>;
  /** The site's DNS CA certificate: what clients trust for DoT and DoH (undefined without encrypted DNS). */
  readonly caCertificate?: pulumi.Output<string>;
  /** Changes whenever any of the stack's objects changes (the health gate's trigger). */
  readonly digest: pulumi.Output<string>;

  constructor(name: string, args: DnsStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("router:dns:DnsStack", name, {}, opts);
    const { site, plan, policy } = args;
    const dns = planDns(site, plan, policy);
    if (dns.zones.length === 0) {
      this.digest = pulumi.output("no DNS");
      this.registerOutputs({ summary: renderDnsSummary(dns, []), review: renderDnsFacts(site, dns, []) });
      return;
    }
    this.image = shipImage(this, `${name}-image`, {
      site,
      image: DNS_IMAGE,
      sources: ["images/dns", "ebpf/loader", "ebpf/fetcher"],
      registryPassword: args.registryPassword,
    });
    const tsig = new random.RandomBytes(`${name}-tsig`, { length: 32 }, { parent: this });
    const certs = dns.zones.some((z) => z.encrypted) ? certificate(this, name, plan, dns) : undefined;
    this.caCertificate = certs?.caCert;
    const keys = secretKeys(dns);
    const data = pulumi.secret(
      pulumi.all([tsig.base64, certs?.chain ?? "", certs?.key ?? ""]).apply(([t, chain, key]) =>
        Object.fromEntries(
          Object.entries({
            "tsig-keys.json": renderD2Tsig(t),
            "tsig.knot.conf": renderKnotTsig(t),
            "tls.crt": chain,
            "tls.key": key,
          }).filter(([k]) => keys.includes(k)),
        ),
      ),
    );
    const opts2 = { parent: this, provider: args.provider, dependsOn: args.after };
    const { apiVersion: _v, kind: _k, ...secret } = daemonSecret(DNS_SECRET, data);
    const secretRes = new k8s.core.v1.Secret(`${name}-secret-${secret.metadata.name}`, secret, opts2);
    const objects = renderDnsObjects(site, plan, dns, this.image);
    const configMaps = new Map<string, pulumi.Resource>();
    const daemonSets: pulumi.Resource[] = [];
    for (const obj of objects) {
      const { apiVersion: _a, kind, ...rest } = obj;
      if (kind === "ConfigMap") {
        // Named by content and immutable; a replaced one stays for a rollback (the rollout gate prunes older ones).
        const daemon = obj.metadata.labels![DAEMON_LABEL];
        const cm = new k8s.core.v1.ConfigMap(`${name}-configmap-${daemon}`, rest as k8s.core.v1.ConfigMapArgs, {
          ...opts2,
          retainOnDelete: true,
        });
        configMaps.set(daemon, cm);
      } else
        daemonSets.push(
          new k8s.apps.v1.DaemonSet(
            `${name}-daemonset-${obj.metadata.name}`,
            rest as unknown as k8s.apps.v1.DaemonSetArgs,
            {
              ...opts2,
              dependsOn: [...args.after, secretRes, configMaps.get(obj.metadata.name)!],
            },
          ),
        );
    }
    const daemons = objects.filter((o) => o.kind === "DaemonSet").map((o) => o.metadata.name);
    this.digest = this.image.apply((image) =>
      createHash("sha256")
        .update(JSON.stringify(renderDnsObjects(site, plan, dns, image)))
        .digest("hex"),
    );
    const gate = { dns, daemons, image: this.image, digest: this.digest, daemonSets, caCert: this.caCertificate };
    rolloutGate(this, name, { ...args, ...gate });
    const artifacts = Object.fromEntries([...dnsConfigs(site, plan, dns)].map(([f, text]) => [`dns/${f}`, text]));
    this.registerOutputs({
      image: this.image,
      digest: this.digest,
      caCertificate: this.caCertificate,
      artifacts,
      summary: renderDnsSummary(dns, daemons),
      review: renderDnsFacts(site, dns, daemons),
    });
  }
}
