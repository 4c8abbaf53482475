/**
 * No secret in a plain input. The policy SDK hands policies every value unwrapped, secret or not, so the check
 * is by content and place: outside the few inputs that carry secrets by design (a command's stdin and
 * environment, the Kubernetes provider's kubeconfig, a Kubernetes Secret's data, the tls and random resources
 * that make them — all Pulumi secrets, which the offline render and the canary test prove), no input may hold
 * what secret material looks like: a PEM private key (plain or base64-armoured, as kubeconfigs and Secrets carry
 * them), a kubeconfig's client key, or a Talos/Kubernetes bootstrap token.
 */
import type { EnforcementLevel, ResourceValidationPolicy } from "@pulumi/policy";
import { walkStrings } from "../lib";

/** Type → top-level inputs that carry secrets by design (marked secret by the program). `*`: all of them. */
export const SECRET_CARRIERS: Record<string, string[]> = {
  "command:local:Command": ["stdin", "environment"],
  "pulumi:providers:kubernetes": ["kubeconfig"],
  "kubernetes:core/v1:Secret": ["data", "stringData"],
};
const GENERATORS = /^(tls|random):/;

const PATTERNS: [RegExp, string][] = [
  [/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/, "a PEM private key"],
  [/client-key-data:\s*[A-Za-z0-9+/=]{16,}/, "a kubeconfig client key"],
  [/(?<![a-z0-9])[a-z0-9]{6}\.[a-z0-9]{16}(?![a-z0-9])/, "a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})"],
];

/** What secret material `s` holds, if any. */
export function secretMaterial(s: string): string | undefined {
  for (const [re, what] of PATTERNS) if (re.test(s)) return what;
  // base64 of "-----BEGIN " starts every armoured key; decode a window to see whether it is a private one.
  for (const m of s.matchAll(/LS0tLS1CRUdJTi[A-Za-z0-9+/]{16,}={0,2}/g))
    if (/PRIVATE KEY/.test(Buffer.from(m[0].slice(0, 64), "base64").toString("latin1")))
      return "a base64-encoded PEM private key";
  return undefined;
}

export function noSecretInPlainInput(enforcementLevel: EnforcementLevel = "mandatory"): ResourceValidationPolicy {
  return {
    name: "no-secret-in-plain-input",
    description: "Secret material appears only in the inputs that carry secrets by design (and are Pulumi secrets).",
    enforcementLevel,
    validateResource: (args, report) => {
      if (GENERATORS.test(args.type)) return;
      const carriers = SECRET_CARRIERS[args.type] ?? [];
      for (const key of Object.keys(args.props)) {
        if (carriers.includes(key)) continue;
        let value: unknown;
        try {
          value = args.props[key];
        } catch {
          continue; // unknown during a preview: nothing to see yet
        }
        walkStrings(
          value,
          (path, s) => {
            const what = secretMaterial(s);
            if (what)
              report(
                `${args.type} ${args.name}: input ${path} holds ${what} in plain (allowed: secrets only as Pulumi secrets in ${carriers.length ? carriers.join(", ") : "a command's stdin or environment"}, placeholders everywhere else)`,
              );
          },
          undefined,
          key,
        );
      }
    },
  };
}
