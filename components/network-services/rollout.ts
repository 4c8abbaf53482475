/**
 * The rollout gate of the network services: a script (run by a Command after the DaemonSets change) that follows
 * each DaemonSet's rollout through the Kubernetes API, as `kubectl rollout status` does, and when one does not
 * become available in time, rolls it back to its previous ControllerRevision, as `kubectl rollout undo` does — then
 * fails the update saying what was rolled back. The kubeconfig comes from the environment (ROUTER_KUBECONFIG, a
 * Pulumi secret) and reaches curl only through pipes.
 *
 * The host's configuration is confirmed before the services change (their resources depend on the node's apply),
 * so a rollback must not bring back service for a subnet the node no longer has: a Kea revision that serves such a
 * subnet is rolled back without it (that segment gets no DHCP until the next good update, and the message says
 * so), and a radvd revision that announces such a prefix is not rolled back at all.
 *
 * With a probe (ProbeStep), a rollout that became available must also answer: the segments the change touched are
 * probed from the node's side by a short-lived host-network pod running the probe's script (the services' DHCPv4,
 * DHCPv6 and RA probe, probe.ts; the DNS stack's, components/dns-stack/probe.ts); a segment that does not answer
 * fails the update naming it, and each daemon its failure implicates (kea-dhcp4, kea-dhcp6 or radvd; the DNS
 * daemons) is rolled back as above when its revision changed since the segment last answered. What answered is
 * kept in the probe's state ConfigMap (fingerprints and revisions, nothing secret), which is how a later run knows
 * what the change touched.
 * Pure: plain text.
 */
import { q, shellHelpers } from "../talos-node/scripts";
import { DAEMON_LABEL } from "./k8s";
import { LABELS } from "../daemonset";

export interface RolloutGate {
  /** Namespace of the DaemonSets. */
  namespace: string;
  /** DaemonSets to follow, in order. */
  daemons: string[];
  /** Every subnet and prefix the node has on its segments after the (confirmed) host change. */
  subnets: string[];
  /** Seconds each DaemonSet may take to become available. */
  timeout: number;
  /** What the daemons are, for the closing message (default: network service). */
  what?: string;
  /** The segment probe run once every daemon rolled out (absent: none). */
  probe?: ProbeStep;
}

export interface ProbeStep {
  /** The image the probe pod runs (pinned by digest): it carries the probe script's tools. */
  image: string;
  /** Name of the probe pod (with a timestamp appended) and its app label, e.g. `segment-probe`. */
  name: string;
  /** The ConfigMap that remembers what last answered: each segment's fingerprint and each daemon's revision. */
  state: string;
  /** What rolled out, for messages (`services`, `DNS daemons`). */
  subject: string;
  /** The probe script (POSIX sh): its arguments are the segments to probe; `FAIL segment NAME: …` lines, exit 1. */
  script: string;
  /** Every segment the probe can check. */
  segments: ProbedSegment[];
  /** Longest time the script takes for one segment, in ms (the pod's deadline follows from it). */
  segmentMs: number;
  /** Capabilities the probe needs beyond none (NET_RAW for raw DHCP and ICMPv6 sockets). */
  capabilities: string[];
  /** Time the script may take once, beyond segmentMs per segment, in ms (the OSPF hold's wait). */
  onceMs?: number;
  /** Node directories the probe reads, mounted read-only at the same path (the OSPF status). */
  hostDirs?: string[];
  /**
   * The script's environment. The gate adds PROBE_CHANGED: the daemons whose revision changed since the segments
   * last answered, space-separated (a restarted daemon must answer as the one before it did).
   */
  env?: Record<string, string>;
  /**
   * Which daemons a failure implicates: each daemon with an extended regular expression matched against what
   * follows `FAIL segment NAME: ` (e.g. `DHCPv4 ` for kea-dhcp4). An implicated daemon whose revision changed since
   * the segment last answered is rolled back.
   */
  blame: { daemon: string; pattern: string }[];
}

