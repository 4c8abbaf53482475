/**
 * The shell scripts TalosNode runs through @pulumi/command to drive a node with talosctl. Pure functions: the
 * scripts are plain text, reviewable in `pulumi preview`, and contain no secret. Secrets reach them only through
 * the environment (ROUTER_TALOSCONFIG) and stdin (the machine configuration), both Pulumi secrets. They never
 * touch a file: the script keeps them in memory and hands them to talosctl through pipes (`--talosconfig
 * /dev/fd/8`, `--file /dev/fd/7` from process substitution), so a cancelled or killed run leaves nothing behind.
 *
 * Lifecycle: install (identity check, maintenance-mode apply, once) → bootstrap (once) → kubeconfig → … → later
 * configuration changes go through apply-config --mode=try, health checks that each have their own time limit and
 * all fit inside the try window, a check that the node still runs the tried configuration, then a confirming apply.
 * If anything fails nothing is confirmed: Talos reverts by itself when the window ends, the script waits for that
 * and fails saying so. Upgrades that fail their checks are rolled back.
 */
import { apiEndpoint, KUBE_API_PORT } from "./machine-config";

/** Less time than this left, an attempt cannot tell anything: retry_until stops, and run_checks runs no further check. */
const MIN_ATTEMPT_MS = 200;

export { durationSeconds } from "../site/duration";

/**
 * Time kept free at the end of a try window: checks must finish before the node could revert under them,
 * or a check could pass against the reverted (old) configuration and confirm a broken new one.
 */
export function tryMarginSeconds(tryTimeout: number): number {
  return Math.min(15, Math.max(1, Math.floor(tryTimeout / 4)));
}

export interface NodeTarget {
  /** Management address: talosctl endpoint and node. */
  address: string;
  /** Address in maintenance mode (first install only). */
  maintenanceAddress: string;
  /** Seconds allowed for waits and health checks. */
  healthTimeout: number;
}

/** What the data plane's health must show: computed from the rendered files, plain (non-secret) values. */
export interface DataplaneHealth {
  /** The loader's metrics port on the management address (its /health endpoint). */
  metricsPort: number;
  /** SHA-256 of the rendered router.nft (absent: any ruleset the loader reports applied will do). */
  rulesetSha256?: string;
  /** `[global] generation` of the rendered loader configuration, when it carries one. */
  generation?: string;
}

/** One segment's VLAN link as the rendered plan says the node must have it. */
export interface SegmentLink {
  /** The segment's name (router:segments[].name), for messages. */
  segment: string;
  /** Kernel link name (`lan0.10`). */
  link: string;
  /** 802.1Q VLAN id of the link. */
  vlan: number;
  /** The router's gateway addresses on the link with prefix length, in the canonical form the node reports. */
  addresses: string[];
}

/** A BGP neighbour of the site (router:routing.bgp.neighbors[]), as Talos names its session. */
export interface BgpNeighbourCheck {
  /** The neighbour's address in canonical form (the BGPPeerStatus spec's `peer`). */
  address: string;
  /** Its AS, for messages. */
  asn: number;
  /** The session runs BFD. */
  bfd: boolean;
}

/** Which checks the node's health includes beyond the Talos API, the Kubernetes API, the WAN probe and the cluster. */
export interface HealthChecks {
  /** The data-plane extension and its loader (absent when the site runs no extension). */
  dataplane?: DataplaneHealth;
  /** The segments' VLAN links and gateway addresses the node must have (absent or empty: not checked). */
  segments?: SegmentLink[];
  /**
   * The site's BGP neighbours. A change (a try, an upgrade) must not lose a session: each neighbour whose session
   * was established before the change (and its BFD up, where both sides run it) must be so again before the change
   * is kept. Sessions that were down before hold nothing. The health gate, which has no "before", leaves them out.
   */
  bgp?: BgpNeighbourCheck[];
  /**
   * The site's OSPF adjacencies. A change (a try, an upgrade) must not lose one: each neighbour that was Full
   * before the change on a link OSPF still runs on must be Full again, with a hello received since the checks of
   * the new configuration began — BIRD keeps a neighbour whose hellos stopped Full until its dead interval ends,
   * so the state alone would pass a change that drops OSPF. The health gate, which has no "before", leaves them out.
   */
  ospf?: OspfCheck;
}

export interface OspfCheck {
  /** The links OSPF runs on: only neighbours on these are held. */
  links: string[];
  /** The bird pod's OSPF status on the node (OSPF_STATUS_FILE, images/services/router-ospf-status). */
  statusFile: string;
  /** OSPF's dead interval in seconds: BIRD's timer of a neighbour restarts from it on every hello. */
  deadSeconds: number;
  /** Seconds between two statuses: one older than three of them, or from another boot, is stale. */
  statusSeconds: number;
}

/** What the box in maintenance mode must be before it gets any secret. */
export interface InstallIdentity {
  /** Permanent MACs of the site's NICs (router:node.nics[].mac), lower case. */
  macs: string[];
  /** Pinned maintenance certificate fingerprint (router:node.maintenanceCertFingerprint). */
  certFingerprint?: string;
  /** jq filter over a Disks resource spec: the install disk selector (disk-selector.ts renderJq). */
  diskFilter: string;
  /** The same selector in CEL, as the node will evaluate it (for messages). */
  diskCel: string;
}

export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Longest a single check attempt may take: a hung call must not eat the window. */
const CHECK_ATTEMPT_MS = 30_000;

