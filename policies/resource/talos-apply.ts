/**
 * Talos changes go through the try path (DESIGN decision 3). A command that runs `talosctl apply-config` must
 * apply a changed configuration with `--mode=try` first and confirm only after it (`--mode=no-reboot`); the
 * only other apply is the first install to a node in maintenance mode (`--insecure`, at create), whose
 * resource ignores later changes of its configuration so they never reach the node that way. `--mode=reboot`,
 * `--mode=auto`, `--mode=staged` and an apply without a mode (auto) bypass the try window.
 */
import type { EnforcementLevel, ResourceValidationPolicy } from "@pulumi/policy";
import { isUnknownValue } from "../lib";

/**
 * The `apply-config` invocations of a script, each with the mode it names (undefined: none) and whether it
 * talks to maintenance mode — `--insecure` on the line or in the one-line shell function it calls.
 */
export function applyInvocations(script: string): { mode?: string; insecure: boolean; line: string }[] {
  const lines = script.split("\n");
  const insecureFns = lines.flatMap((l) => {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\(\)\s*\{.*--insecure\b/.exec(l);
    return m ? [m[1]] : [];
  });
  return lines
    .filter((l) => /\bapply-config\b/.test(l) && !/^\s*#/.test(l))
    .map((line) => ({
      line: line.trim(),
      mode: /--mode[= ]([a-z-]+)/.exec(line)?.[1],
      insecure:
        /--insecure\b/.test(line) ||
        insecureFns.some((f) => new RegExp(`\\b${f}\\s[^|;]*\\bapply-config\\b`).test(line)),
    }));
}

function text(v: () => unknown): string | undefined {
  try {
    const s = v();
    return typeof s === "string" ? s : undefined;
  } catch (e) {
    if (isUnknownValue(e)) return undefined;
    throw e;
  }
}

export function talosChangesThroughTry(enforcementLevel: EnforcementLevel = "mandatory"): ResourceValidationPolicy {
  return {
    name: "talos-changes-through-try",
    description:
      "Machine-configuration changes are applied with --mode=try and confirmed after the checks; only the first install uses maintenance mode.",
    enforcementLevel,
    validateResource: (args, report) => {
      if (args.type !== "command:local:Command") return;
      const at = `command ${args.name}`;
      const create = applyInvocations(text(() => args.props.create) ?? "");
      const update = applyInvocations(text(() => args.props.update) ?? "");
      const del = applyInvocations(text(() => args.props.delete) ?? "");
      for (const a of create.filter((x) => !x.insecure))
        report(
          `${at}: its create applies a configuration to a running node without the try path (${a.line}) (allowed at create: only the maintenance-mode install with --insecure)`,
        );
      if (create.some((x) => x.insecure) && !(args.opts.ignoreChanges ?? []).includes("stdin"))
        report(
          `${at}: the maintenance-mode install does not ignore changes of its stdin, so a later configuration change would re-run it (allowed: ignoreChanges ["stdin"], changes go through the try/confirm apply)`,
        );
      for (const a of del) report(`${at}: its delete applies a configuration (${a.line}) (allowed: none)`);
      let tried = false;
      for (const a of update) {
        if (a.insecure)
          report(
            `${at}: its update applies in maintenance mode (${a.line}) (allowed: --mode=try, then --mode=no-reboot to confirm)`,
          );
        else if (a.mode === "try") tried = true;
        else if (a.mode === "no-reboot" && tried) continue;
        else
          report(
            `${at}: its update applies with ${a.mode ? `--mode=${a.mode}` : "no --mode (auto: may reboot)"}${a.mode === "no-reboot" ? " before any --mode=try" : ""} (allowed: --mode=try, then --mode=no-reboot to confirm)`,
          );
      }
    },
  };
}
