/**
 * How an alert reaches the XDP guard's dynamic blocklist (DESIGN decision 13), as the data plane's loader and the
 * IDS pod both need it. Suricata writes each alert as one datagram to the block agent (images/ids/
 * router-ids-block, in the IDS pod: its own uid, no capabilities); for an alert of the site's severity or a worse
 * one the agent sends `block SRC SID` to the loader's `[dynamic_block]` socket on the host. The loader takes
 * requests from the agent's uid only (the kernel's SCM_CREDENTIALS), refuses sources that must never be blocked
 * (the list below, the guard's allowlist, and what it reads live: gateways, resolvers, probe targets, its own
 * addresses), and blocks the rest for the site's duration in a bounded table whose entries expire by themselves
 * (ebpf/loader/idsblock.h). Pure.
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { planIds } from "./plan";

/** uid and gid of the block agent: the one sender the loader takes block requests from (no other user has it). */
export const BLOCK_AGENT_UID = 64_100;
/** The host directory holding the loader's block socket: under the loader's state, mounted into the agent only. */
export const BLOCK_SOCKET_DIR = "/var/lib/router-dataplane/ids";
export const BLOCK_SOCKET = `${BLOCK_SOCKET_DIR}/block.sock`;
/** The loader's `[dynamic_block] protect` file, beside its other tables. */
export const BLOCK_PROTECT_FILE = "ids-protected.txt";

/** What the loader's `[dynamic_block]` section says. */
export interface LoaderBlock {
  socket: string;
  agentUid: number;
  /** How long a source stays blocked, in seconds. */
  seconds: number;
  maxEntries: number;
  /** Prefixes never blocked (the plan's protected list), sorted. */
  protect: string[];
}

/** The loader's share of blocking, or undefined when alerts block nothing (IDS or blocking off, no guard). */
export function loaderBlock(site: Site, plan: SitePlan): LoaderBlock | undefined {
  const { ids, dataplane } = site;
  if (!ids.enabled || !ids.block.enabled || !dataplane.enabled) return undefined;
  const p = planIds(site, plan);
  return {
    socket: BLOCK_SOCKET,
    agentUid: BLOCK_AGENT_UID,
    seconds: p.blockSeconds,
    maxEntries: ids.block.maxEntries,
    protect: p.protected,
  };
}