/**
 * Common prelude: strict mode, no secret on disk, clock and bounded-call helpers. `needsConfig` reads stdin (the
 * machine configuration) into memory.
 */
function prelude(t: NodeTarget, needsConfig: boolean): string {
  return [
    "set -euo pipefail",
    "umask 077",
    `NODE=${q(t.address)}`,
    `HEALTH_TIMEOUT=${t.healthTimeout}`,
    shellHelpers(),
    // talos MS ARGS...: one talosctl call with this site's credentials (through a pipe), killed after MS ms.
    "talos() {",
    "  local ms=$1; shift",
    '  (( ms > 0 )) || { echo "no time left for talosctl $1"; return 124; }',
    '  timeout --kill-after=1 "$(secs "$ms")" talosctl --talosconfig /dev/fd/8 --nodes "$NODE" --endpoints "$NODE" "$@" 8< <(printf \'%s\' "$ROUTER_TALOSCONFIG")',
    "}",
    'if [ -z "${ROUTER_TALOSCONFIG:-}" ]; then log "ROUTER_TALOSCONFIG is not set"; exit 2; fi',
    ...(needsConfig
      ? [
          // The configuration stays in memory: read to the end (NUL never occurs in YAML), trailing newlines kept.
          "IFS= read -r -d '' config || true",
          'if [ -z "$config" ]; then log "no machine configuration on stdin"; exit 2; fi',
          "config_digest=$(printf '%s' \"$config\" | digest)",
        ]
      : []),
  ].join("\n");
}

/**
 * Helpers every lifecycle script shares: log (to the original stderr, fd 3, so messages from inside captured
 * commands still reach the operator), a millisecond clock, and retry_until END_MS WHAT FN ARGS... which runs
 * `FN ATTEMPT_MS ARGS...` until it succeeds or END_MS passes, each attempt limited to CHECK_MS and to what is left.
 */
export function shellHelpers(): string {
  return [
    `CHECK_MS=${CHECK_ATTEMPT_MS}`,
    "exec 3>&2",
    "log() { printf '[router] %s\\n' \"$*\" >&3; }",
    "now_ms() { local t=${EPOCHREALTIME//[!0-9]/}; echo $(( 10#$t / 1000 )); }",
    "secs() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }",
    // digest: SHA-256 of stdin without trailing newlines (how both our copy and the node's report are compared).
    "digest() { local s; s=$(cat); printf '%s' \"$s\" | sha256sum | cut -c1-64; }",
    "slowest=0",
    "retry_until() {",
    "  local end=$1 what=$2 fn=$3; shift 3",
    '  local left ms t0 took out note="" last="(not attempted: no time left)"',
    "  while :; do",
    "    left=$(( end - $(now_ms) ))",
    // An attempt with almost no time left cannot tell anything: stop with the last real answer.
    `    if (( left < ${MIN_ATTEMPT_MS} )); then`,
    '      log "gave up waiting for ${what}:"',
    "      sed 's/^/  | /' <<<\"$last${note:+$'\\n'$note}\" >&2",
    "      return 1",
    "    fi",
    "    ms=$(( left < CHECK_MS ? left : CHECK_MS ))",
    "    t0=$(now_ms)",
    '    if out=$("$fn" "$ms" "$@" 2>&1); then',
    "      took=$(( $(now_ms) - t0 )); (( took > slowest )) && slowest=$took",
    '      log "ok: ${what}"',
    "      return 0",
    "    fi",
    "    took=$(( $(now_ms) - t0 )); (( took > slowest )) && slowest=$took",
    '    if [ -n "$out" ]; then last=$out; fi',
    '    if (( took >= ms )); then note="(the last attempt got no answer within $(secs "$ms")s)"; else note=""; fi',
    "    left=$(( end - $(now_ms) ))",
    '    (( left > 0 )) && sleep "$(secs $(( left < ${ROUTER_RETRY_MS:-5000} ? left : ${ROUTER_RETRY_MS:-5000} )))"',
    "  done",
    "}",
  ].join("\n");
}

/**
 * Health checks shared by the try path, upgrades and the final gate: each a function taking its time limit in ms.
 * The segment check is the node's side of every segment: inside a try window the services (Kea, radvd, …) have
 * not rolled out yet (they follow the confirmed host change), so what can be checked there is that each segment's
 * VLAN link is up and carries its gateway addresses; the final gate runs the same check after the services.
 */
/** One check: its function body ($1: its time limit in ms) and lines run_checks runs before it is first tried. */
interface Check {
  name: string;
  what: string;
  body: string[];
  before?: string[];
}

export function healthChecks(t: NodeTarget, checks: HealthChecks): Check[] {
  const readyz = `${apiEndpoint(t.address, KUBE_API_PORT)}/readyz`;
  const list: Check[] = [
    { name: "Talos-API", what: "Talos API on $NODE", body: ['talos "$1" version >/dev/null'] },
    {
      name: "Kubernetes-API",
      what: "Kubernetes API /readyz",
      body: [`timeout --kill-after=1 "$(secs "$1")" curl -fsSk --max-time "$(secs "$1")" ${q(readyz)}`],
    },
    {
      name: "WAN-probe",
      what: "WAN reachability probe",
      body: [
        "local out",
        "out=$(talos \"$1\" get probestatus -o jsonpath='{.spec.success}') || { printf '%s\\n' \"$out\"; return 1; }",
        '[ -n "$out" ] && ! grep -qvx true <<<"$out" || { echo "probe status: $out"; return 1; }',
      ],
    },
  ];
  if (checks.segments?.length) list.push(segmentCheck(checks.segments));
  if (checks.dataplane) list.push(dataplaneCheck(t, checks.dataplane));
  if (checks.bgp?.length) list.push(bgpCheck());
  // after the data plane's check: the hellos it requires came through the ruleset the change applied
  if (checks.ospf) list.push(ospfCheck());
  list.push({
    name: "cluster-health",
    what: "cluster health",
    body: ['talos "$1" health --server=false --wait-timeout "$(( $1 > 2000 ? $1 / 1000 - 1 : 1 ))s"'],
  });
  return list;
}

