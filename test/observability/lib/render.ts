/**
 * The observability stack's objects as the component renders them for the dev site after `edit`, with placeholder
 * images (and those `images` gives for the site), no secret data: what the collector tests read.
 */
import type { IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { renderStackFiles } from "../../../components/observability-stack/files";
import {
  renderObservabilityObjects,
  type ObsObject,
  type StackImages,
} from "../../../components/observability-stack/k8s";
import type { Site } from "../../../components/site/schema";
import { devSite, type Raw } from "../../helpers/dev-site";

export function renderedObservability(
  edit?: (raw: Raw) => void,
  images: (site: Site) => Partial<StackImages> = () => ({}),
) {
  const s = devSite(edit);
  const files = renderStackFiles(s.site, s.plan, s.policy, { webhookToken: false });
  const objects = renderObservabilityObjects(
    s.site,
    s.plan,
    files,
    { own: "own", logs: "logs", dashboards: "dash", ...images(s.site) },
    {},
  );
  return { s, files, objects };
}

/** The node exporter's DaemonSet (its pod carries the collectors). */
export const nodeExporter = (objects: ObsObject[]) =>
  objects.find((o) => o.kind === "DaemonSet" && o.metadata.name === "node-exporter") as ObsObject & IDaemonSet;
