/**
 * The talosctl client configuration for the site's admin: the OS CA plus an admin client certificate signed by
 * it (Organization `os:admin`). Secret: whoever holds it administers the router.
 */
import { stringify } from "yaml";

export interface TalosconfigInput {
  /** Context name (the site name). */
  context: string;
  /** API endpoints (the management address). */
  endpoints: string[];
  /** OS CA certificate, PEM. */
  caPem: string;
  /** Admin client certificate, PEM. */
  crtPem: string;
  /** Admin client key, PEM. */
  keyPem: string;
}

export function renderTalosconfig(i: TalosconfigInput): string {
  const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
  return stringify(
    {
      context: i.context,
      contexts: {
        [i.context]: {
          endpoints: [...i.endpoints],
          nodes: [...i.endpoints],
          ca: b64(i.caPem),
          crt: b64(i.crtPem),
          key: b64(i.keyPem),
        },
      },
    },
    { lineWidth: 0 },
  );
}
