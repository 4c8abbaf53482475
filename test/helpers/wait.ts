/**
 * Waiting in tests that drive real processes (the eBPF loader tests, the virtual appliance): one sleep and one
 * poll-until-ready for every tier, so a fix to either (a clearer timeout message, a different poll period)
 * reaches all of them.
 */

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** What a poll returns while the awaited thing is not there yet. */
type NotYet = undefined | null | false;

/**
 * Polls `check` every `everyMs` until it returns a value other than undefined, null or false, and resolves with
 * that value (a predicate's `true`, or what was awaited: a lease, an address). Throws, naming `what`, once
 * `timeoutMs` has passed without one. `check` may be asynchronous.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | NotYet | Promise<T | NotYet>,
  timeoutMs = 15_000,
  everyMs = 50,
): Promise<Exclude<T, NotYet>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== null && v !== false) return v as Exclude<T, NotYet>;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
