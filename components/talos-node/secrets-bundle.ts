/**
 * Creates the Talos secrets bundle with @pulumi/tls and @pulumi/random, with Talos' key types: an Ed25519 OS CA,
 * ECDSA P-256 etcd / Kubernetes / aggregator CAs and service-account key, `[a-z0-9]{6}.[a-z0-9]{16}` tokens (RandomPassword) and
 * 32-byte base64 secrets. Generated once and kept in state as Pulumi secrets; every resource here is protected
 * unless the site allows wiping the router, since losing these keys means losing the router's management.
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import { talosEd25519Pem, type TalosSecrets } from "./secrets";

/** Ten years, as Talos generates its CAs. */
const CA_VALIDITY_HOURS = 87_600;
/** One year, as Talos generates the admin client certificate; renewed a month before expiry. */
const ADMIN_VALIDITY_HOURS = 8_760;
const ADMIN_EARLY_RENEWAL_HOURS = 720;

export interface SecretsBundle {
  /** The whole bundle, as a secret. */
  secrets: pulumi.Output<TalosSecrets>;
  /** Admin client certificate and key (PEM) and the OS CA certificate, for the talosconfig. */
  admin: pulumi.Output<{ caPem: string; crtPem: string; keyPem: string }>;
}

function ca(
  name: string,
  role: string,
  algorithm: "ED25519" | "ECDSA",
  subject: tls.types.input.SelfSignedCertSubject,
  opts: pulumi.CustomResourceOptions,
): { key: tls.PrivateKey; cert: tls.SelfSignedCert } {
  const key = new tls.PrivateKey(
    `${name}-${role}-ca-key`,
    algorithm === "ECDSA" ? { algorithm, ecdsaCurve: "P256" } : { algorithm },
    { ...opts, additionalSecretOutputs: ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"] },
  );
  const cert = new tls.SelfSignedCert(
    `${name}-${role}-ca`,
    {
      privateKeyPem: key.privateKeyPem,
      subject,
      isCaCertificate: true,
      validityPeriodHours: CA_VALIDITY_HOURS,
      allowedUses: ["cert_signing", "digital_signature", "key_encipherment", "server_auth", "client_auth"],
    },
    opts,
  );
  return { key, cert };
}

function token(name: string, role: string, opts: pulumi.CustomResourceOptions): pulumi.Output<string> {
  const part = (suffix: string, length: number) =>
    // RandomPassword, not RandomString: a RandomString's id is its result, and an id is stored in the state in
    // plaintext whatever is marked secret (pulumi/pulumi#8946); a RandomPassword's id is "none".
    new random.RandomPassword(
      `${name}-${role}-${suffix}`,
      { length, lower: true, upper: false, numeric: true, special: false },
      { ...opts, additionalSecretOutputs: ["result"] },
    ).result;
  return pulumi.secret(pulumi.interpolate`${part("id", 6)}.${part("secret", 16)}`);
}

function bytes32(name: string, role: string, opts: pulumi.CustomResourceOptions): pulumi.Output<string> {
  return pulumi.secret(
    new random.RandomBytes(`${name}-${role}`, { length: 32 }, { ...opts, additionalSecretOutputs: ["base64", "hex"] })
      .base64,
  );
}

/** Creates the bundle under `parent`; `protect` guards every key against deletion. */
export function createSecretsBundle(name: string, parent: pulumi.Resource, protect: boolean): SecretsBundle {
  const opts: pulumi.CustomResourceOptions = { parent, protect };
  const os = ca(name, "os", "ED25519", { organization: "talos" }, opts);
  const etcd = ca(name, "etcd", "ECDSA", { organization: "etcd" }, opts);
  const k8s = ca(name, "k8s", "ECDSA", { organization: "kubernetes" }, opts);
  const aggregator = ca(name, "k8s-aggregator", "ECDSA", { commonName: "front-proxy" }, opts);
  const serviceAccount = new tls.PrivateKey(
    `${name}-k8s-service-account-key`,
    { algorithm: "ECDSA", ecdsaCurve: "P256" },
    { ...opts, additionalSecretOutputs: ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"] },
  );

  const adminKey = new tls.PrivateKey(
    `${name}-admin-key`,
    { algorithm: "ED25519" },
    { parent, additionalSecretOutputs: ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"] },
  );
  const adminCsr = new tls.CertRequest(
    `${name}-admin-csr`,
    { privateKeyPem: adminKey.privateKeyPem, subject: { organization: "os:admin" } },
    { parent },
  );
  const adminCert = new tls.LocallySignedCert(
    `${name}-admin-cert`,
    {
      certRequestPem: adminCsr.certRequestPem,
      caPrivateKeyPem: os.key.privateKeyPem,
      caCertPem: os.cert.certPem,
      validityPeriodHours: ADMIN_VALIDITY_HOURS,
      earlyRenewalHours: ADMIN_EARLY_RENEWAL_HOURS,
      allowedUses: ["digital_signature", "client_auth"],
    },
    { parent },
  );

  const secrets = pulumi.secret(
    pulumi
      .all([
        bytes32(name, "cluster-id", opts),
        bytes32(name, "cluster-secret", opts),
        token(name, "bootstrap-token", opts),
        bytes32(name, "secretbox-key", opts),
        token(name, "trustd-token", opts),
        os.cert.certPem,
        os.key.privateKeyPem,
        etcd.cert.certPem,
        etcd.key.privateKeyPem,
        k8s.cert.certPem,
        k8s.key.privateKeyPem,
        aggregator.cert.certPem,
        aggregator.key.privateKeyPem,
        serviceAccount.privateKeyPem,
      ])
      .apply(
        ([
          clusterId,
          clusterSecret,
          bootstrapToken,
          secretbox,
          trustdToken,
          osCrt,
          osKey,
          etcdCrt,
          etcdKey,
          k8sCrt,
          k8sKey,
          aggCrt,
          aggKey,
          saKey,
        ]): TalosSecrets => ({
          clusterId,
          clusterSecret,
          bootstrapToken,
          secretboxEncryptionSecret: secretbox,
          trustdToken,
          os: { crt: osCrt, key: talosEd25519Pem(osKey) },
          etcd: { crt: etcdCrt, key: etcdKey },
          k8s: { crt: k8sCrt, key: k8sKey },
          k8sAggregator: { crt: aggCrt, key: aggKey },
          k8sServiceAccountKey: saKey,
        }),
      ),
  );
  const admin = pulumi.secret(
    pulumi
      .all([os.cert.certPem, adminCert.certPem, adminKey.privateKeyPem])
      .apply(([caPem, crtPem, keyPem]) => ({ caPem, crtPem, keyPem })),
  );
  return { secrets, admin };
}
