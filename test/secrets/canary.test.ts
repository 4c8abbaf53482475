/**
 * Canary values planted in every secret input — each generated key, token and random value, and every secret
 * config key — must never appear in rendered files, in stack outputs that are not secret, or in command text,
 * while still reaching the node (proving the test would see them if they leaked).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { generateKeyPairSync } from "node:crypto";
import { renderStack, type RenderResult } from "../../cli/render";
import type { OutputGenerator } from "../../cli/mock-runtime";
import { devStack } from "../helpers/stacks";
import { talosEd25519Pem } from "../../components/talos-node/secrets";

const SIG = "4dabf18193072939515e22adb298388d";
const unwrap = (v: unknown): unknown =>
  v && typeof v === "object" && (v as Record<string, unknown>)[SIG] ? (v as { value: unknown }).value : v;

const canaries = new Set<string>();
const plant = (label: string) => {
  const c = `CANARY${label.replace(/[^a-z0-9]/gi, "")}x${Math.random().toString(36).slice(2, 10)}`;
  canaries.add(c);
  return c;
};

/** Generated outputs: each secret field is a canary (wrapped in PEM armour where the program expects a key). */
const canaryOutputs: OutputGenerator = (type, name) => {
  switch (type) {
    case "tls:index/privateKey:PrivateKey": {
      const c = plant(`${name}key`);
      return {
        privateKeyPem: `-----BEGIN PRIVATE KEY-----\n${c}\n-----END PRIVATE KEY-----\n`,
        publicKeyPem: "public",
      };
    }
    case "random:index/randomPassword:RandomPassword":
      return { result: plant(`${name}str`) };
    case "random:index/randomBytes:RandomBytes":
      return { base64: plant(`${name}b64`), hex: plant(`${name}hex`) };
    case "tls:index/selfSignedCert:SelfSignedCert":
    case "tls:index/locallySignedCert:LocallySignedCert":
      return { certPem: `-----BEGIN CERTIFICATE-----\n${name}\n-----END CERTIFICATE-----\n` };
    case "tls:index/certRequest:CertRequest":
      return { certRequestPem: "csr" };
    case "command:local:Command":
      return name.endsWith("-kubeconfig") ? { stdout: `apiVersion: v1\n# ${plant("kubeconfig")}\n` } : { stdout: "" };
    default:
      return {};
  }
};

let result: RenderResult;
let registryPassword: string;
const installInputs: Record<string, unknown>[] = [];

beforeAll(async () => {
  registryPassword = plant("registrypassword");
  const capture: OutputGenerator = (type, name, inputs) => {
    if (name === "lab-node-install") installInputs.push(inputs);
    return canaryOutputs(type, name, inputs);
  };
  result = await renderStack({ stack: "dev", config: devStack(undefined, { registryPassword }), outputs: capture });
});

function leaks(text: string): string[] {
  return [...canaries].filter((c) => text.includes(c));
}

