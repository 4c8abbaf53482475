/** The site model's copy of the XDP guard's built-in bogon lists is the loader's list, entry for entry. */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_BOGONS4, DEFAULT_BOGONS6 } from "../../components/site/bogons";
import { ROOT } from "../helpers/stacks";

function loaderList(name: string): string[] {
  const src = readFileSync(join(ROOT, "ebpf/loader/tables.c"), "utf8");
  const m = new RegExp(`${name}\\[\\] = \\{([\\s\\S]*?)NULL`).exec(src);
  if (!m) throw new Error(`no ${name} in tables.c`);
  return [...m[1].matchAll(/"([^"]+)"/g)].map((x) => x[1]);
}

describe("the bogon lists", () => {
  it("match the loader's built-in lists (a forward the guard would starve must be refused)", () => {
    expect([...DEFAULT_BOGONS4]).toEqual(loaderList("dp_default_bogons4"));
    expect([...DEFAULT_BOGONS6]).toEqual(loaderList("dp_default_bogons6"));
  });
});
