/**
 * The end-to-end suite of one site: builds the virtual appliance from the site's render, then runs every area of
 * tests (lib/areas/index.ts) on it. Every expectation is derived from the site (its plan, the policy oracles,
 * its port forwards), so the same areas run for the dev site, the fixtures and the sites the tests generate.
 */
import { afterAll, beforeAll, describe } from "vitest";
import type { StackConfig } from "../../../cli/stack-config";
import { rawSiteConfig } from "../../../components/site/load";
import { parseSite } from "../../../components/site/parse";
import { planSite, type SitePlan } from "../../../components/site/plan";
import type { Site } from "../../../components/site/schema";
import { devStack } from "../../helpers/stacks";
import { tier } from "../../helpers/tier";
import { APPLIANCE_COMMANDS, Appliance, LOADER, ensureLoader } from "./appliance";
import { UPSTREAM_BINARIES, networkServicePod } from "./pods";
import { AREAS } from "./areas";
import { renderSite } from "./rendered";
import { GOBGP, GOBGPD } from "./talos-bgp";

export interface SuiteOptions {
  /** "the dev site" */
  title: string;
  /** Namespace prefix, unique per test file. */
  prefix: string;
  /** The stack to render (the dev stack when undefined). */
  config?: StackConfig;
  /** Least number of matrix cells the site must produce. */
  minCells: number;
  /** Titles of areas left out for this site (each site file says why). */
  without?: string[];
}

/** What an area's tests see: the site (known when tests are collected) and, inside tests, the appliance. */
export interface SuiteContext {
  title: string;
  site: Site;
  plan: SitePlan;
  minCells: number;
  /** The running appliance (only inside tests and hooks). */
  readonly app: Appliance;
}

/** Ports some probe of an area needs every client and the internet host to answer on. */
export interface Ports {
  tcp: number[];
  udp: number[];
}

/**
 * One area of tests. Adding one is a module exporting it and a line in lib/areas/index.ts.
 */
export interface Area {
  /** Title of its describe block. */
  title: string;
  /** False when the site has nothing this area tests (an area must register at least one test otherwise). */
  appliesTo?(site: Site, plan: SitePlan): boolean;
  /** Ports its probes need answered (every client and the internet host serve them). */
  ports?(site: Site, plan: SitePlan): Partial<Ports>;
  /** The render's pods its tests need running (by DaemonSet name), besides the network services'. */
  pods?(name: string): boolean;
  /** Set-up or observations of its own once the node is up as Talos brings it up, before the data-plane loader. */
  beforeLoader?(app: Appliance): void | Promise<void>;
  /** Registers its tests; the site decides which apply. */
  tests(ctx: SuiteContext): void;
}

/** Every port the areas need, sorted. */
function areaPorts(site: Site, plan: SitePlan): Ports {
  const tcp = new Set<number>();
  const udp = new Set<number>();
  for (const a of AREAS) {
    const p = a.ports?.(site, plan);
    for (const x of p?.tcp ?? []) tcp.add(x);
    for (const x of p?.udp ?? []) udp.add(x);
  }
  return { tcp: [...tcp].sort((a, b) => a - b), udp: [...udp].sort((a, b) => a - b) };
}

/** Parses and plans a stack's site (synchronous: the site decides which tests exist). */
export function siteOf(config: StackConfig | undefined, title: string): { site: Site; plan: SitePlan } {
  const parsed = parseSite(rawSiteConfig((config ?? devStack()).values));
  if (!parsed.ok) throw new Error(`${title}: the site does not parse:\n${JSON.stringify(parsed.issues, null, 2)}`);
  return { site: parsed.site, plan: planSite(parsed.site) };
}

export function describeAppliance(opts: SuiteOptions): void {
  ensureLoader();
  const t = tier("e2e", {
    root: true,
    commands: APPLIANCE_COMMANDS,
    files: [LOADER, ...Object.values(UPSTREAM_BINARIES), GOBGPD, GOBGP],
    hint: "the upstream images' stand-ins and the node's BGP: npm run build:tools",
  });
  const { site, plan } = siteOf(opts.config, opts.title);
  const unknown = (opts.without ?? []).filter((w) => !AREAS.some((a) => a.title === w));
  if (unknown.length) throw new Error(`${opts.title}: without names no area: ${unknown.join(", ")}`);

  describe.skipIf(!t.ok)(`${opts.title} on the virtual appliance`, () => {
    let running: Appliance | undefined;
    const ctx: SuiteContext = {
      title: opts.title,
      site,
      plan,
      minCells: opts.minCells,
      get app(): Appliance {
        if (!running) throw new Error("the appliance is not running");
        return running;
      },
    };

    beforeAll(async () => {
      const rendered = await renderSite(opts.config);
      const app = new Appliance({
        // ROUTER_E2E_TAG keeps two checkouts' runs on one machine out of each other's namespaces.
        prefix: process.env.ROUTER_E2E_TAG ? `${opts.prefix}-${process.env.ROUTER_E2E_TAG}` : opts.prefix,
        rendered,
        ports: areaPorts(rendered.site, rendered.plan),
        beforeLoader: AREAS.flatMap((a) => (a.beforeLoader ? [(x: Appliance) => a.beforeLoader!(x)] : [])),
        pods: (name) => networkServicePod(name) || AREAS.some((a) => a.pods?.(name)),
      });
      await app.start();
      running = app;
    }, 240_000);

    afterAll(async () => {
      await running?.stop();
    }, 60_000);

    const wanted = AREAS.filter((a) => !(opts.without ?? []).includes(a.title));
    for (const area of wanted) if (area.appliesTo?.(site, plan) ?? true) describe(area.title, () => area.tests(ctx));
  });
}