/** One segment a probe can check. */
export interface ProbedSegment {
  /** The segment's name (router:segments[].name): the script's argument and what messages name. */
  segment: string;
  /** SHA-256 of what the daemons were told about the segment: a change of it touches the segment. */
  fingerprint: string;
  /** The daemons whose answers the probe checks there (a new revision of one touches the segment). */
  daemons: string[];
}

/** The services' probe state (kept under this name so a node's earlier record stays valid). */
export const PROBE_STATE = "segment-probe-state";

/** The probe pod: host network, the probe script with the touched segments as arguments, only the probe's capabilities. */
function probePod(g: RolloutGate, p: ProbeStep): Record<string, unknown> {
  const seconds = Math.ceil((p.segments.length * p.segmentMs + (p.onceMs ?? 0)) / 1000) + 30;
  const dirs = p.hostDirs ?? [];
  const volume = (i: number) => `host-${i}`;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace: g.namespace, labels: { ...LABELS, "app.kubernetes.io/name": p.name } },
    spec: {
      hostNetwork: true,
      restartPolicy: "Never",
      activeDeadlineSeconds: seconds,
      automountServiceAccountToken: false,
      tolerations: [{ operator: "Exists" }],
      ...(dirs.length
        ? { volumes: dirs.map((d, i) => ({ name: volume(i), hostPath: { path: d, type: "DirectoryOrCreate" } })) }
        : {}),
      containers: [
        {
          name: "probe",
          image: p.image,
          command: ["/bin/sh", "-c", p.script, p.name],
          env: Object.entries(p.env ?? {}).map(([name, value]) => ({ name, value })),
          ...(dirs.length
            ? { volumeMounts: dirs.map((d, i) => ({ name: volume(i), mountPath: d, readOnly: true })) }
            : {}),
          securityContext: {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"], ...(p.capabilities.length ? { add: p.capabilities } : {}) },
          },
          resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { cpu: "200m", memory: "32Mi" } },
        },
      ],
    },
  };
}

/**
 * probe_segments: finds the segments this change touched (a fingerprint or a serving daemon's revision differs from
 * what last answered; every segment when nothing did yet), runs the probe pod for them (PROBE_CHANGED in its
 * environment: the daemons whose revision changed), and on success records
 * what answered. On failure sets $probe_failed to the FAIL lines and rolls back each daemon a FAIL line implicates
 * (PROBE_BLAME) whose revision changed since it last answered. A probe that names no segment (its pod could not be
 * created, failed without a FAIL line, or did not finish) proves nothing about the change: every daemon whose
 * revision changed is rolled back, as an unconfirmed change is.
 */
