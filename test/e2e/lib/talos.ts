/**
 * The node's own boot, as Talos does it from the machine configuration before any extension runs: the
 * policy-routing rules of RoutingRuleConfig (the forward gate, components/dataplane/gate.ts) and Talos' ingress
 * firewall, `table inet talos`, from NetworkDefaultActionConfig and NetworkRuleConfig
 * (components/talos-node/firewall.ts). Both are built the way Talos' own controllers build them
 * (test/helpers/talos-network.ts, which cites the sources); the firewall is rebuilt whenever the node's
 * addresses change, as Talos' controller is.
 */
import { contains } from "../../../components/site/ip";
import { routedAddresses, routingRuleCommands, talosFirewall } from "../../helpers/talos-network";
import type { Shell } from "./exec";
import type { HostConfig } from "./rendered";

export class TalosBoot {
  /** The `inet talos` script now loaded (undefined: none). */
  private loaded?: string;

  constructor(
    private readonly shell: Shell,
    private readonly router: string,
    private readonly host: HostConfig,
  ) {}

  /** Installs the RoutingRuleConfig rules. */
  routingRules(): void {
    for (const d of this.host.routingRules)
      for (const args of routingRuleCommands(d)) this.shell.exec(this.router, ["ip", ...args]);
  }

  /** Removes them again (a benchmark's plain-forwarding baseline). */
  removeRoutingRules(): void {
    for (const d of this.host.routingRules)
      for (const args of routingRuleCommands(d))
        this.shell.exec(this.router, ["ip", ...args.map((a) => (a === "add" ? "del" : a))], { allowFail: true });
  }

  /** The node's routed addresses now. */
  nodeAddresses(): string[] {
    const clusterNets = this.host.firewall.clusterNetworks;
    const json = this.shell.exec(this.router, ["ip", "-j", "addr", "show"]).stdout;
    return routedAddresses(json, (a) => clusterNets.some((c) => contains(c, a)));
  }

  /** Loads the rendered `table inet talos` again, whatever is in the kernel now. */
  reload(): void {
    this.loaded = undefined;
    this.firewall();
  }

  /** (Re)loads `table inet talos` for the node's addresses now, when it differs from what is loaded. */
  firewall(): void {
    const script = talosFirewall(this.host.firewall, this.nodeAddresses());
    if (script === this.loaded) return;
    if (script) this.shell.exec(this.router, ["nft", "-f", "-"], { input: script });
    else this.shell.exec(this.router, ["nft", "delete", "table", "inet", "talos"], { allowFail: true });
    this.loaded = script;
  }
}
