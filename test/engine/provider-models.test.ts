/**
 * The provider models the engine tier's `pulumi up` runs with (test/helpers/engine-providers/) behave as the real
 * providers do, checked without the engine: commands run with their inputs and fail with their output; keys and
 * certificates are real (openssl parses and verifies them); random values have the requested form; secret outputs
 * are marked secret.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { commandProvider } from "../helpers/engine-providers/command";
import { randomProvider } from "../helpers/engine-providers/random";
import { tlsProvider } from "../helpers/engine-providers/tls";
import { isSecret, plain, secret, type Props } from "../helpers/engine-providers/wire";
import { tempDir } from "../helpers/temp";

const urn = (type: string, name: string) => `urn:pulumi:dev::router::router:talos:TalosNode$${type}::${name}`;
const CMD = urn("command:local:Command", "c");

describe("the command:local:Command model", () => {
  const p = commandProvider("1.2.1");

  it("runs create with interpreter, environment, stdin and dir; trims one newline; marks output secret when an input is", async () => {
    const dir = tempDir("engine-cmd-");
    const inputs = (
      await p.check!(
        CMD,
        {},
        {
          create: 'printf "%s|%s|%s\\n\\n" "$FOO" "$(cat)" "$PWD"; echo err >&2',
          interpreter: ["/bin/bash", "-c"],
          environment: { FOO: "bar" },
          stdin: secret("from-stdin"),
          dir,
        },
      )
    ).inputs as Props;
    const r = await p.create!(CMD, inputs);
    expect(r.id).toMatch(/^c[0-9a-f]{16}$/);
    expect(isSecret(r.outs.stdout)).toBe(true);
    expect(plain(r.outs.stdout)).toBe(`bar|from-stdin|${dir}\n`);
    expect(plain(r.outs.stderr)).toBe("err");
    expect(isSecret(r.outs.stdin)).toBe(true);
    expect(r.outs.create).toBe(inputs.create);
  });

  it("fails a non-zero exit with the command and its output; update runs update (or create) with the previous output", async () => {
    await expect(p.create!(CMD, { create: "echo out; echo bad >&2; exit 3" })).rejects.toThrow(
      /^exit status 3: running "echo out; echo bad >&2; exit 3":\nout\nbad\n$/,
    );
    const olds = { create: "echo one", stdout: "one", stderr: "" };
    const up = await p.update!("id", CMD, olds, { create: "echo one", update: 'echo "was $PULUMI_COMMAND_STDOUT"' });
    expect(up.outs.stdout).toBe("was one");
    const again = await p.update!("id", CMD, olds, { create: "echo create-again" });
    expect(again.outs.stdout).toBe("create-again");
    await expect(p.delete!("id", CMD, { delete: "exit 1" })).rejects.toThrow(/exit status 1/);
  });

  it("diffs inputs: a trigger change replaces, another change updates, nothing else changes", async () => {
    const olds = { create: "a", triggers: ["x"], stdout: "o", stderr: "", addPreviousOutputInEnv: true };
    const news = { create: "a", triggers: ["x"], addPreviousOutputInEnv: true };
    expect(await p.diff!("id", CMD, olds, news)).toEqual({ changes: false, replaces: [] });
    expect(await p.diff!("id", CMD, olds, { ...news, create: "b" })).toEqual({ changes: true, replaces: [] });
    expect(await p.diff!("id", CMD, olds, { ...news, triggers: ["y"] })).toEqual({
      changes: true,
      replaces: ["triggers"],
    });
  });
});

/** Writes PEM text to a file of a fresh directory and returns its path. */
function pemFile(dir: string, name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe("the tls model", () => {
  const p = tlsProvider("5.6.1");
  const T = (kind: string) => urn(`tls:index/${kind}`, kind);

  it("makes an Ed25519 CA and a client certificate it signs that openssl verifies, keys secret", async () => {
    const dir = mkdtempSync(join(tempDir("engine-tls-test-"), "x"));
    const key = await p.create!(
      T("privateKey:PrivateKey"),
      (await p.check!(T("privateKey:PrivateKey"), {}, { algorithm: "ED25519" })).inputs,
    );
    expect(isSecret(key.outs.privateKeyPem)).toBe(true);
    expect(plain(key.outs.privateKeyPem)).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(key.outs.publicKeyOpenssh).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5/);
    const caInputs = {
      privateKeyPem: key.outs.privateKeyPem,
      subject: { organization: "talos" },
      isCaCertificate: true,
      validityPeriodHours: 87_600,
      allowedUses: ["cert_signing", "digital_signature", "server_auth", "client_auth"],
    };
    const ca = await p.create!(T("selfSignedCert:SelfSignedCert"), caInputs);
    const caText = execFileSync(
      "openssl",
      ["x509", "-noout", "-text", "-in", pemFile(dir, "ca.pem", ca.outs.certPem)],
      { encoding: "utf8" },
    );
    expect(caText).toMatch(/Subject: O ?= ?talos/);
    expect(caText).toMatch(/CA:TRUE/);
    expect(caText).toMatch(/Certificate Sign/);
    expect(isSecret(ca.outs.privateKeyPem)).toBe(true);

    const clientKey = await p.create!(T("privateKey:PrivateKey"), { algorithm: "ECDSA", ecdsaCurve: "P256" });
    expect(plain(clientKey.outs.privateKeyPem)).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
    const csr = await p.create!(T("certRequest:CertRequest"), {
      privateKeyPem: clientKey.outs.privateKeyPem,
      subject: { organization: "os:admin" },
    });
    const cert = await p.create!(T("locallySignedCert:LocallySignedCert"), {
      certRequestPem: csr.outs.certRequestPem,
      caPrivateKeyPem: key.outs.privateKeyPem,
      caCertPem: ca.outs.certPem,
      validityPeriodHours: 8_760,
      allowedUses: ["digital_signature", "client_auth"],
    });
    const verify = execFileSync(
      "openssl",
      [
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        pemFile(dir, "ca2.pem", ca.outs.certPem),
        pemFile(dir, "c.pem", cert.outs.certPem),
      ],
      { encoding: "utf8" },
    );
    expect(verify).toMatch(/: OK/);
    const end = Date.parse(cert.outs.validityEndTime as string) - Date.parse(cert.outs.validityStartTime as string);
    expect(end / 3_600_000).toBe(8_760);
  });

  it("replaces a key or certificate when an input changes, not when only early renewal does", async () => {
    const olds = { algorithm: "ECDSA", ecdsaCurve: "P256" };
    expect((await p.diff!("id", T("privateKey:PrivateKey"), olds, { ...olds, ecdsaCurve: "P384" })).replaces).toEqual([
      "ecdsaCurve",
    ]);
    const far = new Date(Date.now() + 1e10).toISOString();
    const cert = { validityPeriodHours: 24, allowedUses: ["client_auth"], earlyRenewalHours: 0, validityEndTime: far };
    expect(
      await p.diff!("id", T("locallySignedCert:LocallySignedCert"), cert, { ...cert, earlyRenewalHours: 5 }),
    ).toEqual({ changes: true, replaces: [] });
  });
});

