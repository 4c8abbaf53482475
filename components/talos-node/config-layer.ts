/**
 * ConfigLayer: one layer of the node's machine configuration as a resource of its own, so that `pulumi preview`
 * shows what a change does to the host layer by layer — a firewall rule as a changed line of the firewall
 * layer's ruleset, a new segment as a new VLANConfig in the segments layer — while the stream actually applied
 * (`<node>-apply`) stays one secret. Its inputs are the layer's content with secrets as placeholders (layers.ts);
 * it creates nothing on the node itself.
 */
import * as pulumi from "@pulumi/pulumi";
import type { ConfigLayerName } from "./documents";
import { layerDigest, type ConfigLayerContent } from "./layers";

export interface ConfigLayerArgs {
  /** Which layer of the machine configuration this is. */
  layer: ConfigLayerName;
  /** The layer's documents by `kind/name`, secrets as placeholders. */
  documents: pulumi.Input<ConfigLayerContent["documents"]>;
  /** Kernel parameters the layer sets. */
  sysctls: pulumi.Input<ConfigLayerContent["sysctls"]>;
  /** Files the layer adds to an extension service another layer configures, by `service:mountPath`. */
  files: pulumi.Input<ConfigLayerContent["files"]>;
}

export class ConfigLayer extends pulumi.ComponentResource {
  /** SHA-256 of the layer's content: changes exactly when a reviewer would see a change in its inputs. */
  readonly digest: pulumi.Output<string>;

  constructor(name: string, args: ConfigLayerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("router:talos:ConfigLayer", name, args, opts);
    this.digest = pulumi
      .all([args.documents, args.sysctls, args.files])
      .apply(([documents, sysctls, files]) => layerDigest({ layer: args.layer, documents, sysctls, files }));
    this.registerOutputs({ digest: this.digest });
  }
}
