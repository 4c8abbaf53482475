/**
 * The pack over the wire, as the engine drives it: its entry (policies/index.ts) is started the way the
 * `pulumi-analyzer-policy` plugin starts a Node.js pack — `@pulumi/pulumi/cmd/run-policy-pack <engine> .` in the
 * pack's directory, TypeScript compiled by Pulumi's own loader — and prints its port; the test connects with the
 * analyzer protocol's generated client (@pulumi/pulumi/proto/analyzer_grpc_pb) and calls GetAnalyzerInfo,
 * Analyze and AnalyzeStack with the dev site's resources.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import * as analyzerRpc from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import type * as analyzerproto from "@pulumi/pulumi/proto/analyzer_pb";
import type { RecordedResource } from "../../cli/mock-runtime";
import type { LayerReview } from "../../components/review";
import { analyzeRequest, analyzeStackRequest } from "../../policies/evaluate";
import { policies } from "../../policies/registry";
import { ROOT } from "../helpers/stacks";
import { devResources } from "./helpers";

let pack: ChildProcess;
let client: analyzerRpc.AnalyzerClient;
let dev: RecordedResource[];

/** Starts the pack as the engine's plugin does and resolves with the port it prints. */
function startPack(): Promise<number> {
  return new Promise((resolve, reject) => {
    pack = spawn(
      process.execPath,
      [join(ROOT, "node_modules/@pulumi/pulumi/cmd/run-policy-pack"), "127.0.0.1:1", "."],
      {
        cwd: join(ROOT, "policies"),
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    pack.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /^(\d+)\s*$/m.exec(out);
      if (m) resolve(Number(m[1]));
    });
    pack.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    pack.on("exit", (code) => reject(new Error(`the pack exited (${code}) before printing its port:\n${err}`)));
  });
}

function unary<Req, Res>(
  method: (req: Req, cb: (e: grpc.ServiceError | null, r: Res) => void) => unknown,
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) => method.call(client, req, (e, r) => (e ? reject(e) : resolve(r))));
}

const diagnostics = (r: analyzerproto.AnalyzeResponse) =>
  r.getDiagnosticsList().map((d) => ({
    policy: d.getPolicyname(),
    mandatory: d.getEnforcementlevel() === 1,
    message: d.getMessage().split("\n").slice(1).join("\n") || d.getMessage(),
  }));

beforeAll(async () => {
  dev = await devResources();
  const port = await startPack();
  client = new analyzerRpc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}, 180_000);

afterAll(() => {
  client?.close();
  pack?.kill();
});

describe("the policy pack over the analyzer protocol", () => {
  it("describes itself: name, version from its package.json, every policy with its enforcement", async () => {
    const info = await unary<Empty, analyzerproto.AnalyzerInfo>(client.getAnalyzerInfo, new Empty());
    expect(info.getName()).toBe("edge-router");
    expect(info.getVersion()).toBe("0.1.0");
    expect(info.getPoliciesList().map((p) => p.getName())).toEqual(policies.map((p) => p.name));
    // the engine's EnforcementLevel enum (pulumi/proto analyzer.proto): ADVISORY 0, MANDATORY 1
    const levels: Record<string, number> = { advisory: 0, mandatory: 1 };
    expect(info.getPoliciesList().map((p) => p.getEnforcementlevel())).toEqual(
      policies.map((p) => levels[p.enforcementLevel ?? "mandatory"]),
    );
    expect(
      info
        .getPoliciesList()
        .find((p) => p.getName() === "ospf-authenticated-where-clients-are")
        ?.getEnforcementlevel(),
    ).toBe(0);
  });

  it("analyzes one resource as the engine sends it: a tagged image is a mandatory violation", async () => {
    const ds = structuredClone(dev.find((r) => r.name === "lab-services-daemonset-kea-dhcp4")!);
    const passing = diagnostics(await unary(client.analyze, analyzeRequest(ds)));
    expect(passing).toEqual([]);
    (ds.inputs.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers[0].image =
      "debian:bookworm";
    expect(diagnostics(await unary(client.analyze, analyzeRequest(ds)))).toEqual([
      {
        policy: "images-pinned-by-digest",
        mandatory: true,
        message:
          'DaemonSet router-system/kea-dhcp4: containers kea-dhcp4 runs image "debian:bookworm", which is not pinned by digest (allowed: an image reference ending in @sha256:<64 hex digits>)',
      },
    ]);
  });

  it("analyzes the stack from its outputs: the dev site passes, a WAN opened into a zone does not", async () => {
    const passing = diagnostics(await unary(client.analyzeStack, analyzeStackRequest(dev)));
    expect(passing).toEqual([]);
    const open = structuredClone(dev);
    const fw = (open.find((r) => r.name === "lab-dataplane")!.outputs!.review as LayerReview).firewall!;
    fw.matrix.find((c) => c.from === "wan" && c.to === "servers")!.verdict = "accept";
    expect(diagnostics(await unary(client.analyzeStack, analyzeStackRequest(open))).filter((d) => d.mandatory)).toEqual(
      [
        {
          policy: "wan-accepts-only-forwards",
          mandatory: true,
          message:
            "wan → servers accepts every new connection from the internet (allowed: drop or reject; publish a service with a port forward)",
        },
      ],
    );
  });
});
