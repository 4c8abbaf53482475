/**
 * A model of pulumi-command's `command:local:Command` (the provider the Go module proxy does not serve; see
 * tools/README.md), for `pulumi up` with the real engine. It follows pulumi/pulumi-command
 * provider/pkg/provider/local/commandController.go (Create/Update/Delete), local/commandOutputs.go (run),
 * local/base.go and common/inputs.go (the inputs and their defaults), and pulumi-go-provider infer's field
 * wiring (infer/fields.go MarkMap) as local/command.go WireDependencies declares it:
 *  - create runs `create` (nothing when absent); update runs `update`, or `create` when there is no `update`;
 *    delete runs `delete` (nothing when absent). The engine does not run them in a preview: the provider does not
 *    support preview, so a new command's stdout/stderr are unknown there.
 *  - a command runs as `interpreter… command` (default `/bin/sh -c`) in `dir` (default: the provider's working
 *    directory), with the provider's environment plus `environment`, `stdin` when non-empty, and — unless
 *    `addPreviousOutputInEnv` is false — the previous run's output as PULUMI_COMMAND_STDOUT/PULUMI_COMMAND_STDERR.
 *  - stdout and stderr become outputs with one trailing newline trimmed; a non-zero exit fails the operation with
 *    `exit status N: running "<command>":` and the command's interleaved output, and records nothing new (a failed
 *    update leaves the previous state, so the next `up` tries again).
 *  - a change of `triggers` replaces the resource (replaceOnChanges); any other input change is an update.
 *  - outputs echo the inputs, each as secret as its input; stdout and stderr are secret when any input is.
 * Not modelled: assetPaths/archivePaths (the program uses neither: refused loudly), and the `logging` input's
 * streaming of output lines to the engine as diagnostics while the command runs (the output is in the outputs and,
 * on failure, in the error).
 */
import { spawn } from "node:child_process";
import type * as provider from "@pulumi/pulumi/provider";
import { changedKeys, holdsSecret, plain, secret, uniqueHex, urnName, urnType, type Props } from "./wire";

const TYPE = "command:local:Command";
/** Every input of command:local:Command in 1.x. */
const INPUTS = [
  "addPreviousOutputInEnv",
  "archivePaths",
  "assetPaths",
  "create",
  "delete",
  "dir",
  "environment",
  "interpreter",
  "logging",
  "stdin",
  "triggers",
  "update",
] as const;

interface Inputs {
  create?: string;
  update?: string;
  delete?: string;
  interpreter?: string[];
  dir?: string;
  environment?: Record<string, string>;
  stdin?: string;
  addPreviousOutputInEnv?: boolean;
  assetPaths?: string[];
  archivePaths?: string[];
}

/** Runs one command as commandOutputs.go run does; rejects with its message on a non-zero exit. */
async function run(command: string, inputs: Inputs, previous: { stdout?: string; stderr?: string }) {
  if (inputs.assetPaths || inputs.archivePaths)
    throw new Error("assetPaths/archivePaths are not modelled by this stand-in of pulumi-command");
  const argv = inputs.interpreter?.length ? [...inputs.interpreter, command] : ["/bin/sh", "-c", command];
  const env: Record<string, string | undefined> = { ...process.env, ...inputs.environment };
  if (inputs.addPreviousOutputInEnv !== false) {
    if (previous.stdout) env.PULUMI_COMMAND_STDOUT = previous.stdout;
    if (previous.stderr) env.PULUMI_COMMAND_STDERR = previous.stderr;
  }
  const child = spawn(argv[0]!, argv.slice(1), { cwd: inputs.dir ?? process.cwd(), env, stdio: "pipe" });
  let stdout = "";
  let stderr = "";
  let both = "";
  child.stdout.on("data", (d: Buffer) => ((stdout += d), (both += d)));
  child.stderr.on("data", (d: Buffer) => ((stderr += d), (both += d)));
  child.stdin.on("error", () => {});
  child.stdin.end(inputs.stdin ? inputs.stdin : undefined);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (c, s) => resolve([c, s]));
  });
  if (code !== 0) {
    const status = signal ? `signal: ${signal}` : `exit status ${code}`;
    throw new Error(`${status}: running ${JSON.stringify(command)}:\n${both}`);
  }
  return { stdout: stdout.replace(/\n$/, ""), stderr: stderr.replace(/\n$/, "") };
}

/** The state: every input echoed as given (secret stays secret), stdout/stderr secret when any input is. */
function state(news: Props, out: { stdout: string; stderr: string }): Props {
  const anySecret = INPUTS.some((k) => holdsSecret(news[k]));
  const mark = (v: string) => (anySecret ? secret(v) : v);
  return { ...news, stdout: mark(out.stdout), stderr: mark(out.stderr) };
}

function expectType(urn: string): void {
  if (urnType(urn) !== TYPE) throw new Error(`this stand-in of pulumi-command models only ${TYPE}, not ${urn}`);
}

/** The provider, as the `command` plugin at `version`. */
export function commandProvider(version: string): provider.Provider {
  return {
    version,
    async check(urn, _olds, news: Props) {
      expectType(urn);
      // base.go: addPreviousOutputInEnv defaults to true.
      return { inputs: { addPreviousOutputInEnv: true, ...news } };
    },
    async diff(_id, _urn, olds: Props, news: Props) {
      const changed = changedKeys(olds, news, INPUTS);
      return { changes: changed.length > 0, replaces: changed.filter((k) => k === "triggers") };
    },
    async create(urn, news: Props) {
      expectType(urn);
      const inputs = plain(news) as Inputs;
      const out = inputs.create === undefined ? { stdout: "", stderr: "" } : await run(inputs.create, inputs, {});
      return { id: uniqueHex(urnName(urn)), outs: state(news, out) };
    },
    async update(_id, _urn, olds: Props, news: Props) {
      const inputs = plain(news) as Inputs;
      const previous = plain({ stdout: olds.stdout, stderr: olds.stderr }) as { stdout?: string; stderr?: string };
      const cmd = inputs.update ?? inputs.create;
      const out =
        cmd === undefined
          ? { stdout: previous.stdout ?? "", stderr: previous.stderr ?? "" }
          : await run(cmd, inputs, previous);
      return { outs: state(news, out) };
    },
    async delete(_id, _urn, props: Props) {
      const inputs = plain(props) as Inputs & { stdout?: string; stderr?: string };
      if (inputs.delete !== undefined) await run(inputs.delete, inputs, inputs);
    },
  };
}