const PROBE_SEGMENTS = [
  "probe_segments() {",
  "  local state cur d touched restarted name phase out end cm",
  "  state=$(api GET \"/api/v1/namespaces/$NS/configmaps/$PROBE_STATE\" 2>/dev/null | jq -c '.data[\"state.json\"] | fromjson') || state='{}'",
  "  cur='{}'",
  "  for d in $(jq -r '[.[].daemons[]] | unique | .[]' <<<\"$PROBES\"); do",
  '    cur=$(jq -c --arg d "$d" --arg r "$(current_revision "$d")" \'.[$d] = $r\' <<<"$cur")',
  "  done",
  '  touched=$(jq -r --argjson st "$state" --argjson cur "$cur" \'[.[] | select(($st.segments // {})[.segment] != .fingerprint or any(.daemons[]; ($st.daemons // {})[.] != $cur[.])) | .segment] | join(" ")\' <<<"$PROBES")',
  '  if [ -z "$touched" ]; then log "no segment\'s $PROBE_SUBJECT changed since they last answered: nothing to probe"; return 0; fi',
  '  log "probing the segments this change touched: $touched"',
  '  restarted=$(jq -r --argjson st "$state" \'to_entries | map(select((($st.daemons // {})[.key] // "") != .value) | .key) | join(" ")\' <<<"$cur")',
  '  name="$PROBE_NAME-$(now_ms)"',
  '  if ! out=$(api POST "/api/v1/namespaces/$NS/pods" "$(jq -c --arg n "$name" --arg s "$touched" --arg c "$restarted" \'.metadata.name = $n | .spec.containers[0].args = ($s | split(" ")) | .spec.containers[0].env += [{name: "PROBE_CHANGED", value: $c}]\' <<<"$PROBE_POD")" 2>&1); then',
  '    probe_failed="the probe pod could not be created: $(paste -sd " " <<<"$out")"; out=""; phase=unknown',
  "  else",
  "    end=$(( $(now_ms) + PROBE_S * 1000 ))",
  "    while :; do",
  '      phase=$(api GET "/api/v1/namespaces/$NS/pods/$name" | jq -r \'.status.phase // "Pending"\') || phase=unknown',
  '      case "$phase" in Succeeded|Failed) break ;; esac',
  "      (( $(now_ms) < end )) || break",
  "      sleep 0.5",
  "    done",
  '    out=$(ACCEPT=text/plain api GET "/api/v1/namespaces/$NS/pods/$name/log" 2>/dev/null) || out=""',
  '    api DELETE "/api/v1/namespaces/$NS/pods/$name" >/dev/null 2>&1 || true',
  '    if [ -n "$out" ]; then sed \'s/^/  | /\' <<<"$out" >&3; fi',
  "  fi",
  '  if [ "$phase" = Succeeded ]; then',
  '    cm=$(jq -c --arg ns "$NS" --arg n "$PROBE_STATE" --argjson cur "$cur" --argjson labels "$PROBE_LABELS" \'{apiVersion: "v1", kind: "ConfigMap", metadata: {name: $n, namespace: $ns, labels: $labels}, data: {"state.json": ({segments: (map({key: .segment, value: .fingerprint}) | from_entries), daemons: $cur} | tojson)}}\' <<<"$PROBES")',
  '    api DELETE "/api/v1/namespaces/$NS/configmaps/$PROBE_STATE" >/dev/null 2>&1 || true',
  '    api POST "/api/v1/namespaces/$NS/configmaps" "$cm" >/dev/null || log "could not record what answered (the next update probes these segments again)"',
  '    log "every touched segment answered: $touched"',
  "    return 0",
  "  fi",
  // one line, the FAIL lines joined by "; " (their own text untouched: it may hold semicolons)
  '  [ -n "$probe_failed" ] || probe_failed=$(grep "^FAIL " <<<"$out" | sed "s/^FAIL //" | jq -Rsr \'split("\\n") | map(select(length > 0)) | join("; ")\')',
  '  if [ -z "$probe_failed" ] && [ "$phase" = Failed ]; then probe_failed="the probe pod failed without naming a segment ($(tail -n 3 <<<"$out" | paste -sd " "))"; fi',
  '  [ -n "$probe_failed" ] || probe_failed="the probe pod did not finish within ${PROBE_S}s (it is $phase)"',
  "  local d pattern changed named=yes",
  '  grep -q "^FAIL segment " <<<"$out" || { named=""; summary="$summary; the probe named no segment, so nothing confirms the change: every daemon that changed is rolled back"; }',
  "  while IFS=$'\\t' read -r -u 4 d pattern; do",
  "    changed=yes",
  '    [ "$(jq -r --arg d "$d" \'.[$d] // ""\' <<<"$cur")" != "$(jq -r --arg d "$d" \'(.daemons // {})[$d] // ""\' <<<"$state")" ] || changed=""',
  '    if [ -n "$named" ] && ! grep -qE "^FAIL segment [^:]*: ($pattern)" <<<"$out"; then',
  '      [ -z "$changed" ] || summary="$summary; $d changed but no failure points at it: it keeps its new revision"',
  "      continue",
  "    fi",
  '    if [ -z "$changed" ]; then',
  '      summary="$summary; $d did not change since it last answered: not rolled back"',
  "    else",
  '      roll_back "$d" || true',
  "    fi",
  '  done 4< <(jq -r \'.[] | "\\(.daemon)\\t\\(.pattern)"\' <<<"$PROBE_BLAME")',
  "  return 1",
  "}",
].join("\n");

