/** A site that explicitly allows wiping: nothing is protected and destroy resets the node. */
import { describe, expect, it } from "vitest";
import { renderStack } from "../../cli/render";
import { devStack } from "../helpers/stacks";

describe("a site with node.allowWipeOnDestroy", () => {
  it("leaves nothing protected and resets the node on destroy", async () => {
    const { run } = await renderStack({
      stack: "dev",
      config: devStack((raw) => {
        (raw.node as Record<string, unknown>).allowWipeOnDestroy = true;
      }),
    });
    expect(run.resources.filter((r) => r.protect).map((r) => r.name)).toEqual([]);
    const install = run.resources.find((r) => r.name === "lab-node-install")!;
    expect(String(install.inputs.delete)).toMatch(/talos "\$CHECK_MS" reset --graceful=false --reboot --wipe-mode all/);
  });
});