/**
 * Each segment's VLAN link exists, is the rendered VLAN, is up, and carries every gateway address of the plan,
 * usable (not tentative or failed duplicate address detection), read from the node's LinkStatus and AddressStatus
 * resources (`talosctl get links|addresses -o json`: a stream of {node, metadata, spec}, the spec as Talos
 * marshals it to YAML — pkg/machinery/resources/network link_status.go, address_status.go). Every problem at once.
 */
function segmentCheck(segments: SegmentLink[]): Check {
  const want = JSON.stringify(
    segments.map((s) => ({ segment: s.segment, link: s.link, vlan: s.vlan, addresses: s.addresses })),
  );
  const verdict = [
    'map(select(.metadata.type == "LinkStatuses.net.talos.dev")) as $links',
    '| map(select(.metadata.type == "AddressStatuses.net.talos.dev") | .spec) as $addrs',
    '| [ $want[] as $s | "segment \\($s.segment): link \\($s.link)" as $at',
    "  | ([$links[] | select(.metadata.id == $s.link) | .spec] | first) as $l",
    '  | if $l == null then "\\($at) (VLAN \\($s.vlan)) does not exist"',
    "    else",
    '      (if $l.kind != "vlan" or $l.vlan.vlanID != $s.vlan then "\\($at) is not VLAN \\($s.vlan) (kind \\($l.kind // "none"), VLAN \\($l.vlan.vlanID // "none"))" else empty end),',
    '      (if $l.operationalState != "up" then "\\($at) is \\($l.operationalState // "in no state"), not up" else empty end),',
    "      ($s.addresses[] as $a",
    "        | [$addrs[] | select(.linkName == $s.link and .address == $a)] as $m",
    '        | if $m == [] then "\\($at) has no address \\($a)"',
    '          elif any($m[]; (.flags // "") | split(",") | any(.[]; . == "tentative" or . == "dadfailed"))',
    '          then "\\($at) address \\($a) is not usable (flags \\($m[0].flags))" else empty end)',
    "    end",
    '] | join("; ")',
  ].join("\n");
  return {
    name: "segments",
    what: "segment links and gateway addresses",
    body: [
      "local end=$(( $(now_ms) + $1 )) links addrs problems",
      'links=$(talos "$1" get links -o json) || { printf \'%s\\n\' "$links"; return 1; }',
      "addrs=$(talos $(( end - $(now_ms) )) get addresses -o json) || { printf '%s\\n' \"$addrs\"; return 1; }",
      `problems=$(printf '%s\\n%s\\n' "$links" "$addrs" | jq -rs --argjson want ${q(want)} ${q(verdict)}) || { echo "the node's links and addresses are not JSON"; return 1; }`,
      'if [ -n "$problems" ]; then echo "$problems"; return 1; fi',
    ],
  };
}

/** The extension service runs and its loader reports the rendered ruleset and configuration as applied. */
function dataplaneCheck(t: NodeTarget, dp: DataplaneHealth): Check {
  const host = t.address.includes(":") ? `[${t.address}]` : t.address;
  const url = `http://${host}:${dp.metricsPort}/health`;
  // Every problem at once: status, ruleset state, digest and generation.
  const verdict = [
    '[ (if .status != "ok" then "status \\(.status) (\\((.reasons // []) | join("; ")))" else empty end),',
    '  (if .ruleset != "applied" then "ruleset \\(.ruleset)" else empty end),',
    '  (if $sha != "" and .ruleset_sha256 != $sha then "ruleset \\(.ruleset_sha256 // "none") is not the rendered one \\($sha)" else empty end),',
    '  (if $gen != "" and .config_generation != $gen then "configuration generation \\(.config_generation // "none") is not the rendered \\($gen)" else empty end)',
    '] | join(", ")',
  ].join(" ");
  return {
    name: "data-plane",
    what: "data plane (ext-router-dataplane and its loader)",
    body: [
      "local end=$(( $(now_ms) + $1 )) out body problems",
      'out=$(talos "$1" service ext-router-dataplane) || { printf \'%s\\n\' "$out"; return 1; }',
      "if ! grep -Eq '^STATE[[:space:]]+Running[[:space:]]*$' <<<\"$out\"; then",
      "  echo \"ext-router-dataplane is not running: $(grep -E '^STATE' <<<\"$out\" || echo 'no state')\"; return 1",
      "fi",
      "local ms=$(( end - $(now_ms) )); (( ms > 0 )) || return 124",
      `body=$(timeout --kill-after=1 "$(secs "$ms")" curl -sS --max-time "$(secs "$ms")" ${q(url)}) || return 1`,
      `problems=$(jq -r --arg sha ${q(dp.rulesetSha256 ?? "")} --arg gen ${q(dp.generation ?? "")} ${q(verdict)} <<<"$body") || { echo "loader health is not JSON: $body"; return 1; }`,
      'if [ -n "$problems" ]; then echo "loader: $problems"; return 1; fi',
    ],
  };
}

