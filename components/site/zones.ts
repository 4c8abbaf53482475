/**
 * Which zones are the internet side, as the cross-field rules read a site that may be wrong: a zone holding both
 * WAN links and segments is one mistake, and it is reported once, on the membership that was most likely edited
 * (the minority of the zone; on a tie, the side the zone's own settings contradict). The other rules then read
 * the zone as what it was meant to be, so a WAN link put into a LAN zone is not also reported as "services on a
 * WAN zone", "mDNS reflected to the internet" and "a segment in a WAN zone". No Pulumi import.
 */
import type { PartialSite } from "./partial";
import { DEFAULT_WAN_ZONE, wanZone } from "./plan";

/** Which membership of a mixed zone is the mistake: its WAN links, its segments, or (undecidable) both. */
export type MixedBlame = "links" | "segments" | "both";

export interface ZoneSides {
  /** Zones the rules treat as the internet side. */
  wan: Set<string>;
  /** Zones holding WAN links and segments, with the side reported. */
  mixed: Map<string, MixedBlame>;
}

/** The zones of the WAN links, and how a zone that also holds segments is read. */
export function zoneSides(s: PartialSite): ZoneSides {
  const wanCount = new Map<string, number>();
  for (const { value: l } of s.links ?? [])
    if (l.role === "wan") wanCount.set(wanZone(l), (wanCount.get(wanZone(l)) ?? 0) + 1);
  const segCount = new Map<string, number>();
  for (const { value: x } of s.segments ?? []) segCount.set(x.zone, (segCount.get(x.zone) ?? 0) + 1);
  const reflected = new Set((s.mdns?.reflect ?? []).flatMap((g) => g.zones));
  const wan = new Set<string>();
  const mixed = new Map<string, MixedBlame>();
  for (const [name, links] of wanCount) {
    const segments = segCount.get(name) ?? 0;
    if (segments === 0) {
      wan.add(name);
      continue;
    }
    const zone = s.zones?.find((z) => z.value.name === name)?.value;
    let blame: MixedBlame;
    // A management zone is never the internet side (its own rule reports the WAN link there).
    if (zone?.management) blame = "links";
    else if (segments !== links) blame = segments > links ? "links" : "segments";
    else if (reflected.has(name) || zone?.services?.some((x) => x !== "ping")) blame = "links";
    else if (name === DEFAULT_WAN_ZONE || zone?.services?.every((x) => x === "ping")) blame = "segments";
    else blame = "both";
    mixed.set(name, blame);
    if (blame === "segments") wan.add(name);
  }
  return { wan, mixed };
}
