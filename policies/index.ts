/**
 * The CrossGuard entry: serves the router's policies (registry.ts) to the Pulumi engine over gRPC —
 * `pulumi preview --policy-pack policies`. Constructing the pack starts the server and prints its port, so
 * nothing else imports this file.
 */
import { PolicyPack } from "@pulumi/policy";
import { PACK_NAME, policies } from "./registry";

new PolicyPack(PACK_NAME, { policies, enforcementLevel: "mandatory" });