/**
 * jq over `talosctl get bgppeerstatuses -o json` slurped: the BGPPeerStatus specs, as Talos marshals them
 * (pkg/machinery/resources/network/bgp_peer_status.go: peer, peerASN, state as nethelpers.BGPSessionState's text —
 * ESTABLISHED, ACTIVE …; bfdState as GoBGP's BFD state lower-cased — up, down, init, admin_down).
 */
const BGP_SPECS = '[.[] | select(.metadata.type == "BGPPeerStatuses.net.talos.dev") | .spec]';

/**
 * Before a change: which of the site's neighbours have their session established now, and BFD up where the site
 * runs BFD on it ($BGP_HELD, JSON). A node that cannot say fails the update before anything is sent: without it
 * the check after the change could not tell a lost session from one that was never up.
 */
function bgpHold(neighbours: BgpNeighbourCheck[]): string {
  const held = [
    `${BGP_SPECS} as $s`,
    "| [ $want[] as $w | ([$s[] | select(.peer == $w.address)] | first) as $p",
    '  | select($p != null and $p.state == "ESTABLISHED")',
    '  | {address: $w.address, asn: $w.asn, bfd: ($w.bfd and $p.bfdState == "up")} ]',
  ].join("\n");
  return [
    `BGP_WANT=${q(JSON.stringify(neighbours))}`,
    'read_bgp() { talos "$1" get bgppeerstatuses -o json; }',
    "bgp_hold() {",
    "  local out",
    '  if ! retry_until $(( $(now_ms) + CHECK_MS )) "the node\'s BGP sessions before the change" read_bgp; then',
    '    log "could not read the node\'s BGP sessions, so a session this change breaks could not be told from one that was down; nothing was changed"',
    "    exit 1",
    "  fi",
    '  out=$(read_bgp "$CHECK_MS")',
    `  BGP_HELD=$(jq -cs --argjson want "$BGP_WANT" ${q(held)} <<<"$out") || { log "the node's BGP sessions are not JSON; nothing was changed"; exit 1; }`,
    "  local up",
    `  up=$(jq -r '[.[] | .address + (if .bfd then " (BFD up)" else "" end)] | join(", ")' <<<"$BGP_HELD")`,
    '  log "BGP sessions established before the change, which it must keep: ${up:-none}"',
    "}",
  ].join("\n");
}

/** The sessions held before the change ($BGP_HELD) are established again, BFD up where it was. Every problem at once. */
function bgpCheck(): Check {
  const verdict = [
    `${BGP_SPECS} as $s`,
    '| [ $held[] as $h | "neighbour \\($h.address) (AS \\($h.asn))" as $at',
    "  | ([$s[] | select(.peer == $h.address)] | first) as $p",
    '  | if $p == null then "\\($at) has no session; it was established before the change"',
    '    elif $p.state != "ESTABLISHED" then "\\($at) is \\($p.state); it was established before the change"',
    '    elif $h.bfd and $p.bfdState != "up" then "\\($at): BFD is \\($p.bfdState // "off"); it was up before the change"',
    "    else empty end",
    '] | join("; ")',
  ].join("\n");
  return {
    name: "BGP",
    what: "BGP sessions that were up before the change",
    body: [
      "local out problems",
      '[ "${BGP_HELD:-[]}" != "[]" ] || return 0',
      'out=$(read_bgp "$1") || { printf \'%s\\n\' "$out"; return 1; }',
      `problems=$(jq -rs --argjson held "$BGP_HELD" ${q(verdict)} <<<"$out") || { echo "the node's BGP sessions are not JSON"; return 1; }`,
      'if [ -n "$problems" ]; then echo "$problems"; return 1; fi',
    ],
  };
}

/**
 * Reading the bird pod's OSPF status (images/services/router-ospf-status: {uptime, boot, readable, error,
 * neighbours: [{routerId, interface, address, state, role, deadIn}]}) and the node's clock and boot through the
 * Talos API. `ospf_since` sets $OSPF_SINCE to the node's uptime now (empty when the node does not say in time).
 */
function ospfReaders(o: OspfCheck): string {
  return [
    `OSPF_FILE=${q(o.statusFile)}`,
    `OSPF_DEAD=${o.deadSeconds}`,
    `OSPF_STALE=${3 * o.statusSeconds}`,
    'read_ospf() { talos "$1" read "$OSPF_FILE"; }',
    'node_uptime() { local u; u=$(talos "$1" read /proc/uptime) && printf \'%s\\n\' "${u%% *}"; }',
    'node_boot() { talos "$1" read /proc/sys/kernel/random/boot_id; }',
    "ospf_since() {",
    "  local end=$(( $(now_ms) + CHECK_MS ))",
    '  OSPF_SINCE=""',
    '  until OSPF_SINCE=$(node_uptime "$CHECK_MS" 2>/dev/null) && [ -n "$OSPF_SINCE" ]; do',
    '    OSPF_SINCE=""; (( $(now_ms) < end )) || return 0; sleep 1',
    "  done",
    "}",
  ].join("\n");
}

/**
 * Before a change: the OSPF neighbours that are Full now on the links OSPF runs on ($OSPF_HELD, JSON). No status
 * on the node (BIRD has never run) holds nothing. Neither does a stale or unreadable one — the bird pod is not
 * running or its status container is not, and a change of the host must stay possible then (the services that
 * would repair it are rolled out after the host's change) — but the log says so, and the OspfStatusUnreadable
 * alert has said it before. A node that cannot be read at all is not changed: nothing could tell a lost
 * adjacency from one that was never there.
 */
