/** Talos' own secrets-bundle test fixture (test-only keys), in the bundle's real format. */
import { readFileSync } from "node:fs";
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
