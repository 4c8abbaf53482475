/**
 * The Talos secrets bundle (the material `talosctl gen secrets` would produce) and how the machine config
 * consumes it. Values are either real text (from Pulumi secrets, inside an `apply`) or `Redacted` placeholders,
 * which is how the offline render and `pulumi preview` show the configuration without any secret in it.
 */

/** Stands in for a secret value in rendered text. */
export class Redacted {
  constructor(readonly label: string) {}
  toString(): string {
    return `[secret:${this.label}]`;
  }
}

export type SecretText = string | Redacted;

/** A CA: certificate and key, both PEM (not base64). */
export interface CaPair {
  crt: SecretText;
  key: SecretText;
}

/** Everything secret the machine config embeds. Field names follow Talos' secrets bundle. */
export interface TalosSecrets {
  /** 32 random bytes, standard base64 (cluster.id). */
  clusterId: SecretText;
  /** 32 random bytes, standard base64 (cluster.secret). */
  clusterSecret: SecretText;
  /** `[a-z0-9]{6}.[a-z0-9]{16}` (secrets.bootstraptoken). */
  bootstrapToken: SecretText;
  /** 32 random bytes, standard base64 (secrets.secretboxencryptionsecret). */
  secretboxEncryptionSecret: SecretText;
  /** `[a-z0-9]{6}.[a-z0-9]{16}` (trustdinfo.token). */
  trustdToken: SecretText;
  /** Talos API CA: Ed25519, key in Talos' "ED25519 PRIVATE KEY" PEM form. */
  os: CaPair;
  /** etcd CA: ECDSA P-256. */
  etcd: CaPair;
  /** Kubernetes CA: ECDSA P-256. */
  k8s: CaPair;
  /** Front-proxy (aggregator) CA: ECDSA P-256. */
  k8sAggregator: CaPair;
  /** Service-account signing key: ECDSA P-256, "EC PRIVATE KEY" PEM. */
  k8sServiceAccountKey: SecretText;
}

/** A bundle of placeholders: what the offline render and previews show. */
export function redactedSecrets(): TalosSecrets {
  const pair = (n: string): CaPair => ({ crt: new Redacted(`${n}.crt`), key: new Redacted(`${n}.key`) });
  return {
    clusterId: new Redacted("cluster.id"),
    clusterSecret: new Redacted("cluster.secret"),
    bootstrapToken: new Redacted("secrets.bootstraptoken"),
    secretboxEncryptionSecret: new Redacted("secrets.secretboxencryptionsecret"),
    trustdToken: new Redacted("trustdinfo.token"),
    os: pair("certs.os"),
    etcd: pair("certs.etcd"),
    k8s: pair("certs.k8s"),
    k8sAggregator: pair("certs.k8saggregator"),
    k8sServiceAccountKey: new Redacted("certs.k8sserviceaccount.key"),
  };
}

/** Base64 of a PEM, as the v1alpha1 document embeds certificates and keys; placeholders stay readable. */
export function b64(v: SecretText): string {
  return v instanceof Redacted ? v.toString() : Buffer.from(v, "utf8").toString("base64");
}

/** Plain text of a value; placeholders print as `[secret:label]`. */
export function text(v: SecretText): string {
  return v instanceof Redacted ? v.toString() : v;
}

/**
 * Talos keeps Ed25519 keys as PKCS#8 DER under the PEM label "ED25519 PRIVATE KEY"; OpenSSL-style tools (and
 * the tls provider) label the same bytes "PRIVATE KEY". Only the label changes.
 */
export function talosEd25519Pem(pkcs8Pem: string): string {
  return pkcs8Pem
    .replace("-----BEGIN PRIVATE KEY-----", "-----BEGIN ED25519 PRIVATE KEY-----")
    .replace("-----END PRIVATE KEY-----", "-----END ED25519 PRIVATE KEY-----");
}

/** Bootstrap/trustd token form: six and sixteen characters of [a-z0-9]. */
export const TOKEN_PATTERN = /^[a-z0-9]{6}\.[a-z0-9]{16}$/;