function ospfHold(o: OspfCheck): string {
  const held = [
    "if .readable != true then []",
    '  else [ .neighbours[] | select(.state == "Full" and (.interface as $i | any($links[]; . == $i)))',
    "         | {routerId, interface} ]",
    "  end",
  ].join("\n");
  const staleness = [
    'if .boot != $boot then "it was written before the node last started"',
    'elif ($up - .uptime) > $stale then "it was written \\(($up - .uptime) | floor)s ago"',
    'elif .readable != true then "BIRD did not answer: \\(.error // "no reason given")"',
    'else "" end',
  ].join("\n");
  return [
    ospfReaders(o),
    `OSPF_LINKS=${q(JSON.stringify(o.links))}`,
    // a read that works, or a node that says the file is not there (BIRD has never run): either is an answer
    'ospf_read_all() { local out; out=$(read_ospf "$1" 2>&1) || grep -qi \'no such file\' <<<"$out"; }',
    "ospf_hold() {",
    "  local st up boot why",
    "  OSPF_HELD='[]'",
    '  if ! retry_until $(( $(now_ms) + CHECK_MS )) "the node\'s OSPF status before the change" ospf_read_all; then',
    '    log "could not read the node\'s OSPF status, so an adjacency this change breaks could not be told from one that was down; nothing was changed"',
    "    exit 1",
    "  fi",
    '  if ! st=$(read_ospf "$CHECK_MS" 2>/dev/null); then',
    '    log "no OSPF status on the node yet ($OSPF_FILE): BIRD has not run, so no adjacency is held by this change"',
    "    return 0",
    "  fi",
    '  up=$(node_uptime "$CHECK_MS") && boot=$(node_boot "$CHECK_MS") || { log "the node did not say its uptime and boot; nothing was changed"; exit 1; }',
    `  why=$(jq -r --argjson up "$up" --arg boot "$boot" --argjson stale "$OSPF_STALE" ${q(staleness)} <<<"$st") || { log "the node's OSPF status is not JSON; nothing was changed"; exit 1; }`,
    '  if [ -n "$why" ]; then',
    '    log "WARNING: the OSPF status on the node is stale or unreadable ($why), so this change holds no adjacency; see the OspfStatusUnreadable alert and the bird pod"',
    "    return 0",
    "  fi",
    `  OSPF_HELD=$(jq -c --argjson links "$OSPF_LINKS" ${q(held)} <<<"$st")`,
    "  local full",
    `  full=$(jq -r '[.[] | "\\(.routerId) on \\(.interface)"] | join(", ")' <<<"$OSPF_HELD")`,
    '  log "OSPF neighbours Full before the change, which it must keep: ${full:-none}"',
    "}",
  ].join("\n");
}

/**
 * The neighbours held before the change ($OSPF_HELD) are Full again in a status written since this check began
 * ($OSPF_SINCE, the node's uptime then), each with a hello received since: BIRD restarts a neighbour's dead timer
 * on every hello, so its last hello came OSPF_DEAD − deadIn seconds before the status. Every problem at once.
 */
function ospfCheck(): Check {
  const verdict = [
    'if .boot != $boot then "the OSPF status was written before the node last started: the bird pod has not written since"',
    'elif .uptime < $since then "the OSPF status was written \\(($since - .uptime) | floor)s before this check began: the bird pod has not written since"',
    'elif .readable != true then "BIRD did not answer: \\(.error // "no reason given")"',
    "else . as $st",
    '  | [ $held[] as $h | "neighbour \\($h.routerId) on \\($h.interface)" as $at',
    "    | ([$st.neighbours[] | select(.routerId == $h.routerId and .interface == $h.interface)] | first) as $n",
    '    | if $n == null then "\\($at) is gone; it was Full before the change"',
    '      elif $n.state != "Full" then "\\($at) is \\($n.state); it was Full before the change"',
    "      elif $n.deadIn < 0 or ($st.uptime - ($dead - $n.deadIn)) <= $since",
    '      then "\\($at) has sent no hello since the new configuration\'s checks began (BIRD keeps it Full until its dead interval ends)"',
    "      else empty end",
    '  ] | join("; ")',
    "end",
  ].join("\n");
  return {
    name: "OSPF",
    what: "OSPF adjacencies that were Full before the change",
    before: ['[ "${OSPF_HELD:-[]}" = "[]" ] || ospf_since'],
    body: [
      "local end=$(( $(now_ms) + $1 )) st boot problems",
      '[ "${OSPF_HELD:-[]}" != "[]" ] || return 0',
      '[ -n "${OSPF_SINCE:-}" ] || { echo "the node did not say its uptime when this check began"; return 1; }',
      'st=$(read_ospf "$1") || { printf \'%s\\n\' "$st"; return 1; }',
      "boot=$(node_boot $(( end - $(now_ms) ))) || { printf '%s\\n' \"$boot\"; return 1; }",
      `problems=$(jq -r --argjson held "$OSPF_HELD" --argjson since "$OSPF_SINCE" --argjson dead "$OSPF_DEAD" --arg boot "$boot" ${q(verdict)} <<<"$st") || { echo "the node's OSPF status is not JSON"; return 1; }`,
      'if [ -n "$problems" ]; then echo "$problems"; return 1; fi',
    ],
  };
}

