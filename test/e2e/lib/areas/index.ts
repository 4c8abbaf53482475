/**
 * The areas of the end-to-end suite, in the order they run on one appliance (later areas may disturb it: Kea is
 * killed, WAN links go down). A new area is a module beside this one and a line here.
 */
import type { Area } from "../suite";
import { addresses } from "./addresses";
import { boot } from "./boot";
import { crowd } from "./crowd";
import { dataplane } from "./dataplane";
import { dns } from "./dns";
import { exposure } from "./exposure";
import { ids } from "./ids";
import { idsEvents } from "./ids-events";
import { multiWan } from "./multiwan";
import { nat } from "./nat";
import { observability } from "./observability";
import { policy } from "./policy";
import { privileges } from "./privileges";
import { routing } from "./routing";
import { services } from "./services";
import { upstream } from "./upstream";

export const AREAS: Area[] = [
  boot,
  addresses,
  policy,
  nat,
  exposure,
  dataplane,
  services,
  privileges,
  dns,
  observability,
  ids,
  idsEvents,
  multiWan,
  routing,
  crowd,
  upstream,
];
