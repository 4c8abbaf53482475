/**
 * A model of pulumi-tls (the Terraform tls provider bridged; the Go module proxy does not serve it, see
 * tools/README.md) for the resources the node part creates: tls:index/privateKey:PrivateKey,
 * tls:index/selfSignedCert:SelfSignedCert, tls:index/certRequest:CertRequest and
 * tls:index/locallySignedCert:LocallySignedCert. Keys come from node:crypto, certificates and requests from the
 * openssl CLI, so they are real X.509 a TLS stack or Talos accepts. It follows hashicorp/terraform-provider-tls
 * internal/provider: resource_private_key.go and common_key.go (key formats: PKCS#1/SEC1/PKCS#8 PEM, OpenSSH,
 * fingerprints; ecdsa_curve defaults to P224, rsa_bits to 2048), common_cert.go (allowed_uses → key usages,
 * basicConstraints for CAs, a random 128-bit serial as the id, validity from now, ready_for_renewal once
 * `early_renewal_hours` before the end) and the schemas' sensitivity (private keys are secret outputs; the
 * bridge marks them so). Every input change replaces the resource except `early_renewal_hours`.
 * Not modelled: subject fields beyond those a certificate subject names here (refused loudly), dns_names/
 * ip_addresses/uris, and validity periods that are not whole days (openssl 3.0 takes days).
 */
import { execFileSync } from "node:child_process";
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  X509Certificate,
  type KeyObject,
} from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as provider from "@pulumi/pulumi/provider";
import { changedKeys, plain, secret, urnType, type Props } from "./wire";

const CURVES: Record<string, string> = { P224: "P-224", P256: "P-256", P384: "P-384", P521: "P-521" };
const SSH_CURVE: Record<string, string> = { "P-256": "nistp256", "P-384": "nistp384", "P-521": "nistp521" };

/** SSH wire string: uint32 length and the bytes. */
function sshString(b: Buffer | string): Buffer {
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(buf.length);
  return Buffer.concat([len, buf]);
}

/** The OpenSSH public key blob and the private part of the openssh-key-v1 record, or undefined (P-224: none). */
function sshParts(priv: KeyObject): { pub: Buffer; priv: Buffer } | undefined {
  const jwk = priv.export({ format: "jwk" });
  const b = (s?: string) => Buffer.from(s!, "base64url");
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") {
    const pub = sshString("ssh-ed25519");
    const blob = Buffer.concat([pub, sshString(b(jwk.x))]);
    return { pub: blob, priv: Buffer.concat([blob, sshString(Buffer.concat([b(jwk.d), b(jwk.x)]))]) };
  }
  if (jwk.kty === "EC" && SSH_CURVE[jwk.crv!]) {
    const curve = SSH_CURVE[jwk.crv!]!;
    const point = Buffer.concat([Buffer.from([4]), b(jwk.x), b(jwk.y)]);
    const blob = Buffer.concat([sshString(`ecdsa-sha2-${curve}`), sshString(curve), sshString(point)]);
    const d = b(jwk.d);
    const mpint = d[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), d]) : d;
    return { pub: blob, priv: Buffer.concat([blob, sshString(mpint)]) };
  }
  return undefined;
}