/**
 * The check functions and run_checks END_MS, which sets $failed to the checks that did not pass by END_MS. A check
 * that failed by waiting out the time leaves none for those after it: they are not run, and $failed says so once
 * (`OSPF, and not run for lack of time: cluster-health`) instead of each of them giving up with nothing to tell.
 */
function checkFunctions(t: NodeTarget, checks: HealthChecks): string {
  const list = healthChecks(t, checks);
  return [
    ...list.flatMap((c, i) => [`check_${i}() {`, ...c.body.map((l) => `  ${l}`), "}"]),
    "run_checks() {",
    "  local end=$1 unrun=''",
    '  failed=""',
    ...list.flatMap((c, i) => [
      `  if [ -n "$failed" ] && (( end - $(now_ms) < ${MIN_ATTEMPT_MS} )); then unrun="$unrun ${c.name}"; else`,
      ...(c.before ?? []).map((l) => `    ${l}`),
      `    retry_until "$end" ${q(c.what.replace("$NODE", t.address))} check_${i} || failed="$failed ${c.name}"`,
      "  fi",
    ]),
    '  if [ -n "$unrun" ]; then log "not run, no time left after a failed check:${unrun}"; failed="$failed, and not run for lack of time:${unrun}"; fi',
    '  [ -z "$failed" ]',
    "}",
  ].join("\n");
}

/** Checks the box in maintenance mode is this site's router and picks its install disk; sends nothing. */
function identityCheck(id: InstallIdentity): string {
  const macs = [...new Set(id.macs.map((m) => m.toLowerCase()))].sort();
  return [
    `SITE_MACS=${q(macs.join(" "))}`,
    `DISK_FILTER=${q(id.diskFilter)}`,
    `DISK_CEL=${q(id.diskCel)}`,
    'maint() { local ms=$1; shift; timeout --kill-after=1 "$(secs "$ms")" talosctl --nodes "$MAINT" --endpoints "$MAINT" "$@" --insecure; }',
    'check_maintenance() { maint "$1" get links -o json >/dev/null; }',
    'retry_until $(( $(now_ms) + HEALTH_TIMEOUT * 1000 )) "node in maintenance mode at $MAINT" check_maintenance',
    'links=$(maint "$CHECK_MS" get links -o json)',
    "found=$(jq -r '.spec.permanentAddr // empty' <<<\"$links\" | tr 'A-F' 'a-f' | sort -u | tr '\\n' ' ')",
    'missing=""',
    'for mac in $SITE_MACS; do grep -qw -- "$mac" <<<"$found" || missing="$missing $mac"; done',
    'if [ -n "$missing" ]; then',
    "  log \"the box at $MAINT is not this site's router: the NIC MACs${missing} (router:node.nics[].mac) are not among its links' permanent addresses (it has: ${found:-none}). Nothing was sent to it.\"",
    "  exit 1",
    "fi",
    'log "the box at $MAINT has every NIC of the site (${SITE_MACS})"',
    'disks=$(maint "$CHECK_MS" get disks -o json)',
    'describe=\'.spec | "\\(.dev_path) (\\(.model // "no model"), serial \\(.serial // "none"), \\(.size // 0) bytes, \\(.transport // "unknown transport")\\(if .readonly then ", read-only" else "" end))"\'',
    'picked=$(jq -r "select(.spec | $DISK_FILTER) | $describe" <<<"$disks")',
    'count=$(grep -c . <<<"$picked" || true)',
    'if [ "$count" -ne 1 ]; then',
    '  log "router:node.installDisk must select exactly one disk of the box, but ${DISK_CEL} selects ${count}:"',
    '  if [ "$count" -eq 0 ]; then log "its disks are:"; jq -r "$describe" <<<"$disks" | sed \'s/^/  | /\' >&3; else sed \'s/^/  | /\' <<<"$picked" >&3; fi',
    '  log "nothing was sent to the box; make the selector name one disk (e.g. by serial)"',
    "  exit 1",
    "fi",
    'log "install disk: $picked"',
  ].join("\n");
}

/** First install: identity and disk checks, then the configuration to the node in maintenance mode. */
export function installScript(t: NodeTarget, id: InstallIdentity): string {
  const pin = id.certFingerprint ? ` --cert-fingerprint ${q(id.certFingerprint)}` : "";
  return [
    prelude(t, true),
    `MAINT=${q(t.maintenanceAddress)}`,
    'if talos "$CHECK_MS" version >/dev/null 2>&1; then',
    '  log "the node already answers on $NODE with this site\'s credentials; skipping the maintenance-mode apply"',
    "else",
    identityCheck(id),
    '  log "applying the machine configuration to $MAINT (maintenance mode); the node installs Talos and reboots"',
    `  if ! out=$(maint "$CHECK_MS" apply-config${pin} --file /dev/fd/7 7< <(printf '%s' "$config") 2>&1); then`,
    "    printf '%s\\n' \"$out\" | sed 's/^/  | /' >&2",
    '    if grep -q "doesn\'t match the provided fingerprints" <<<"$out"; then',
    '      log "the box at $MAINT is not the pinned one: its maintenance certificate does not match router:node.maintenanceCertFingerprint. Nothing was sent to it."',
    "    else",
    '      log "the node in maintenance mode refused the configuration"',
    "    fi",
    "    exit 1",
    "  fi",
    "fi",
    'check_secure() { talos "$1" version >/dev/null; }',
    'retry_until $(( $(now_ms) + HEALTH_TIMEOUT * 1000 )) "Talos API on $NODE with this site\'s credentials" check_secure',
  ].join("\n");
}

