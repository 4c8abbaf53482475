/**
 * IdsStack: Suricata on the router (DESIGN decision 13) — IDS on the WANs and selected segments, inline for the
 * selected zone pairs, rules fetched and tested on the router. Its host side is the IPS queue in the ruleset
 * (`idsRuleset`, handed to the data plane before the node is configured); this component owns the cluster side:
 * the IDS image (Suricata and suricata-update from Debian, built at `pulumi up`, pinned by digest), its
 * configuration (checked with `suricata -T` first: check.ts) and its DaemonSet. Off (no resources) unless
 * router:ids.enabled.
 */
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import * as command from "@pulumi/command";
import { createHash } from "node:crypto";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import { shipImage, type ImageBuild } from "../images";
import { planIds, type IdsPlan } from "./plan";
import { ipsIptables } from "./queue";
export { idsRuleset } from "./host";
import { suricataFiles } from "./suricata";
import { renderIdsObjects, type IdsObject } from "./k8s";
import { renderIdsSummary } from "./summary";
import { renderIdsFacts, renderIdsProfiles } from "./review";
import { rulesCheck } from "./check";
import { ZEEK_SCRIPT, renderZeekScript } from "./zeek";

export interface IdsStackArgs {
  /** The validated site. */
  site: Site;
  /** Facts derived from the site. */
  plan: SitePlan;
  /** The compiled zone policy (what the WAN can open decides which zone pairs must be inspected). */
  policy: PolicyModel;
  /** Provider for the router's cluster. */
  provider: k8s.Provider;
  /** What the stack waits for: the fabric and the confirmed host (its queue rules are in the ruleset). */
  after: pulumi.Input<pulumi.Resource>[];
  /** Password of router:registry (secret). */
  registryPassword?: pulumi.Input<string>;
}

export const IDS_IMAGE: ImageBuild = { name: "router-ids", build: "make -C images/ids", oci: "images/ids/out/oci" };

/** The stack's ConfigMap files by name: Suricata's, and Zeek's script when Zeek runs. */
function stackFiles(site: Site, ids: IdsPlan): Map<string, string> {
  const files = suricataFiles(site, ids);
  if (ids.zeekImage) files.set(ZEEK_SCRIPT, renderZeekScript(ids));
  return files;
}

/** Every file the stack renders, by its path under ids/. */
export function idsArtifacts(site: Site, ids: IdsPlan): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, text] of stackFiles(site, ids)) out[`ids/${name}`] = text;
  if (ids.pairs.length) out["ids/ips.iptables"] = ipsIptables(ids);
  return out;
}

function createObject(name: string, obj: IdsObject, opts: pulumi.CustomResourceOptions): pulumi.CustomResource {
  const { apiVersion: _a, kind, ...rest } = obj;
  return kind === "ConfigMap"
    ? new k8s.core.v1.ConfigMap(name, rest as k8s.core.v1.ConfigMapArgs, { ...opts, retainOnDelete: true })
    : new k8s.apps.v1.DaemonSet(name, rest as unknown as k8s.apps.v1.DaemonSetArgs, opts);
}

export class IdsStack extends pulumi.ComponentResource {
  /** Changes whenever the stack's objects change (the health gate's trigger); empty when the stack is off. */
  readonly digest: pulumi.Output<string>;

  constructor(name: string, args: IdsStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("router:ids:IdsStack", name, {}, opts);
    const { site, plan, policy } = args;
    const ids = planIds(site, plan);
    const summary = renderIdsSummary(site, ids);
    if (!site.ids.enabled) {
      this.digest = pulumi.output("");
      // Off: no IDS facts (the coverage policy does not apply), only the profile saying so.
      this.registerOutputs({ summary, artifacts: {}, review: { profiles: renderIdsProfiles(site, ids) } });
      return;
    }
    const image = shipImage(this, `${name}-image`, {
      site,
      image: IDS_IMAGE,
      sources: ["images/ids"],
      registryPassword: args.registryPassword,
    });
    const files = stackFiles(site, ids);
    // suricata -T on the site's rules before anything ships (check.ts)
    const check = rulesCheck(site, ids);
    const checked = new command.local.Command(
      `${name}-check`,
      {
        interpreter: ["/bin/bash", "-c"],
        create: check.script,
        // every command environment is secret (the project's rule); it holds no secret here
        environment: pulumi.secret(check.environment),
        triggers: [createHash("sha256").update(JSON.stringify(check)).digest("hex")],
      },
      { parent: this },
    );
    // The image (an output, unknown until it is built) sits only in the containers' image fields, so the rest of
    // the pod spec is known at preview and the policy pack sees it there too.
    const objects = renderIdsObjects(ids, files, image as unknown as string);
    const created: pulumi.Resource[] = [];
    objects.forEach((obj) => {
      created.push(
        createObject(`${name}-${obj.kind.toLowerCase()}`, obj, {
          parent: this,
          provider: args.provider,
          dependsOn: [...args.after, checked, ...created],
        }),
      );
    });
    this.digest = image.apply((img) =>
      createHash("sha256")
        .update(JSON.stringify(renderIdsObjects(ids, files, img)))
        .digest("hex"),
    );
    const review = { ids: renderIdsFacts(site, plan, policy, ids), profiles: renderIdsProfiles(site, ids) };
    this.registerOutputs({ image, digest: this.digest, summary, artifacts: idsArtifacts(site, ids), review });
  }
}
