/**
 * The shell scripts TalosNode runs through @pulumi/command to drive a node with talosctl. Pure functions: the
 * scripts are plain text, reviewable in `pulumi preview`, and contain no secret. Secrets reach them only through
 * the environment (ROUTER_TALOSCONFIG) and stdin (the machine configuration), both Pulumi secrets; the scripts
 * write them to a private temporary directory that is removed on exit, and never echo them.
 *
 * Lifecycle: install (maintenance-mode apply, once) → bootstrap (once) → kubeconfig → … → later configuration
 * changes go through apply-config --mode=try, health checks, then a confirming apply. If a check fails the
 * change is not confirmed, Talos reverts by itself when the try window ends, and the update fails saying so.
 */
import { apiEndpoint, KUBE_API_PORT } from "./machine-config";

export { durationSeconds } from "../site/duration";

/**
 * Time kept free at the end of a try window: checks must finish before the node could revert under them,
 * or a check could pass against the reverted (old) configuration and confirm a broken new one.
 */
export function tryMarginSeconds(tryTimeout: number): number {
  return Math.min(15, Math.floor(tryTimeout / 4));
}

export interface NodeTarget {
  /** Management address: talosctl endpoint and node. */
  address: string;
  /** Address in maintenance mode (first install only). */
  maintenanceAddress: string;
  /** Seconds allowed for waits and health checks. */
  healthTimeout: number;
}

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Common prelude: strict mode, a private work directory, the talosconfig from the environment, helpers.
 * `needsConfig` copies stdin (the machine configuration) into the work directory.
 */
function prelude(t: NodeTarget, needsConfig: boolean): string {
  return [
    "set -euo pipefail",
    "umask 077",
    'work="$(mktemp -d)"',
    "trap 'rm -rf \"$work\"' EXIT",
    `NODE=${q(t.address)}`,
    `HEALTH_TIMEOUT=${t.healthTimeout}`,
    // fd 3 is the original stderr, so messages from inside retried commands still reach the operator.
    "exec 3>&2",
    "log() { printf '[router] %s\\n' \"$*\" >&3; }",
    // retry_until SECONDS WHAT CMD...: repeat CMD until it succeeds; on timeout show its last output.
    "retry_until() {",
    "  local limit=$1 what=$2; shift 2",
    "  local deadline=$(( $(date +%s) + limit ))",
    '  until "$@" >"$work/last.log" 2>&1; do',
    "    if (( $(date +%s) >= deadline )); then",
    '      log "gave up after ${limit}s waiting for ${what}:"',
    "      sed 's/^/  | /' \"$work/last.log\" >&2",
    "      return 1",
    "    fi",
    '    sleep "${ROUTER_RETRY_INTERVAL:-5}"',
    "  done",
    '  log "ok: ${what}"',
    "}",
    'if [ -z "${ROUTER_TALOSCONFIG:-}" ]; then log "ROUTER_TALOSCONFIG is not set"; exit 2; fi',
    'printf \'%s\' "$ROUTER_TALOSCONFIG" > "$work/talosconfig"',
    'tc() { talosctl --talosconfig "$work/talosconfig" --nodes "$NODE" --endpoints "$NODE" "$@"; }',
    ...(needsConfig
      ? [
          'cat > "$work/config.yaml"',
          'if [ ! -s "$work/config.yaml" ]; then log "no machine configuration on stdin"; exit 2; fi',
        ]
      : []),
  ].join("\n");
}

/** Health checks shared by the try path, upgrades and the final gate. Each runs within a time budget. */
function checkFunctions(t: NodeTarget): string {
  const readyz = `${apiEndpoint(t.address, KUBE_API_PORT)}/readyz`;
  return [
    "wan_probe_ok() { tc get probestatus -o jsonpath='{.spec.success}' | grep -qx true; }",
    `kube_ready() { curl -fsk --max-time 5 ${q(readyz)}; }`,
    // run_checks BUDGET: every check must pass before BUDGET seconds elapse; sets $failed to the ones that did not.
    "run_checks() {",
    "  local budget_end=$(( $(date +%s) + $1 )) left",
    '  failed=""',
    "  left=$(( budget_end - $(date +%s) )); (( left > 0 )) || left=1",
    '  retry_until "$left" "Talos API on $NODE" tc version || failed="$failed Talos-API"',
    "  left=$(( budget_end - $(date +%s) )); (( left > 0 )) || left=1",
    '  retry_until "$left" "Kubernetes API /readyz" kube_ready || failed="$failed Kubernetes-API"',
    "  left=$(( budget_end - $(date +%s) )); (( left > 0 )) || left=1",
    '  retry_until "$left" "WAN reachability probe" wan_probe_ok || failed="$failed WAN-probe"',
    "  left=$(( budget_end - $(date +%s) )); (( left > 0 )) || left=1",
    '  retry_until "$left" "cluster health" tc health --server=false --wait-timeout "${left}s" || failed="$failed cluster-health"',
    '  [ -z "$failed" ]',
    "}",
  ].join("\n");
}