/** Bootstraps etcd once; a node that is already bootstrapped is fine. */
export function bootstrapScript(t: NodeTarget): string {
  return [
    prelude(t, false),
    "bootstrap_once() {",
    "  local out",
    '  if out=$(talos "$1" bootstrap 2>&1); then return 0; fi',
    '  if grep -q "AlreadyExists" <<<"$out"; then log "etcd is already bootstrapped"; return 0; fi',
    "  printf '%s\\n' \"$out\"",
    "  return 1",
    "}",
    'retry_until $(( $(now_ms) + HEALTH_TIMEOUT * 1000 )) "etcd bootstrap" bootstrap_once',
  ].join("\n");
}

/** Fetches the admin kubeconfig once the API server answers; the kubeconfig is the only thing on stdout. */
export function kubeconfigScript(t: NodeTarget): string {
  const readyz = `${apiEndpoint(t.address, KUBE_API_PORT)}/readyz`;
  return [
    prelude(t, false),
    "end=$(( $(now_ms) + HEALTH_TIMEOUT * 1000 ))",
    // Into memory only: talosctl writes it to our stdout pipe, captured here.
    'fetch() { talos "$1" kubeconfig /dev/stdout --force --merge=false >/dev/null; }',
    'retry_until "$end" "admin kubeconfig" fetch',
    'kubeconfig=$(talos "$CHECK_MS" kubeconfig /dev/stdout --force --merge=false)',
    `ready() { curl -fsSk --max-time "$(secs "$1")" ${q(readyz)}; }`,
    'retry_until "$end" "Kubernetes API /readyz" ready',
    "printf '%s\\n' \"$kubeconfig\"",
  ].join("\n");
}

/** No-op step of a resource whose work happens elsewhere. */
export function noopScript(message: string): string {
  return `printf '[router] %s\\n' ${q(message)} >&2`;
}

/** Reads the digest of the configuration the node runs now (the MachineConfig resource's source bytes). */
const RUNNING_DIGEST = [
  "running_digest() {",
  "  local ms=$1 out",
  "  out=$(talos \"$ms\" get machineconfig v1alpha1 -o jsonpath='{.spec}' | digest) || return 1",
  '  [ "$out" != "$(printf \'\' | digest)" ] || return 1',
  "  printf '%s\\n' \"$out\"",
  "}",
].join("\n");

/** After a failed try: wait for the window to end, then see that the node runs its previous configuration. */
function revertPath(): string {
  return [
    "not_confirmed() {",
    '  log "$1. The configuration is NOT confirmed: the node reverts to its previous configuration by itself when the try window ends (${TRY_S}s after the try)."',
    "  local wait_ms=$(( deadline + 1000 - $(now_ms) ))",
    '  if (( wait_ms > 0 )); then sleep "$(secs "$wait_ms")"; fi',
    '  reverted() { local d; d=$(running_digest "$1") || return 1; [ "$d" != "$config_digest" ] || { echo "the node still runs the tried configuration"; return 1; }; }',
    '  if retry_until $(( $(now_ms) + HEALTH_TIMEOUT * 1000 )) "node back on its previous configuration" reverted; then',
    '    log "the node reverted and answers again on its previous configuration; this update failed and changed nothing"',
    "  else",
    '    log "the node did not show its previous configuration after the try window; check it on its console"',
    "  fi",
    "  exit 1",
    "}",
  ].join("\n");
}

/**
 * Applies a changed configuration safely: try mode, health checks inside the try window (each with its own time
 * limit), a check that the node still runs the tried configuration with enough time left to confirm, then a
 * confirming apply. On any failure nothing is confirmed, the node reverts by itself and the script exits non-zero.
 */
