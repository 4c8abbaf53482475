/**
 * This machine's kernel has no nft queue expression (CONFIG_NFT_QUEUE is off; Talos has it on), so a ruleset with
 * the IDS queue (components/ids-stack/queue.ts) cannot be loaded here as rendered. In its place: the same ruleset
 * with each `queue … bypass …` verdict as `accept` — exactly what the bypass flag does while no Suricata listens —
 * and, where traffic must reach Suricata, the iptables-nft equivalent the stack renders (ids/ips.iptables).
 */
import { spawnSync } from "node:child_process";

export const NFT_QUEUE = /\bqueue flags bypass to \d+(-\d+)?/g;

/** The ruleset as this kernel can load it: every bypass queue verdict as accept. */
export function withoutNftQueue(ruleset: string): string {
  return ruleset.replace(NFT_QUEUE, "accept");
}

/** Whether this kernel loads nft's queue statement (checked once in a throwaway network namespace). */
export function kernelHasNftQueue(): boolean {
  if (hasQueue === undefined) {
    const probe =
      "table inet probe {\n chain c {\n  type filter hook forward priority 0\n  queue flags bypass to 0\n }\n}\n";
    hasQueue = spawnSync("unshare", ["-n", "nft", "-c", "-f", "-"], { input: probe }).status === 0;
  }
  return hasQueue;
}
let hasQueue: boolean | undefined;
