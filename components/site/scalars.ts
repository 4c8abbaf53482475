/**
 * Scalar types of the site model, each with a message that says what is allowed. No Pulumi import.
 */
import { z } from "zod";
import { canonicalAddress, canonicalCidr, isAddress, isCidr, isNetworkAligned } from "./ip";

// ---------------------------------------------------------------------------------------------------------------
// Scalars. Each carries a message that says what is allowed.

/** A DNS label: what a hostname, site or segment name becomes in DNS and in Kubernetes object names. */
export const DnsLabel = z
  .string({ error: "expected a string (a DNS label: a-z, 0-9 and '-', 1–63 characters)" })
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, {
    error: "is not a DNS label (allowed: lower-case a-z, 0-9 and '-', 1–63 characters, no leading or trailing '-')",
  });

/** A fully qualified domain name without the trailing dot. */
export const DomainName = z
  .string({ error: "expected a string (a domain name such as home.arpa)" })
  .max(253, { error: "is longer than 253 characters (allowed: a domain name of at most 253 characters)" })
  .regex(/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, {
    error: "is not a domain name (allowed: dot-separated lower-case DNS labels such as lab.home.arpa)",
  });

/**
 * A Linux link name we create or alias. At most 15 characters (IFNAMSIZ − 1); no dots, which are reserved for
 * the VLAN sub-interfaces derived from it (`lan0.10`).
 */
export const LinkName = z
  .string({ error: "expected a string (a link name such as wan0)" })
  .max(15, { error: "is longer than 15 characters (allowed: a Linux link name of at most 15 characters)" })
  .regex(/^[a-z][a-z0-9_-]*[0-9a-z]$/, {
    error: "is not a valid link name (allowed: 2–15 characters, a-z first, then a-z, 0-9, '-' or '_'; no dots)",
  });

export const VlanId = z
  .number({ error: "expected a number (a VLAN id from 1 to 4094)" })
  .int({ error: "is not an integer (allowed: a VLAN id from 1 to 4094)" })
  .min(1, { error: "is outside 1–4094 (allowed: a VLAN id from 1 to 4094; 0 and 4095 are reserved)" })
  .max(4094, { error: "is outside 1–4094 (allowed: a VLAN id from 1 to 4094; 0 and 4095 are reserved)" });

export const MacAddress = z
  .string({ error: "expected a string (a MAC address such as 00:1a:2b:3c:4d:5e)" })
  .regex(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, {
    error: "is not a MAC address (allowed: six colon-separated hex octets such as 00:1a:2b:3c:4d:5e)",
  })
  .transform((s) => s.toLowerCase());

const familyName = (f?: 4 | 6) => (f === 4 ? "an IPv4" : f === 6 ? "an IPv6" : "an IPv4 or IPv6");

/** An address without prefix length, normalised to canonical text. */
export const IpAddress = (family?: 4 | 6) =>
  z
    .string({ error: `expected a string (${familyName(family)} address)` })
    .refine((s) => isAddress(s, family), {
      error: (iss) =>
        `${JSON.stringify(iss.input)} is not ${familyName(family)} address (allowed: ${
          family === 6 ? "e.g. fd00:10::1" : family === 4 ? "e.g. 192.0.2.1" : "e.g. 192.0.2.1 or fd00::1"
        }, without a prefix length)`,
    })
    .transform((s) => canonicalAddress(s));

/** A network prefix (host bits must be zero), normalised to canonical text. */
export const NetworkCidr = (family?: 4 | 6, lengths?: { min: number; max: number }) =>
  z
    .string({ error: `expected a string (${familyName(family)} prefix in CIDR form)` })
    .refine((s) => isCidr(s, family), {
      error: (iss) =>
        `${JSON.stringify(iss.input)} is not ${familyName(family)} CIDR prefix (allowed: ${
          family === 6 ? "e.g. fd00:10::/64" : family === 4 ? "e.g. 10.0.10.0/24" : "e.g. 10.0.10.0/24 or fd00::/64"
        })`,
      abort: true,
    })
    .refine((s) => isNetworkAligned(s), {
      error: (iss) =>
        `${JSON.stringify(iss.input)} has host bits set (allowed: the network address, ${canonicalCidr(
          String(iss.input),
        )})`,
      abort: true,
    })
    .refine((s) => !lengths || (Number(s.split("/")[1]) >= lengths.min && Number(s.split("/")[1]) <= lengths.max), {
      error: (iss) =>
        `${JSON.stringify(iss.input)} has prefix length /${String(iss.input).split("/")[1]} (allowed: /${lengths?.min}${
          lengths && lengths.max !== lengths.min ? `–/${lengths.max}` : ""
        })`,
    })
    .transform((s) => canonicalCidr(s));

/** An interface address: host address plus prefix length (`203.0.113.10/24`). */
export const InterfaceCidr = (family?: 4 | 6) =>
  z
    .string({ error: `expected a string (${familyName(family)} address with prefix length)` })
    .refine((s) => isCidr(s, family), {
      error: (iss) =>
        `${JSON.stringify(iss.input)} is not ${familyName(family)} address with prefix length (allowed: ${
          family === 6 ? "e.g. 2001:db8::10/64" : "e.g. 203.0.113.10/24"
        })`,
    })
    .transform((s) => `${canonicalAddress(s.split("/")[0])}/${s.split("/")[1]}`);

/**
 * An integer from `min` to `max`; `what` names it with its unit ("a lease time in seconds"), so every message —
 * wrong type, fraction, out of range — says what the number is and which values are allowed.
 */
export const intIn = (min: number, max: number, what: string) => {
  const allowed = `${what} from ${min} to ${max}`;
  return z
    .number({ error: `expected a number (${allowed})` })
    .int({ error: `is not an integer (allowed: ${allowed})` })
    .min(min, { error: `is below ${min} (allowed: ${allowed})` })
    .max(max, { error: `is above ${max} (allowed: ${allowed})` });
};

/** Non-empty text that names something (`what`), with that in every message. */
export const nonEmpty = (what: string) =>
  z.string({ error: `expected a string (${what})` }).min(1, { error: `is empty (allowed: ${what})` });

export const Mtu = z
  .number({ error: "expected a number (an MTU from 1280 to 9216)" })
  .int({ error: "is not an integer (allowed: an MTU from 1280 to 9216)" })
  .min(1280, { error: "is below 1280 (allowed: 1280–9216; IPv6 needs at least 1280)" })
  .max(9216, { error: "is above 9216 (allowed: 1280–9216)" });

/** A container image reference: registry/repository[:tag][@sha256:digest]. */
export const ImageRef = z
  .string({ error: "expected a string (a container image reference)" })
  .regex(
    /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)+(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$/,
    {
      error: "is not an image reference (allowed: registry/repository:tag or …@sha256:<64 hex>)",
    },
  );

/** A Go-style duration as Talos and talosctl accept it (`90s`, `2m`, `1h30m`). */
export const Duration = z
  .string({ error: "expected a string (a duration such as 90s or 2m)" })
  .regex(/^(\d+(h|m|s))+$/, { error: "is not a duration (allowed: e.g. 90s, 2m, 1h30m)" });
