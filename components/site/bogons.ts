/**
 * The data plane's built-in bogon lists (ebpf/loader/tables.c, dp_default_bogons4/6): sources the XDP guard
 * drops on every WAN before anything else sees them, unless the allowlist names them. The site model needs
 * them to refuse configurations that could never work (a port forward only for bogon sources). A test keeps
 * the two lists identical.
 */
export const DEFAULT_BOGONS4 = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.88.99.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/4",
  "240.0.0.0/4",
] as const;

export const DEFAULT_BOGONS6 = [
  "::1/128",
  "::ffff:0:0/96",
  "100::/64",
  "2001:2::/48",
  "2001:10::/28",
  "2001:20::/28",
  "2001:db8::/32",
  "3fff::/20",
  "fc00::/7",
  "fec0::/10",
  "ff00::/8",
] as const;