/** An unencrypted openssh-key-v1 PEM (PROTOCOL.key in OpenSSH) for the key. */
function opensshPrivate(parts: { pub: Buffer; priv: Buffer }): string {
  const check = randomBytes(4);
  let body = Buffer.concat([check, check, parts.priv, sshString("")]);
  const pad = (8 - (body.length % 8)) % 8;
  body = Buffer.concat([body, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const all = Buffer.concat([
    Buffer.from("openssh-key-v1\0"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    Buffer.from([0, 0, 0, 1]),
    sshString(parts.pub),
    sshString(body),
  ]);
  const lines = all
    .toString("base64")
    .match(/.{1,70}/g)!
    .join("\n");
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

function privateKey(inputs: { algorithm: string; ecdsaCurve?: string; rsaBits?: number }): Props {
  const { privateKey: priv, publicKey: pub } =
    inputs.algorithm === "ED25519"
      ? generateKeyPairSync("ed25519")
      : inputs.algorithm === "ECDSA"
        ? generateKeyPairSync("ec", { namedCurve: CURVES[inputs.ecdsaCurve ?? "P224"]! })
        : inputs.algorithm === "RSA"
          ? generateKeyPairSync("rsa", { modulusLength: inputs.rsaBits ?? 2048 })
          : (() => {
              throw new Error(`tls PrivateKey: algorithm must be RSA, ECDSA or ED25519, not ${inputs.algorithm}`);
            })();
  const pkcs8 = priv.export({ format: "pem", type: "pkcs8" }) as string;
  const pem =
    inputs.algorithm === "ECDSA"
      ? (priv.export({ format: "pem", type: "sec1" }) as string)
      : inputs.algorithm === "RSA"
        ? (priv.export({ format: "pem", type: "pkcs1" }) as string)
        : pkcs8;
  const pubPem = pub.export({ format: "pem", type: "spki" }) as string;
  const ssh = sshParts(priv);
  const sshPub = ssh
    ? `${ssh.pub.subarray(4, 4 + ssh.pub.readUInt32BE(0)).toString()} ${ssh.pub.toString("base64")}\n`
    : "";
  return {
    id: createHash("sha1")
      .update(pub.export({ format: "der", type: "spki" }))
      .digest("hex"),
    privateKeyPem: secret(pem),
    privateKeyPemPkcs8: secret(pkcs8),
    privateKeyOpenssh: secret(ssh ? opensshPrivate(ssh) : ""),
    publicKeyPem: pubPem,
    publicKeyOpenssh: sshPub,
    publicKeyFingerprintMd5: ssh ? createHash("md5").update(ssh.pub).digest("hex").match(/../g)!.join(":") : "",
    publicKeyFingerprintSha256: ssh
      ? `SHA256:${createHash("sha256").update(ssh.pub).digest("base64").replace(/=+$/, "")}`
      : "",
  };
}

interface Subject {
  commonName?: string;
  organization?: string;
  organizationalUnit?: string;
  country?: string;
  province?: string;
  locality?: string;
}
const SUBJECT_FIELDS: Record<string, string> = {
  country: "C",
  province: "ST",
  locality: "L",
  organization: "O",
  organizationalUnit: "OU",
  commonName: "CN",
};

function subjectArg(subject: Subject = {}): string {
  const extra = Object.keys(subject).filter((k) => !(k in SUBJECT_FIELDS));
  if (extra.length) throw new Error(`tls: subject fields ${extra.join(", ")} are not modelled by this stand-in`);
  const esc = (s: string) => s.replace(/[/\\]/g, (c) => `\\${c}`);
  const parts = Object.entries(SUBJECT_FIELDS)
    .filter(([k]) => subject[k as keyof Subject] !== undefined)
    .map(([k, a]) => `/${a}=${esc(subject[k as keyof Subject]!)}`);
  return parts.join("") || "/";
}

const KEY_USAGES: Record<string, string> = {
  digital_signature: "digitalSignature",
  content_commitment: "nonRepudiation",
  key_encipherment: "keyEncipherment",
  data_encipherment: "dataEncipherment",
  key_agreement: "keyAgreement",
  cert_signing: "keyCertSign",
  crl_signing: "cRLSign",
  encipher_only: "encipherOnly",
  decipher_only: "decipherOnly",
};
const EXT_USAGES: Record<string, string> = {
  server_auth: "serverAuth",
  client_auth: "clientAuth",
  code_signing: "codeSigning",
  email_protection: "emailProtection",
  timestamping: "timeStamping",
  ocsp_signing: "OCSPSigning",
};

interface CertInputs {
  validityPeriodHours: number;
  earlyRenewalHours?: number;
  allowedUses: string[];
  isCaCertificate?: boolean;
}

/** The X.509v3 extensions (an openssl config section) for allowed uses and CA-ness. */
function extensions(inputs: CertInputs): string {
  const unknown = inputs.allowedUses.filter((u) => !(u in KEY_USAGES) && !(u in EXT_USAGES));
  if (unknown.length) throw new Error(`tls: allowed_uses ${unknown.join(", ")} are not valid`);
  const ku = inputs.allowedUses.filter((u) => u in KEY_USAGES).map((u) => KEY_USAGES[u]);
  const eku = inputs.allowedUses.filter((u) => u in EXT_USAGES).map((u) => EXT_USAGES[u]);
  return [
    `basicConstraints = critical, CA:${inputs.isCaCertificate ? "TRUE" : "FALSE"}`,
    ...(ku.length ? [`keyUsage = critical, ${ku.join(", ")}`] : []),
    ...(eku.length ? [`extendedKeyUsage = ${eku.join(", ")}`] : []),
    "subjectKeyIdentifier = none",
    "authorityKeyIdentifier = none",
    "",
  ].join("\n");
}

function days(hours: number): string {
  if (!Number.isInteger(hours) || hours <= 0 || hours % 24 !== 0)
    throw new Error(`tls: validity_period_hours ${hours} is not modelled (whole days only)`);
  return String(hours / 24);
}

/** Runs openssl with the secret key on stdin and files (not secret) in a private temporary directory. */
function openssl(args: (dir: string) => string[], key: string, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "engine-tls-"));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text, { mode: 0o600 });
    // Node's stdio pipes are socket pairs, which /dev/stdin cannot reopen: cat hands the key on through a pipe.
    return execFileSync("sh", ["-c", 'cat | openssl "$@"', "sh", ...args(dir)], {
      input: key,
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The certificate outputs common to both kinds, read back from the certificate itself. */
function certOutputs(certPem: string, inputs: CertInputs, keyAlgorithm: string): Props {
  const x = new X509Certificate(certPem);
  const start = new Date(x.validFrom);
  const end = new Date(x.validTo);
  return {
    id: BigInt(`0x${x.serialNumber}`).toString(),
    certPem,
    keyAlgorithm,
    validityStartTime: start.toISOString().replace(".000", ""),
    validityEndTime: end.toISOString().replace(".000", ""),
    readyForRenewal: readyForRenewal(end.getTime(), inputs.earlyRenewalHours ?? 0),
  };
}

function readyForRenewal(endMs: number, earlyHours: number): boolean {
  return Date.now() >= endMs - earlyHours * 3_600_000;
}

function algorithmOf(keyPem: string): string {
  const t = createPrivateKey(keyPem).asymmetricKeyType;
  return t === "ed25519" ? "ED25519" : t === "ec" ? "ECDSA" : "RSA";
}

const serial = () =>
  `0x${randomBytes(16)
    .toString("hex")
    .replace(/^[89a-f]/, "7")}`;

function selfSignedCert(inputs: CertInputs & { privateKeyPem: string; subject?: Subject }): Props {
  const certPem = openssl(
    (d) => [
      "req",
      "-x509",
      "-new",
      "-key",
      "/dev/stdin",
      "-subj",
      subjectArg(inputs.subject),
      "-days",
      days(inputs.validityPeriodHours),
      "-set_serial",
      serial(),
      "-config",
      join(d, "ext.cnf"),
      "-extensions",
      "v3",
    ],
    inputs.privateKeyPem,
    { "ext.cnf": `[req]\ndistinguished_name = dn\n[dn]\n[v3]\n${extensions(inputs)}` },
  );
  return certOutputs(certPem, inputs, algorithmOf(inputs.privateKeyPem));
}

function certRequest(inputs: { privateKeyPem: string; subject?: Subject }): Props {
  const pem = openssl(
    (d) => ["req", "-new", "-key", "/dev/stdin", "-subj", subjectArg(inputs.subject), "-config", join(d, "req.cnf")],
    inputs.privateKeyPem,
    { "req.cnf": "[req]\ndistinguished_name = dn\n[dn]\n" },
  );
  return {
    id: createHash("sha1").update(pem).digest("hex"),
    certRequestPem: pem,
    keyAlgorithm: algorithmOf(inputs.privateKeyPem),
  };
}

function locallySignedCert(
  inputs: CertInputs & { certRequestPem: string; caCertPem: string; caPrivateKeyPem: string },
): Props {
  const certPem = openssl(
    (d) => [
      "x509",
      "-req",
      "-in",
      join(d, "req.pem"),
      "-CA",
      join(d, "ca.pem"),
      "-CAkey",
      "/dev/stdin",
      "-set_serial",
      serial(),
      "-days",
      days(inputs.validityPeriodHours),
      "-extfile",
      join(d, "ext.cnf"),
    ],
    inputs.caPrivateKeyPem,
    { "req.pem": inputs.certRequestPem, "ca.pem": inputs.caCertPem, "ext.cnf": extensions(inputs) },
  );
  return {
    ...certOutputs(certPem, inputs, algorithmOf(inputs.caPrivateKeyPem)),
    caKeyAlgorithm: algorithmOf(inputs.caPrivateKeyPem),
  };
}

const RESOURCES: Record<string, { inputs: string[]; defaults: Props; make: (i: never) => Props }> = {
  "tls:index/privateKey:PrivateKey": {
    inputs: ["algorithm", "ecdsaCurve", "rsaBits"],
    defaults: { ecdsaCurve: "P224", rsaBits: 2048 },
    make: privateKey,
  },
  "tls:index/selfSignedCert:SelfSignedCert": {
    inputs: [
      "privateKeyPem",
      "subject",
      "validityPeriodHours",
      "allowedUses",
      "isCaCertificate",
      "earlyRenewalHours",
      "dnsNames",
      "ipAddresses",
      "uris",
      "setSubjectKeyId",
      "setAuthorityKeyId",
    ],
    defaults: { earlyRenewalHours: 0, isCaCertificate: false },
    make: selfSignedCert,
  },
  "tls:index/certRequest:CertRequest": {
    inputs: ["privateKeyPem", "subject", "dnsNames", "ipAddresses", "uris"],
    defaults: {},
    make: certRequest,
  },
  "tls:index/locallySignedCert:LocallySignedCert": {
    inputs: [
      "certRequestPem",
      "caCertPem",
      "caPrivateKeyPem",
      "validityPeriodHours",
      "allowedUses",
      "isCaCertificate",
      "earlyRenewalHours",
      "setSubjectKeyId",
    ],
    defaults: { earlyRenewalHours: 0, isCaCertificate: false },
    make: locallySignedCert,
  },
};

function kind(urn: string) {
  const r = RESOURCES[urnType(urn)];
  if (!r) throw new Error(`this stand-in of pulumi-tls does not model ${urnType(urn)}`);
  return r;
}

/** The provider, as the `tls` plugin at `version`. */
export function tlsProvider(version: string): provider.Provider {
  return {
    version,
    async check(urn, _olds, news: Props) {
      const r = kind(urn);
      for (const k of ["dnsNames", "ipAddresses", "uris"])
        if (news[k] !== undefined)
          return { inputs: news, failures: [{ property: k, reason: `${k} is not modelled by this stand-in` }] };
      return { inputs: { ...r.defaults, ...news } };
    },
    async diff(_id, urn, olds: Props, news: Props) {
      const changed = changedKeys(olds, news, kind(urn).inputs);
      const replaces = changed.filter((k) => k !== "earlyRenewalHours");
      // common_cert.go: a certificate inside its early-renewal window is replaced.
      if (
        typeof olds.validityEndTime === "string" &&
        readyForRenewal(Date.parse(olds.validityEndTime), Number(plain(news.earlyRenewalHours) ?? 0))
      )
        replaces.push("readyForRenewal");
      return { changes: changed.length > 0 || replaces.length > 0, replaces };
    },
    async create(urn, news: Props) {
      const outs = kind(urn).make(plain(news) as never);
      const { id, ...rest } = outs;
      // Inputs echo into the state as they came (a secret private key input stays secret).
      return { id: String(id), outs: { ...news, ...rest } };
    },
    async update(_id, urn, olds: Props, news: Props) {
      kind(urn);
      return { outs: { ...olds, ...news, readyForRenewal: olds.readyForRenewal } };
    },
    async delete() {},
  };
}
