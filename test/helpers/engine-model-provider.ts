/**
 * The resource plugins `pulumi up` of the node part runs with, where the Go module proxy does not serve the real
 * ones (tools/README.md): models of pulumi-command, pulumi-tls and pulumi-random that act as the real providers
 * do (engine-providers/*.ts, each citing the upstream sources it follows). Any other plugin name is refused.
 *
 * Run by the plugin shim engine.ts writes: `node --import tsx engine-model-provider.ts NAME VERSION [engine]`.
 */
import * as provider from "@pulumi/pulumi/provider";
import { commandProvider } from "./engine-providers/command";
import { randomProvider } from "./engine-providers/random";
import { tlsProvider } from "./engine-providers/tls";

const MODELS = { command: commandProvider, random: randomProvider, tls: tlsProvider } as const;

const [name, version, ...engineArgs] = process.argv.slice(2);
const model = MODELS[name as keyof typeof MODELS];
if (!model || !version) {
  console.error(`usage: engine-model-provider.ts ${Object.keys(MODELS).join("|")} VERSION [ENGINE_ADDRESS]`);
  process.exit(2);
}

void provider.main(model(version), engineArgs);
