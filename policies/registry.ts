/**
 * The router's policy pack: every policy, resource and stack (intent), with its enforcement level. Adding a
 * policy is a new file under policies/resource or policies/intent and one line here. Pure: policies/index.ts
 * serves this list as a CrossGuard pack; the offline render (policies/evaluate.ts) and the tests use it directly.
 */
import type { Policies } from "@pulumi/policy";
import { imagesPinnedByDigest } from "./resource/images";
import { capabilitiesAllowList, noPrivilegedPods } from "./resource/pods";
import { hostPathsUnderStateDir } from "./resource/host-paths";
import { noSecretInPlainInput } from "./resource/secrets";
import { talosChangesThroughTry } from "./resource/talos-apply";
import { managementKeepsApis } from "./intent/management";
import { wanAcceptsOnlyForwards } from "./intent/wan";
import { untrustedZonesNotAnyToAny } from "./intent/untrusted";
import { routerDnsNtpServed } from "./intent/served";
import { forwardTargetsAcceptingZones } from "./intent/forwards";
import { idsCoversRequiredPairs } from "./intent/ids";
import { observabilityForOperatorsOnly } from "./intent/observability";
import { ospfAuthenticatedWhereClientsAre } from "./intent/ospf";

export const PACK_NAME = "edge-router";

export const policies: Policies = [
  imagesPinnedByDigest(),
  noPrivilegedPods(),
  capabilitiesAllowList(),
  hostPathsUnderStateDir(),
  noSecretInPlainInput(),
  talosChangesThroughTry(),
  managementKeepsApis(),
  wanAcceptsOnlyForwards(),
  untrustedZonesNotAnyToAny(),
  routerDnsNtpServed(),
  forwardTargetsAcceptingZones(),
  idsCoversRequiredPairs(),
  observabilityForOperatorsOnly(),
  ospfAuthenticatedWhereClientsAre(),
];