export function applyTryScript(t: NodeTarget, tryTimeout: number, checks: HealthChecks = {}): string {
  const margin = tryMarginSeconds(tryTimeout);
  return [
    prelude(t, true),
    checkFunctions(t, checks),
    RUNNING_DIGEST,
    `TRY_S=${tryTimeout}`,
    `MARGIN_MS=${margin * 1000}`,
    revertPath(),
    ...(checks.bgp?.length ? [bgpHold(checks.bgp), "bgp_hold"] : []),
    ...(checks.ospf ? [ospfHold(checks.ospf), "ospf_hold"] : []),
    "start=$(now_ms)",
    "deadline=$(( start + TRY_S * 1000 ))",
    "confirm_by=$(( deadline - MARGIN_MS ))",
    "CHECK_MS=$(( CHECK_MS < TRY_S * 1000 / 3 ? CHECK_MS : TRY_S * 1000 / 3 ))",
    // The layers the stream is made of (layer=digest, plain): the same digests a preview shows on each ConfigLayer.
    'log "configuration layers: ${ROUTER_CONFIG_LAYERS:-(not given)}"',
    'log "trying the new configuration (Talos reverts it by itself after ${TRY_S}s unless it is confirmed)"',
    'if ! out=$(talos $(( confirm_by - $(now_ms) )) apply-config --mode=try --timeout "${TRY_S}s" --file /dev/fd/7 7< <(printf \'%s\' "$config") 2>&1); then',
    "  printf '%s\\n' \"$out\" | sed 's/^/  | /' >&2",
    '  if grep -q "InvalidArgument" <<<"$out"; then',
    '    log "the node refused to try this configuration (a change that needs a reboot cannot be tried); nothing was changed"',
    "    exit 1",
    "  fi",
    '  not_confirmed "the try did not complete"',
    "fi",
    'if ! run_checks "$confirm_by"; then not_confirmed "health checks failed:${failed}"; fi',
    // Reading the running configuration and confirming take about as long as the slowest check did.
    "left=$(( confirm_by - $(now_ms) ))",
    "if (( left < 2 * slowest )); then",
    '  not_confirmed "the checks passed with only $(secs $(( deadline - $(now_ms) )))s of the try window left, less than the ${MARGIN_MS}ms margin plus two of the slowest check ($(secs "$slowest")s) needed to confirm safely"',
    "fi",
    'if ! got=$(running_digest "$left"); then not_confirmed "the node did not report its running configuration in time"; fi',
    'if [ "$got" != "$config_digest" ]; then',
    '  not_confirmed "the node no longer runs the tried configuration (it rebooted or reverted inside the try window)"',
    "fi",
    'log "all checks passed and the node runs the tried configuration; confirming it"',
    "if ! out=$(talos $(( deadline - $(now_ms) )) apply-config --mode=no-reboot --file /dev/fd/7 7< <(printf '%s' \"$config\") 2>&1); then",
    "  printf '%s\\n' \"$out\" | sed 's/^/  | /' >&2",
    '  not_confirmed "the confirming apply failed"',
    "fi",
    'if got=$(running_digest "$CHECK_MS") && [ "$got" = "$config_digest" ]; then log "configuration confirmed"; else',
    '  log "the confirming apply was accepted but the node reports another running configuration; check it"; exit 1',
    "fi",
  ].join("\n");
}

/**
 * Upgrades Talos to a new installer image (A/B boot slots), then checks the node. If the checks fail the node is
 * rolled back to the previous image, which must come back healthy, and the update fails saying so.
 */
export function upgradeScript(t: NodeTarget, image: string, checks: HealthChecks = {}): string {
  return [
    prelude(t, false),
    checkFunctions(t, checks),
    `IMAGE=${q(image)}`,
    ...(checks.bgp?.length ? [bgpHold(checks.bgp), "bgp_hold"] : []),
    ...(checks.ospf ? [ospfHold(checks.ospf), "ospf_hold"] : []),
    'log "upgrading the node to $IMAGE"',
    'if ! talos $(( HEALTH_TIMEOUT * 1000 )) upgrade --image "$IMAGE" --wait --timeout "${HEALTH_TIMEOUT}s" >&2; then',
    '  log "the upgrade to $IMAGE did not complete; the node keeps (or boots back into) its current image"',
    "  exit 1",
    "fi",
    'if run_checks $(( $(now_ms) + HEALTH_TIMEOUT * 1000 )); then log "upgrade to $IMAGE healthy"; exit 0; fi',
    'log "the node runs $IMAGE but health checks failed:${failed}; rolling back to the previous image"',
    'boot_id=$(talos "$CHECK_MS" read /proc/sys/kernel/random/boot_id 2>/dev/null || true)',
    'if ! out=$(talos "$CHECK_MS" rollback 2>&1); then',
    "  printf '%s\\n' \"$out\" | sed 's/^/  | /' >&2",
    '  log "the rollback was refused; the node still runs $IMAGE, unhealthy:${failed}. Roll back by hand: talosctl rollback --nodes $NODE"',
    "  exit 1",
    "fi",
    "first_failed=$failed",
    // The rollback reboots the node: its boot id changes once it is back, on the previous image.
    'rebooted() { local b; b=$(talos "$1" read /proc/sys/kernel/random/boot_id) && [ -n "$b" ] && [ "$b" != "$boot_id" ]; }',
    'retry_until $(( $(now_ms) + HEALTH_TIMEOUT * 1000 )) "the node back from its reboot into the previous image" rebooted || true',
    "if run_checks $(( $(now_ms) + HEALTH_TIMEOUT * 1000 )); then",
    '  log "rolled back: the node runs its previous image again and is healthy. The upgrade to $IMAGE failed (${first_failed# }) and this update changed nothing."',
    "else",
    '  log "rolled back to the previous image, but it is not healthy either:${failed}; check the node on its console"',
    "fi",
    "exit 1",
  ].join("\n");
}

/** The router's health gate: runs after every change of what it gates. */
export function healthScript(t: NodeTarget, checks: HealthChecks = {}): string {
  return [
    prelude(t, false),
    // No "before" to hold BGP sessions or OSPF adjacencies to: the try and the upgrade hold them.
    checkFunctions(t, { ...checks, bgp: undefined, ospf: undefined }),
    'if ! run_checks $(( $(now_ms) + HEALTH_TIMEOUT * 1000 )); then log "the router is not healthy:${failed}"; exit 1; fi',
    'log "the router is healthy"',
  ].join("\n");
}

/** Runs on `pulumi destroy`: resets the node only when the site allows it; otherwise leaves it running. */
export function destroyScript(t: NodeTarget, allowWipe: boolean): string {
  if (!allowWipe)
    return noopScript(
      `leaving the router at ${t.address} running: the site does not set node.allowWipeOnDestroy, so destroy never wipes it`,
    );
  return [
    prelude(t, false),
    'log "node.allowWipeOnDestroy is set: resetting the router at $NODE (wipes its disks)"',
    'talos "$CHECK_MS" reset --graceful=false --reboot --wipe-mode all >&2',
  ].join("\n");
}
