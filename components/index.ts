export { Appliance, type ApplianceArgs } from "./appliance";
export { TalosNode, type TalosNodeArgs } from "./talos-node";
export { CiliumFabric, type CiliumFabricArgs } from "./cilium-fabric";
export { loadSite, type LoadedSite, type SiteSecrets } from "./site/load";
