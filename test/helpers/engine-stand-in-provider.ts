/**
 * A stand-in for a resource provider plugin the Go module proxy does not serve at the version the program pins
 * (see tools/README.md), so the real Pulumi engine can preview the program. It is a fake: it models only what
 * a provider does in the preview of resources that do not exist yet, following the provider protocol
 * (pulumi/pulumi proto/pulumi/provider.proto and sdk/go/common/resource/plugin/provider_plugin.go):
 *  - CheckConfig/DiffConfig are not implemented, which the engine reads as "configuration accepted unchanged";
 *  - Configure accepts secrets and does not support preview, so the engine never asks for planned outputs and
 *    every output of a new resource is unknown in the preview — as the real providers report a generated key,
 *    a random value or a command's stdout before it exists;
 *  - Check returns the inputs unchanged; the real providers also validate them and fill in defaults, which this
 *    stand-in does not (a preview with it proves nothing about provider-side validation);
 *  - everything that would act (Create, Update, Delete, Read, Invoke) fails loudly, so a `pulumi up` with a
 *    stand-in can never pass for one with the real provider.
 *
 * Run by the plugin shim engine.ts writes: `node --import tsx engine-stand-in-provider.ts NAME VERSION [engine]`.
 */
import * as provider from "@pulumi/pulumi/provider";

const [name, version, ...engineArgs] = process.argv.slice(2);
if (!name || !version) {
  console.error("usage: engine-stand-in-provider.ts NAME VERSION [ENGINE_ADDRESS]");
  process.exit(2);
}

function refuse(what: string): never {
  throw new Error(
    `${name} ${version} is a preview stand-in (the real plugin is not built here): it cannot ${what}. ` +
      "Build the real provider plugin to run this operation.",
  );
}

const standIn: provider.Provider = {
  version,
  async check(_urn, _olds, news) {
    return { inputs: news };
  },
  async diff() {
    return { changes: false };
  },
  async create(urn) {
    refuse(`create ${urn}`);
  },
  async read(id) {
    refuse(`read ${id}`);
  },
  async update(id) {
    refuse(`update ${id}`);
  },
  async delete(id) {
    refuse(`delete ${id}`);
  },
  async invoke(token) {
    refuse(`invoke ${token}`);
  },
};

void provider.main(standIn, engineArgs);
