/** Talos' own secrets-bundle test fixture (test-only keys), in the bundle's real format. */
import { readFileSync } from "node:fs";
import { placeholderOutputs, type OutputGenerator } from "../../cli/mock-runtime";
import { join } from "node:path";
import { parse } from "yaml";
import type { TalosSecrets } from "../../components/talos-node/secrets";

/** The fixture bundle with its PEMs decoded from base64, as the program hands secrets to the renderer. */
export function fixtureSecrets(): TalosSecrets {
  type Pair = { crt: string; key: string };
  const b = parse(readFileSync(join(__dirname, "../fixtures/talos/secrets-bundle-testdata.yaml"), "utf8")) as {
    cluster: { id: string; secret: string };
    secrets: { bootstraptoken: string; secretboxencryptionsecret: string };
    trustdinfo: { token: string };
    certs: { os: Pair; etcd: Pair; k8s: Pair; k8saggregator: Pair; k8sserviceaccount: { key: string } };
  };
  const pem = (s: string) => Buffer.from(s, "base64").toString("utf8");
  const pair = (p: Pair) => ({ crt: pem(p.crt), key: pem(p.key) });
  return {
    clusterId: b.cluster.id,
    clusterSecret: b.cluster.secret,
    bootstrapToken: b.secrets.bootstraptoken,
    secretboxEncryptionSecret: b.secrets.secretboxencryptionsecret,
    trustdToken: b.trustdinfo.token,
    os: pair(b.certs.os),
    etcd: pair(b.certs.etcd),
    k8s: pair(b.certs.k8s),
    k8sAggregator: pair(b.certs.k8saggregator),
    k8sServiceAccountKey: pem(b.certs.k8sserviceaccount.key),
  };
}

/** What the installer build prints under the fixture outputs: an image pinned by digest, as installerScript does. */
export const FIXTURE_INSTALLER_IMAGE = `registry.lab.home.arpa:5000/router/installer@sha256:${"5e".repeat(32)}`;

/** Pulumi wraps a secret input as `{ [SECRET_SIG]: …, value }` (the runtime's specialSigKey). */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** The plain value of a recorded input that may be a wrapped secret. */
export function unwrapSecret(v: unknown): unknown {
  return v && typeof v === "object" && SECRET_SIG in v ? (v as unknown as { value: unknown }).value : v;
}

/**
 * Provider outputs under the mock runtime that make the program's secrets bundle (components/talos-node/
 * secrets-bundle.ts, resources `<node>-<role>-ca-key`, `<node>-<role>-ca`, `<node>-<role>-id|secret`,
 * `<node>-<role>`) the fixture bundle, in the form each provider returns it: the tls provider labels an Ed25519
 * PKCS#8 key "PRIVATE KEY" (the program relabels it) and a P-256 key "EC PRIVATE KEY". Every other resource
 * gets the mock runtime's placeholders, except the installer build, which prints FIXTURE_INSTALLER_IMAGE. A role
 * this does not know throws, so a new secret in the program cannot silently stay a placeholder.
 */
/** The DNS stack's secret resources (components/dns-stack/index.ts). */
const DNS_SECRETS = /-dns-(tsig|ca-key|ca|tls-key)$/;

export function fixtureBundleOutputs(): OutputGenerator {
  const s = fixtureSecrets();
  const str = (v: unknown) => String(v);
  const [bootId, bootSecret] = str(s.bootstrapToken).split(".");
  const [trustdId, trustdSecret] = str(s.trustdToken).split(".");
  const cas: Record<string, { crt: unknown; key: unknown }> = {
    os: s.os,
    etcd: s.etcd,
    k8s: s.k8s,
    "k8s-aggregator": s.k8sAggregator,
  };
  const strings: Record<string, string> = {
    "bootstrap-token-id": bootId,
    "bootstrap-token-secret": bootSecret,
    "trustd-token-id": trustdId,
    "trustd-token-secret": trustdSecret,
  };
  const bytes: Record<string, string> = {
    "cluster-id": str(s.clusterId),
    "cluster-secret": str(s.clusterSecret),
    "secretbox-key": str(s.secretboxEncryptionSecret),
  };
  const pkcs8Label = (pem: string) => pem.replace(/ED25519 PRIVATE KEY/g, "PRIVATE KEY");
  const role = (name: string, table: Record<string, unknown>, suffix = "") => {
    const hit = Object.keys(table)
      .filter((r) => name.endsWith(`-${r}${suffix}`))
      .sort((a, b) => b.length - a.length)[0];
    if (hit === undefined) throw new Error(`fixtureBundleOutputs: no fixture for ${name}`);
    return hit;
  };
  return (type, name, inputs) => {
    const placeholders = placeholderOutputs(type, name, inputs);
    // The DNS stack's secrets (its TSIG key, the site's DNS CA and the DoT/DoH key) reach only its pods, never
    // the node: the mock runtime's placeholders.
    if (DNS_SECRETS.test(name)) return placeholders;
    switch (type) {
      case "tls:index/privateKey:PrivateKey":
        if (name.endsWith("-admin-key")) return placeholders;
        if (name.endsWith("-k8s-service-account-key"))
          return { ...placeholders, privateKeyPem: str(s.k8sServiceAccountKey) };
        return { ...placeholders, privateKeyPem: pkcs8Label(str(cas[role(name, cas, "-ca-key")].key)) };
      case "tls:index/selfSignedCert:SelfSignedCert":
        return { certPem: str(cas[role(name, cas, "-ca")].crt) };
      case "random:index/randomPassword:RandomPassword":
        return { result: strings[role(name, strings)] };
      case "random:index/randomBytes:RandomBytes":
        return { ...placeholders, base64: bytes[role(name, bytes)] };
      case "command:local:Command":
        return name.endsWith("-installer") ? { stdout: `${FIXTURE_INSTALLER_IMAGE}\n`, stderr: "" } : placeholders;
      default:
        return placeholders;
    }
  };
}