describe("secrets", () => {
  it("reach the node's machine configuration (so the checks below can see a leak)", () => {
    // 6 private keys, 4 token halves, 3 × 2 random-byte encodings, the kubeconfig and the registry password.
    expect(canaries.size).toBeGreaterThanOrEqual(18);
    const stdin = String(unwrap(installInputs[0].stdin));
    expect(stdin).toContain(registryPassword);
    expect(leaks(stdin).length).toBeGreaterThanOrEqual(10);
    const env = unwrap(installInputs[0].environment) as Record<string, string>;
    expect(Buffer.from(env.ROUTER_TALOSCONFIG.split("key: ")[1].trim(), "base64").toString()).toMatch(/CANARY/);
  });

  it("never appear in any rendered file", () => {
    for (const [path, content] of result.files) expect(leaks(content), path).toEqual([]);
  });

  it("never appear in stack outputs that are not secret", () => {
    const outputs = result.run.stackOutputs;
    expect(outputs.kubeconfig).toBe("[secret]");
    expect(outputs.talosconfig).toBe("[secret]");
    expect(leaks(JSON.stringify(outputs))).toEqual([]);
  });

  it("never appear in command text", () => {
    const commands = result.run.resources.filter((r) => r.type === "command:local:Command");
    expect(commands.length).toBeGreaterThanOrEqual(6);
    for (const c of commands)
      for (const field of ["create", "update", "delete"])
        expect(leaks(String(c.inputs[field] ?? "")), `${c.name}.${field}`).toEqual([]);
  });

  it("never appear in any recorded resource input or component output", () => {
    for (const r of result.run.resources) expect(leaks(JSON.stringify([r.inputs, r.outputs])), r.name).toEqual([]);
  });

  describe("the OSPF keys (router:ospfKey, router:ospfNextKey)", () => {
    let ospf: RenderResult;
    let key: string;
    let next: string;
    const birdSecrets: Record<string, unknown>[] = [];
    beforeAll(async () => {
      key = `${plant("ospfkey")}-16+`;
      next = `${plant("ospfnextkey")}-16+`;
      const capture: OutputGenerator = (type, name, inputs) => {
        if (type === "kubernetes:core/v1:Secret" && name.endsWith("bird-secrets")) birdSecrets.push(inputs);
        return canaryOutputs(type, name, inputs);
      };
      const config = devStack(
        (raw) => {
          raw.routing = {
            ospf: { routerId: "10.10.0.1", segments: ["servers"], authentication: { next: { keyId: 2 } } },
          };
        },
        { registryPassword: plant("registrypassword"), ospfKey: key, ospfNextKey: next },
      );
      ospf = await renderStack({ stack: "dev", config, outputs: capture });
    });

    it("reaches the bird Secret's key file, and only as a Pulumi secret", () => {
      expect(birdSecrets).toHaveLength(1);
      const data = birdSecrets[0].stringData as Record<string, unknown>;
      expect(data[SIG], "stringData is a Pulumi secret").toBeTruthy();
      expect((unwrap(data) as Record<string, string>)["ospf-keys.conf"]).toBe(
        `password "${key}" { id 1; algorithm hmac sha256; };\n` +
          `password "${next}" { id 2; algorithm hmac sha256; generate to "1971-01-01 00:00:00"; };\n`,
      );
    });

    it("is in place before the bird pod, which depends on it", () => {
      const secret = ospf.run.resources.find(
        (r) => r.type === "kubernetes:core/v1:Secret" && r.name.endsWith("bird-secrets"),
      )!;
      const bird = ospf.run.resources.find(
        (r) => r.type === "kubernetes:apps/v1:DaemonSet" && r.name.endsWith("-bird"),
      )!;
      expect(bird.dependencies).toContain(secret.urn);
      expect(secret.dependencies).not.toContain(bird.urn);
    });

    it("never appears in a rendered file, a plain output, command text or another resource's input", () => {
      expect(ospf.files.get("services/bird.conf")).toContain('include "/run/bird/ospf-keys.conf";');
      for (const k of [key, next]) {
        for (const [path, content] of ospf.files) expect(content.includes(k), path).toBe(false);
        expect(JSON.stringify(ospf.run.stackOutputs).includes(k)).toBe(false);
        for (const r of ospf.run.resources) {
          const text = JSON.stringify([r.inputs, r.outputs]);
          if (r.type === "kubernetes:core/v1:Secret" && r.name.endsWith("bird-secrets")) continue;
          expect(text.includes(k), r.name).toBe(false);
        }
      }
    });
  });

  it("keep Talos' key format: the OS CA key is relabelled for Talos, not altered", () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const talos = talosEd25519Pem(pem);
    expect(talos.split("\n")[0]).toBe("-----BEGIN ED25519 PRIVATE KEY-----");
    expect(talos.replace(/ED25519 PRIVATE KEY/g, "PRIVATE KEY")).toBe(pem);
  });
});