/** Kubernetes API access with the kubeconfig from the environment; nothing on disk. */
const API = [
  'kc_field() { sed -n "s/^ *$1: *//p" <<<"$ROUTER_KUBECONFIG" | head -n1 | tr -d \'"\'; }',
  "SERVER=$(kc_field server)",
  // api METHOD PATH [BODY [CONTENT-TYPE]]: the response body on stdout; fails on an HTTP error.
  "api() {",
  "  local method=$1 path=$2 body=${3:-} ctype=${4:-application/json}",
  '  curl -sS --fail-with-body --max-time 15 -X "$method" -H "Accept: ${ACCEPT:-application/json}" \\',
  "    --cacert <(kc_field certificate-authority-data | base64 -d) \\",
  "    --cert <(kc_field client-certificate-data | base64 -d) --key <(kc_field client-key-data | base64 -d) \\",
  '    ${body:+-H "Content-Type: $ctype" --data-binary "$body"} "$SERVER$path"',
  "}",
  "urlenc() { jq -rn --arg s \"$1\" '$s | @uri'; }",
  'ds_path() { echo "/apis/apps/v1/namespaces/$NS/daemonsets/$1"; }',
].join("\n");

/** rollout_done MS NAME: done as kubectl reads it, or a line saying where the rollout stands. */
const ROLLOUT_DONE = [
  "rollout_done() {",
  '  local ds; ds=$(api GET "$(ds_path "$2")") || { echo "$ds"; return 1; }',
  "  jq -e '(.status.observedGeneration // 0) >= .metadata.generation",
  "    and (.status.updatedNumberScheduled // 0) == .status.desiredNumberScheduled",
  '    and (.status.numberAvailable // 0) == .status.desiredNumberScheduled\' <<<"$ds" >/dev/null && return 0',
  '  jq -r \'"updated \\(.status.updatedNumberScheduled // 0)/\\(.status.desiredNumberScheduled // "?"), available \\(.status.numberAvailable // 0), generation \\(.status.observedGeneration // 0) of \\(.metadata.generation)"\' <<<"$ds"',
  "  return 1",
  "}",
].join("\n");

/**
 * previous_revision NAME: the DaemonSet's ControllerRevision just below the newest (what `rollout undo` picks),
 * as JSON, or nothing.
 */
const PREVIOUS = [
  "owned_revisions() {",
  '  local ds uid sel; ds=$(api GET "$(ds_path "$1")")',
  '  uid=$(jq -r .metadata.uid <<<"$ds")',
  '  sel=$(jq -r \'.spec.selector.matchLabels | to_entries | map("\\(.key)=\\(.value)") | join(",")\' <<<"$ds")',
  '  api GET "/apis/apps/v1/namespaces/$NS/controllerrevisions?labelSelector=$(urlenc "$sel")" |',
  "    jq -c --arg uid \"$uid\" '[.items[] | select(any(.metadata.ownerReferences[]?; .uid == $uid))] | sort_by(.revision)'",
  "}",
  "previous_revision() { owned_revisions \"$1\" | jq -c '.[-2] // empty'; }",
  "current_revision() { owned_revisions \"$1\" | jq -r '.[-1].metadata.name // empty'; }",
  'config_map_of() { jq -r \'[.. | objects | select(.name? == "config") | .configMap.name // empty][0] // empty\' <<<"$1"; }',
].join("\n");

/**
 * without_stale NAME REVISION: prints what it leaves out (one line, maybe empty), then the revision made safe for
 * the node's subnets. Kea: subnets the node no longer has are dropped, into a new ConfigMap; radvd: refuses (exit 1,
 * printing the prefixes) when the revision announces one.
 */
