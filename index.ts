/**
 * One stack is one router. Load the site (validated before any resource exists), build the appliance, export
 * what an operator needs.
 */
import { Appliance, loadSite } from "./components";
import { apiEndpoint } from "./components/talos-node/machine-config";

const loaded = loadSite();
const appliance = new Appliance(loaded.site.site.name, { loaded });

/** talosctl configuration for this router (secret): `pulumi stack output --show-secrets talosconfig`. */
export const talosconfig = appliance.talosconfig;
/** Admin kubeconfig (secret). */
export const kubeconfig = appliance.kubeconfig;
export const hostname = loaded.plan.fqdn;
export const managementAddress = loaded.plan.managementAddress;
export const kubernetesApi = apiEndpoint(loaded.plan.managementAddress);
export const segments = loaded.plan.segments.map((s) => ({
  name: s.name,
  vlan: s.vlan,
  zone: s.zone,
  link: s.link,
  ipv4: s.ipv4?.cidr ?? null,
  gateway4: s.ipv4?.gateway ?? null,
  ipv6: s.ipv6?.prefix ?? null,
  gateway6: s.ipv6?.gateway ?? null,
}));