describe("the random model", () => {
  const p = randomProvider("4.21.2");
  const R = (kind: string) => urn(`random:index/${kind}`, kind);

  it("draws passwords of the requested form, secret, with the id 'none'; strings with the result as id; bytes secret", async () => {
    const args = { length: 16, lower: true, upper: false, numeric: true, special: false };
    const pw = await p.create!(
      R("randomPassword:RandomPassword"),
      (await p.check!(R("randomPassword:RandomPassword"), {}, args)).inputs,
    );
    expect(pw.id).toBe("none");
    expect(isSecret(pw.outs.result)).toBe(true);
    expect(plain(pw.outs.result)).toMatch(/^[a-z0-9]{16}$/);
    const s = await p.create!(R("randomString:RandomString"), { ...args, minNumeric: 16 });
    expect(s.id).toMatch(/^[0-9]{16}$/);
    expect(s.outs.result).toBe(s.id);
    const b = await p.create!(R("randomBytes:RandomBytes"), { length: 32 });
    expect(Buffer.from(plain(b.outs.base64) as string, "base64")).toHaveLength(32);
    expect(isSecret(b.outs.hex)).toBe(true);
    const draws = new Set(
      await Promise.all(
        [1, 2, 3].map(async () => plain((await p.create!(R("randomPassword:RandomPassword"), args)).outs.result)),
      ),
    );
    expect(draws.size).toBe(3);
  });
});
