/**
 * Validates Talos machine-config streams against the vendored Talos 1.14 JSON Schema
 * (test/fixtures/talos/config.schema.v1.14.json, see test/fixtures/README.md).
 *
 * The upstream schema has known defects; they are patched here and only here:
 *  - the UnattendedInstallConfig document is listed with kind enum `UnattendedInstall`, while Talos registers
 *    and documents it as `UnattendedInstallConfig` (pkg/machinery/config/types/runtime/unattended_install.go);
 *  - KubeSpan endpoints are listed as `KubeSpanEndpoints`, while the Go kind is `KubeSpanEndpointsConfig`;
 *  - `v1alpha1.Endpoint` (machine.logging destinations) is listed as an object with no properties, while Talos
 *    reads and writes it as one URL string (pkg/machinery/config/types/v1alpha1/v1alpha1_types.go, Endpoint's
 *    UnmarshalYAML/MarshalYAML: `endpoint: tcp://127.0.0.1:6050/`).
 *  - RoutingRuleConfig's `action` is listed as an integer, while Talos decodes it by name and refuses a number
 *    (nethelpers.RoutingRuleAction, an enumer text type: unicast, blackhole, unreachable, prohibit).
 * Nothing else is changed.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020";
import { parseAllDocuments } from "yaml";

type Json = Record<string, unknown>;

const KIND_FIXES: Record<string, string> = {
  UnattendedInstall: "UnattendedInstallConfig",
  KubeSpanEndpoints: "KubeSpanEndpointsConfig",
};

function loadPatchedSchema(): Json {
  const schema = JSON.parse(
    readFileSync(join(__dirname, "../fixtures/talos/config.schema.v1.14.json"), "utf8"),
  ) as Json;
  const defs = schema.$defs as Record<string, Json>;
  for (const def of Object.values(defs)) {
    const kind = (def.properties as Json | undefined)?.kind as { enum?: string[] } | undefined;
    if (kind?.enum) kind.enum = kind.enum.map((k) => KIND_FIXES[k] ?? k);
  }
  defs["v1alpha1.Endpoint"] = {
    type: "string",
    pattern: "^[a-z]+://",
    description: "Endpoint represents the endpoint URL parsed out of the machine config.",
  };
  const ruleAction = (defs["network.RoutingRuleConfigV1Alpha1"].properties as Json).action as Json;
  delete ruleAction.type;
  ruleAction.enum = ["unicast", "blackhole", "unreachable", "prohibit"];
  return schema;
}

export interface TalosSchemaValidator {
  /** Every problem of a YAML stream, as `doc N (Kind/name): /path message`; empty when valid. */
  validateStream(stream: string): string[];
  /** Kinds the schema knows. */
  kinds: Set<string>;
}

let cached: TalosSchemaValidator | undefined;

export function talosSchema(): TalosSchemaValidator {
  if (cached) return cached;
  const schema = loadPatchedSchema();
  const defs = schema.$defs as Record<string, Json>;
  const byKind = new Map<string, string>();
  for (const [name, def] of Object.entries(defs)) {
    const kind = (def.properties as Json | undefined)?.kind as { enum?: string[] } | undefined;
    for (const k of kind?.enum ?? []) byKind.set(k, name);
  }
  const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false });
  ajv.addSchema(schema, "talos");
  const validators = new Map<string, ReturnType<typeof ajv.compile>>();
  const validatorFor = (defName: string) => {
    let v = validators.get(defName);
    if (!v) {
      v = ajv.compile({ $ref: `talos#/$defs/${defName}` });
      validators.set(defName, v);
    }
    return v;
  };
  cached = {
    kinds: new Set(byKind.keys()),
    validateStream(stream: string): string[] {
      const problems: string[] = [];
      parseAllDocuments(stream).forEach((d, i) => {
        if (d.errors.length) {
          problems.push(`doc ${i}: YAML error ${d.errors[0].message}`);
          return;
        }
        const obj = d.toJS() as Json | null;
        if (!obj) return;
        const defName =
          obj.version === "v1alpha1" && !("kind" in obj) ? "v1alpha1.Config" : byKind.get(String(obj.kind));
        const label = `doc ${i} (${String(obj.kind ?? "v1alpha1")}${obj.name ? `/${String(obj.name)}` : ""})`;
        if (!defName) {
          problems.push(`${label}: kind is not in the Talos 1.14 schema`);
          return;
        }
        const v = validatorFor(defName);
        if (!v(obj))
          for (const e of v.errors ?? [])
            problems.push(
              `${label}: ${e.instancePath || "/"} ${e.message}${e.params && "additionalProperty" in e.params ? ` (${String(e.params.additionalProperty)})` : ""}`,
            );
      });
      return problems;
    },
  };
  return cached;
}