const WITHOUT_STALE = [
  "without_stale() {",
  "  local name=$1 rev=$2 cm data key top sub filtered newname",
  '  dropped=""',
  '  cm=$(config_map_of "$rev"); [ -n "$cm" ] || { printf \'\\n%s\\n\' "$rev"; return 0; }',
  '  data=$(api GET "/api/v1/namespaces/$NS/configmaps/$cm")',
  '  case "$name" in',
  "    kea-dhcp4) key=kea-dhcp4.json top=Dhcp4 sub=subnet4 ;;",
  "    kea-dhcp6) key=kea-dhcp6.json top=Dhcp6 sub=subnet6 ;;",
  "    radvd)",
  '      dropped=$(jq -r --argjson keep "$SUBNETS" \'.data["radvd.conf"] | [scan("prefix ([^ ]+) [{]") | .[0]] | map(select(. as $p | $keep | index($p) | not)) | join(" ")\' <<<"$data")',
  '      if [ -n "$dropped" ]; then printf \'%s\\n\' "$dropped"; return 1; fi',
  "      printf '\\n%s\\n' \"$rev\"; return 0 ;;",
  "    *) printf '\\n%s\\n' \"$rev\"; return 0 ;;",
  "  esac",
  '  local args=(--arg k "$key" --arg top "$top" --arg sub "$sub" --argjson keep "$SUBNETS")',
  "  dropped=$(jq -r \"${args[@]}\" '.data[$k] | fromjson | .[$top][$sub][]?.subnet | select(. as $s | $keep | index($s) | not)' <<<\"$data\" | tr '\\n' ' ')",
  '  if [ -z "$dropped" ]; then printf \'\\n%s\\n\' "$rev"; return 0; fi',
  '  filtered=$(jq -c "${args[@]}" \'.data[$k] |= (fromjson',
  "    | .[$top][$sub] |= map(select(.subnet as $s | $keep | index($s)))",
  "    | ([.[$top][$sub][].interface] | unique) as $ifs",
  '    | .[$top]["interfaces-config"].interfaces |= map(select(. as $i | $ifs | index($i)))',
  '    | tojson)\' <<<"$data")',
  '  newname="$cm-$(jq -r \'.data | tojson\' <<<"$filtered" | digest | cut -c1-8)"',
  '  api POST "/api/v1/namespaces/$NS/configmaps" "$(jq -c --arg n "$newname" \'{apiVersion: "v1", kind: "ConfigMap", immutable: true, data, metadata: {name: $n, labels: .metadata.labels}}\' <<<"$filtered")" >/dev/null 2>&1 || true',
  "  printf '%s\\n' \"$dropped\"",
  '  jq -c --arg old "$cm" --arg new "$newname" \'(.. | objects | select(.name? == "config") | .configMap.name) |= (if . == $old then $new else . end)\' <<<"$rev"',
  "}",
].join("\n");

/** roll_back NAME: back to the previous revision (made safe), then waits for it; appends to $summary. */
const ROLL_BACK = [
  "roll_back() {",
  "  local name=$1 rev patch number out",
  '  rev=$(previous_revision "$name")',
  '  if [ -z "$rev" ]; then summary="$summary; $name has no previous revision: it stays on the failed one"; return 1; fi',
  '  number=$(jq -r .revision <<<"$rev")',
  '  if ! out=$(without_stale "$name" "$rev"); then',
  '    summary="$summary; $name was NOT rolled back: its previous revision $number announces ${out% }, which the node no longer has, so it stays on the failed revision"',
  "    return 1",
  "  fi",
  '  dropped=$(head -n1 <<<"$out"); rev=$(tail -n1 <<<"$out")',
  '  patch=$(jq -c .data <<<"$rev")',
  '  api PATCH "$(ds_path "$name")" "$patch" application/strategic-merge-patch+json >/dev/null',
  '  local what="$name rolled back to revision $number"',
  '  [ -n "$dropped" ] && what="$what without ${dropped% } (no longer on the node: that segment gets no service from it until the next good update)"',
  '  if retry_until $(( $(now_ms) + TIMEOUT * 1000 )) "rollback of $name" rollout_done "$name"; then',
  '    summary="$summary; $what"',
  "  else",
  '    summary="$summary; $what, but that revision is not available either"',
  "  fi",
  "}",
].join("\n");