/** First install: apply the configuration to the node in maintenance mode, then wait for it to come back. */
export function installScript(t: NodeTarget): string {
  return [
    prelude(t, true),
    `MAINT=${q(t.maintenanceAddress)}`,
    "if tc version >/dev/null 2>&1; then",
    '  log "the node already answers on $NODE with this site\'s credentials; skipping the maintenance-mode apply"',
    "else",
    '  retry_until "$HEALTH_TIMEOUT" "node in maintenance mode at $MAINT" talosctl --nodes "$MAINT" --endpoints "$MAINT" get disks --insecure',
    '  log "applying the machine configuration to $MAINT (maintenance mode); the node installs Talos and reboots"',
    '  talosctl --nodes "$MAINT" --endpoints "$MAINT" apply-config --insecure --file "$work/config.yaml" >&2',
    "fi",
    'retry_until "$HEALTH_TIMEOUT" "Talos API on $NODE with this site\'s credentials" tc version',
  ].join("\n");
}

/** Bootstraps etcd once; a node that is already bootstrapped is fine. */
export function bootstrapScript(t: NodeTarget): string {
  return [
    prelude(t, false),
    "bootstrap_once() {",
    "  local out",
    "  if out=$(tc bootstrap 2>&1); then return 0; fi",
    '  if grep -q "AlreadyExists" <<<"$out"; then log "etcd is already bootstrapped"; return 0; fi',
    "  printf '%s\\n' \"$out\"",
    "  return 1",
    "}",
    'retry_until "$HEALTH_TIMEOUT" "etcd bootstrap" bootstrap_once',
  ].join("\n");
}

/** Fetches the admin kubeconfig once the API server answers; the kubeconfig is the only thing on stdout. */
export function kubeconfigScript(t: NodeTarget): string {
  const readyz = `${apiEndpoint(t.address, KUBE_API_PORT)}/readyz`;
  return [
    prelude(t, false),
    'retry_until "$HEALTH_TIMEOUT" "admin kubeconfig" tc kubeconfig --force --merge=false "$work/kubeconfig"',
    `retry_until "$HEALTH_TIMEOUT" "Kubernetes API /readyz" curl -fsk --max-time 5 ${q(readyz)}`,
    'cat "$work/kubeconfig"',
  ].join("\n");
}

/** No-op create step of a resource whose work happens on update. */
export function noopScript(message: string): string {
  return `printf '[router] %s\\n' ${q(message)} >&2`;
}

/**
 * Applies a changed configuration safely: try mode, health checks inside the try window, then a confirming
 * apply. On failure nothing is confirmed, the node reverts by itself and the script exits non-zero.
 */
export function applyTryScript(t: NodeTarget, tryTimeout: number): string {
  const margin = tryMarginSeconds(tryTimeout);
  const budget = tryTimeout - margin;
  return [
    prelude(t, true),
    checkFunctions(t),
    `TRY_TIMEOUT=${tryTimeout}`,
    'log "trying the new configuration (Talos reverts it by itself after ${TRY_TIMEOUT}s unless it is confirmed)"',
    "start=$(date +%s)",
    'if ! tc apply-config --mode=try --timeout "${TRY_TIMEOUT}s" --file "$work/config.yaml" >"$work/apply.log" 2>&1; then',
    "  sed 's/^/  | /' \"$work/apply.log\" >&2",
    '  log "the node refused to try this configuration (a change that needs a reboot cannot be tried); nothing was changed"',
    "  exit 1",
    "fi",
    `if ! run_checks ${budget}; then`,
    '  log "health checks failed:${failed}. The configuration is NOT confirmed: the node reverts to its previous configuration by itself within ${TRY_TIMEOUT}s of the try."',
    `  wait_left=$(( start + TRY_TIMEOUT + ${Math.max(margin, 1)} - $(date +%s) ))`,
    '  if (( wait_left > 0 )); then sleep "$wait_left"; fi',
    '  if retry_until "$HEALTH_TIMEOUT" "node back on its previous configuration" tc version; then',
    '    log "the node reverted and answers again; this update failed and changed nothing"',
    "  else",
    '    log "the node did not answer after the revert window; check it on its console"',
    "  fi",
    "  exit 1",
    "fi",
    'log "all checks passed; confirming the configuration"',
    'tc apply-config --mode=no-reboot --file "$work/config.yaml" >&2',
    'log "configuration confirmed"',
  ].join("\n");
}

/** Upgrades Talos to a new installer image (A/B: a failed boot falls back to the previous system), then checks. */
export function upgradeScript(t: NodeTarget, image: string): string {
  return [
    prelude(t, false),
    checkFunctions(t),
    `IMAGE=${q(image)}`,
    'log "upgrading the node to $IMAGE"',
    'tc upgrade --image "$IMAGE" --wait --timeout "${HEALTH_TIMEOUT}s" >&2',
    'if ! run_checks "$HEALTH_TIMEOUT"; then',
    '  log "the node runs $IMAGE but health checks failed:${failed}; roll back with: talosctl rollback --nodes $NODE"',
    "  exit 1",
    "fi",
    'log "upgrade to $IMAGE healthy"',
  ].join("\n");
}

/** Final gate once the fabric is installed: the whole cluster must be healthy. */
export function healthScript(t: NodeTarget): string {
  return [
    prelude(t, false),
    checkFunctions(t),
    'if ! run_checks "$HEALTH_TIMEOUT"; then log "the router is not healthy:${failed}"; exit 1; fi',
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
    "tc reset --graceful=false --reboot --wipe-mode all >&2",
  ].join("\n");
}