/** prune NAME: removes this daemon's ConfigMaps that neither the current template nor the previous revision names. */
const PRUNE = [
  "prune() {",
  "  local name=$1 keep prev",
  '  keep=$(config_map_of "$(api GET "$(ds_path "$name")")")',
  '  prev=$(previous_revision "$name"); if [ -n "$prev" ]; then prev=$(config_map_of "$prev"); fi',
  `  api GET "/api/v1/namespaces/$NS/configmaps?labelSelector=$(urlenc "${DAEMON_LABEL}=$name")" | jq -r '.items[].metadata.name' |`,
  "    while read -r cm; do",
  '      if [ "$cm" != "$keep" ] && [ "$cm" != "$prev" ]; then api DELETE "/api/v1/namespaces/$NS/configmaps/$cm" >/dev/null || true; fi',
  "    done",
  "}",
].join("\n");

/** The probe's values and its function, for a gate that probes the segments. */
function probeVariables(g: RolloutGate, p: ProbeStep): string[] {
  const probes = p.segments.map((s) => ({ segment: s.segment, fingerprint: s.fingerprint, daemons: s.daemons }));
  const pod = probePod(g, p);
  const deadline = (pod.spec as { activeDeadlineSeconds: number }).activeDeadlineSeconds;
  return [
    `PROBE_STATE=${q(p.state)}`,
    `PROBE_NAME=${q(p.name)}`,
    `PROBE_SUBJECT=${q(p.subject)}`,
    `PROBE_S=${deadline}`,
    `PROBES=${q(JSON.stringify(probes))}`,
    `PROBE_BLAME=${q(JSON.stringify(p.blame))}`,
    `PROBE_POD=${q(JSON.stringify(pod))}`,
    `PROBE_LABELS=${q(JSON.stringify({ ...LABELS, "app.kubernetes.io/name": p.name }))}`,
    PROBE_SEGMENTS,
  ];
}

export function rolloutGateScript(g: RolloutGate): string {
  return [
    "set -euo pipefail",
    "umask 077",
    shellHelpers(),
    `NS=${q(g.namespace)}`,
    `TIMEOUT=${g.timeout}`,
    `DAEMONS=${q(g.daemons.join(" "))}`,
    `SUBNETS=${q(JSON.stringify([...g.subnets].sort()))}`,
    'if [ -z "${ROUTER_KUBECONFIG:-}" ]; then log "ROUTER_KUBECONFIG is not set"; exit 2; fi',
    API,
    ROLLOUT_DONE,
    PREVIOUS,
    WITHOUT_STALE,
    ROLL_BACK,
    PRUNE,
    ...(g.probe ? probeVariables(g, g.probe) : []),
    'summary=""; failed=""',
    "for name in $DAEMONS; do",
    '  if retry_until $(( $(now_ms) + TIMEOUT * 1000 )) "rollout of $name" rollout_done "$name"; then prune "$name"; continue; fi',
    '  failed="$failed $name"',
    '  roll_back "$name" || true',
    "done",
    'if [ -n "$failed" ]; then log "the rollout of${failed} did not become available: ${summary#; }. This update failed."; exit 1; fi',
    ...(g.probe
      ? [
          'probe_failed=""',
          "if ! probe_segments; then",
          '  log "the $PROBE_SUBJECT rolled out but the segments did not all answer: ${probe_failed}${summary:+. }${summary#; }. This update failed."',
          "  exit 1",
          "fi",
        ]
      : []),
    `log ${q(`every ${g.what ?? "network service"} rolled out`)}`,
  ].join("\n");
}
