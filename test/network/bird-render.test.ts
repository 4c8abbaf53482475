/**
 * The rendered bird.conf (components/network-services/bird.ts), parsed by the real `bird -p` for sites with and
 * without each redistribution, and read for what the render promises: OSPF on the segments' VLAN links with
 * FRR's default timers, the passive segments as stub interfaces, the static routes only in BIRD's own static
 * protocol, the connected subnets only of the other segments, and a kernel protocol that installs only OSPF's
 * routes, learns nothing and keeps its routes through a restart. What BIRD does with it is proven in the kernel
 * tests (bird-privileges, routing.kernel, bird-restart.kernel, bird-start-sweep.kernel).
 */
import { describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OSPF_KEY_FILE, renderBird, renderOspfKeyFile } from "../../components/network-services/bird";
import { BIRD_SECRET, renderServiceObjects, serviceConfigs } from "../../components/network-services/k8s";
import { devSite } from "../helpers/dev-site";
import { tier } from "../helpers/tier";
import { birdCheck } from "../helpers/validators";

const t = tier("bird -p", { commands: ["bird"] });

const ROUTED = "172.20.99.0/24";

function site(
  ospf: Record<string, unknown> | undefined,
  routes: Record<string, unknown>[] = [],
  ospfKey?: string,
  ospfNextKey?: string,
) {
  return devSite((raw) => {
    raw.routes = routes;
    raw.routing = ospf ? { ospf: { routerId: "10.10.0.1", ...ospf } } : {};
    if (ospfKey) raw.ospfKey = ospfKey;
    if (ospfNextKey) raw.ospfNextKey = ospfNextKey;
  });
}

const KEY = "a key of the servers segment";

/** `bird -p` on a render with authentication, its include pointed at a key file written here (or none). */
function birdCheckWithKey(conf: string, keyFile: string | undefined): string[] {
  const dir = mkdtempSync(join(tmpdir(), "bird-key-"));
  try {
    const file = join(dir, "ospf-keys.conf");
    if (keyFile !== undefined) writeFileSync(file, keyFile);
    return birdCheck(conf.replace('include "/run/bird/ospf-keys.conf";', `include "${file}";`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The body of a top-level block `protocol <kind> [name] {`, up to its closing brace at column 0. */
function block(conf: string, head: string): string | undefined {
  const start = conf.indexOf(`${head} {\n`);
  if (start < 0) return undefined;
  return conf.slice(start, conf.indexOf("\n}\n", start) + 2);
}

describe("bird.conf", () => {
  it("is not rendered, nor deployed, without OSPF", () => {
    const dev = site(undefined);
    expect(renderBird(dev.site, dev.plan)).toBeUndefined();
    expect(serviceConfigs(dev.site, dev.plan, dev.policy).has("bird.conf")).toBe(false);
  });

  it("runs OSPF on the segments' links with FRR's default timers and the passive ones as stubs", () => {
    const dev = site({ segments: ["servers"], passive: ["mgmt"], area: "0.0.0.1" });
    const ospf = block(renderBird(dev.site, dev.plan)!, "protocol ospf v2 router_ospf")!;
    expect(ospf).toContain(
      '  area 0.0.0.1 {\n    interface "lan0.10" { stub yes; };\n    interface "lan0.50" { hello 10; dead 40; };\n  };',
    );
    expect(ospf).toContain("    export none;");
    expect(ospf).not.toContain("graceful restart");
    expect(renderBird(dev.site, dev.plan)).toContain("router id 10.10.0.1;\n");
  });

  it("authenticates every packet on the OSPF links and includes the keys from the Secret's file, holding none itself", () => {
    const dev = site(
      { segments: ["servers"], passive: ["mgmt"], authentication: { algorithm: "hmac-sha384", keyId: 9 } },
      [],
      KEY,
    );
    const conf = renderBird(dev.site, dev.plan)!;
    expect(block(conf, "protocol ospf v2 router_ospf")).toContain(
      [
        '    interface "lan0.10" { stub yes; };',
        '    interface "lan0.50" {',
        "      hello 10; dead 40;",
        "      authentication cryptographic;",
        "      # the keys (router:ospfKey, router:ospfNextKey), their ids and algorithms: the bird Secret's, once on trial",
        '      include "/run/bird/ospf-keys.conf";',
        "    };",
      ].join("\n"),
    );
    // the key ids and algorithms live in the Secret's file with the keys: a change of key never restarts BIRD
    expect(conf.match(/include/g)).toHaveLength(1);
    expect(conf).not.toMatch(/password|hmac|id 9/);
    expect(conf).not.toContain(KEY);
    // without authentication: no include, no password
    const plain = site({ segments: ["servers"] });
    expect(renderBird(plain.site, plain.plan)).not.toMatch(/include|password|authentication/);
    // a key, its id, its algorithm and a next key change the key file, never bird.conf
    const next = site(
      {
        segments: ["servers"],
        passive: ["mgmt"],
        authentication: { algorithm: "keyed-md5", keyId: 3, next: { keyId: 4, send: true } },
      },
      [],
      "sixteen chars!!!",
      "next 16 chars!!!",
    );
    expect(renderBird(next.site, next.plan)).toBe(conf);
  });

  it("mounts the key file from the bird Secret, read only, and has the status container watch it for a new key", () => {
    const birdPod = (dev: ReturnType<typeof site>) => {
      const objects = renderServiceObjects(dev.site, dev.plan, dev.policy, "image");
      const ds = objects.find((o) => o.kind === "DaemonSet" && o.metadata.name === "bird") as unknown as {
        spec: { template: { spec: Record<string, unknown[]> } };
      };
      return { spec: ds.spec.template.spec, all: JSON.stringify(objects) };
    };
    type Pod = { volumes: Record<string, unknown>[]; containers: { command: string[]; volumeMounts: unknown[] }[] };
    const { spec, all } = birdPod(site({ segments: ["servers"], authentication: {} }, [], KEY));
    const pod = spec as unknown as Pod;
    expect(pod.volumes).toContainEqual({
      name: "secrets",
      secret: {
        secretName: BIRD_SECRET,
        defaultMode: 0o400,
        items: [{ key: "ospf-keys.conf", path: "ospf-keys.conf" }],
      },
    });
    for (const c of pod.containers)
      expect(c.volumeMounts).toContainEqual({ name: "secrets", mountPath: "/etc/router-secrets", readOnly: true });
    expect(pod.containers[0].command).toEqual([
      "bird-start",
      "--keys",
      OSPF_KEY_FILE,
      "/run/bird/ospf-keys.conf",
      "-f",
      "-c",
      "/etc/router/bird.conf",
      "-s",
      "/run/bird/bird.ctl",
    ]);
    expect(pod.containers[1].command).toEqual([
      "router-ospf-status",
      "--keys",
      OSPF_KEY_FILE,
      "/run/bird/ospf-keys.conf",
      "--timers",
      "10",
      "40",
      "/run/bird/bird.ctl",
      "/var/lib/router-routing/ospf.json",
      "5",
    ]);
    expect(all).not.toContain(KEY);
    const plain = birdPod(site({ segments: ["servers"] })).spec as unknown as Pod;
    expect(JSON.stringify(plain)).not.toMatch(/secrets|--keys|--timers/);
  });

  it("writes the key file as BIRD's password list: the key, and with next both keys, exactly one of them sent", () => {
    const NEXT = "the next key of the servers segment";
    const auth = (a: Record<string, unknown>) => {
      const md5 = a.algorithm === "keyed-md5";
      return site(
        { segments: ["servers"], authentication: a },
        [],
        md5 ? "md5 key 16 chars" : KEY,
        a.next ? NEXT : undefined,
      ).site.routing.ospf!.authentication!;
    };
    expect(renderOspfKeyFile(auth({ algorithm: "hmac-sha384", keyId: 9 }), KEY)).toBe(
      `password "${KEY}" { id 9; algorithm hmac sha384; };\n`,
    );
    // the next key accepted, not sent: its generation ended long ago (BIRD sends with a key valid for generating)
    expect(renderOspfKeyFile(auth({ keyId: 1, next: { keyId: 2 } }), KEY, NEXT)).toBe(
      `password "${KEY}" { id 1; algorithm hmac sha256; };\n` +
        `password "${NEXT}" { id 2; algorithm hmac sha256; generate to "1971-01-01 00:00:00"; };\n`,
    );
    // `send`: the next key is sent, the current one still accepted; a next algorithm of its own
    expect(
      renderOspfKeyFile(
        auth({ algorithm: "keyed-md5", keyId: 1, next: { keyId: 2, algorithm: "hmac-sha512", send: true } }),
        "md5 key 16 chars",
        NEXT,
      ),
    ).toBe(
      `password "md5 key 16 chars" { id 1; algorithm keyed md5; generate to "1971-01-01 00:00:00"; };\n` +
        `password "${NEXT}" { id 2; algorithm hmac sha512; };\n`,
    );
    for (const bad of ['a "quoted" key of 16+', "a key with a line\nbreak", "", "x".repeat(81)]) {
      expect(() => renderOspfKeyFile(auth({}), bad)).toThrow(/router:ospfKey is not a key BIRD can read/);
      expect(() => renderOspfKeyFile(auth({ next: { keyId: 2 } }), KEY, bad)).toThrow(
        /router:ospfNextKey is not a key BIRD can read/,
      );
    }
    expect(() => renderOspfKeyFile(auth({ next: { keyId: 2 } }), KEY)).toThrow(/router:ospfNextKey/);
  });

  it("redistributes the IPv4 static routes from its own static protocol and only the other segments' subnets", () => {
    const dev = site({ segments: ["servers"], passive: ["mgmt"], redistribute: ["static", "connected"] }, [
      { destination: ROUTED, gateway: "10.50.0.253" },
      { destination: "fd00:beef::/48", gateway: "fd12:3456:789a:50::fe" },
    ]);
    const conf = renderBird(dev.site, dev.plan)!;
    expect(block(conf, "protocol static router_static")).toBe(
      `protocol static router_static {\n  ipv4;\n  route ${ROUTED} via 10.50.0.253;\n}`,
    );
    const segments = block(conf, "protocol direct router_segments")!;
    // servers runs OSPF and mgmt is passive: neither is redistributed as connected; no WAN link is named
    expect(segments).toContain("import where net ~ [ 10.20.0.0/24, 10.30.0.0/23, 10.40.0.0/24 ];");
    expect(segments).toContain('interface "lan0.20", "lan0.30", "lan0.40";');
    expect(segments).not.toMatch(/wan|10\.50\.0\.0|10\.10\.0\.0/);
    expect(block(conf, "protocol ospf v2 router_ospf")).toContain("export where source ~ [RTS_STATIC, RTS_DEVICE];");
  });

  it("installs only OSPF's routes in the kernel, never a segment's subnet, learns nothing and keeps them on exit", () => {
    const dev = site({ segments: ["servers"], redistribute: ["static"] }, [
      { destination: ROUTED, gateway: "10.50.0.253" },
    ]);
    const kernel = block(renderBird(dev.site, dev.plan)!, "protocol kernel")!;
    // only inside the private ranges, never the default route, never a segment's or the cluster's subnet or inside
    // one (test/network/routing.kernel.test.ts: what a neighbour announces against it)
    expect(kernel).toContain(
      "export where source ~ [RTS_OSPF, RTS_OSPF_IA, RTS_OSPF_EXT1, RTS_OSPF_EXT2] && net ~ [ 10.0.0.0/8+, 100.64.0.0/10+, 172.16.0.0/12+, 192.168.0.0/16+ ] && net != 0.0.0.0/0 && net !~ [ 10.10.0.0/24+, 10.20.0.0/24+, 10.30.0.0/23+, 10.40.0.0/24+, 10.50.0.0/24+, 10.244.0.0/16+, 10.96.0.0/12+ ];",
    );
    expect(kernel).toContain("    import none;");
    expect(kernel).toMatch(/\n {2}learn off;\n {2}persist;\n {2}metric 20;\n/);
  });

  it("installs what routing.ospf.accept names instead of the private ranges, and still none of a static WAN's subnet", () => {
    const dev = devSite((raw) => {
      raw.routing = {
        ospf: { routerId: "10.10.0.1", segments: ["servers"], accept: ["198.51.100.0/24", "10.0.0.0/8"] },
      };
      raw.links.find((l: { name: string }) => l.name === "wan0").ipv4 = {
        mode: "static",
        address: "10.200.0.2/24",
        gateway: "10.200.0.1",
      };
    });
    const kernel = block(renderBird(dev.site, dev.plan)!, "protocol kernel")!;
    expect(kernel).toContain("&& net ~ [ 198.51.100.0/24+, 10.0.0.0/8+ ] &&");
    expect(kernel).toMatch(/net !~ \[ [^\]]*10\.200\.0\.0\/24\+/);
  });

  describe.skipIf(!t.ok)("parsed by bird -p", () => {
    it.each([
      ["a prefix of the site's own accepted", { segments: ["servers"], accept: ["198.51.100.0/24"] }, []],
      ["OSPF alone", { segments: ["servers"] }, []],
      ["passive segments", { segments: ["servers", "trusted"], passive: ["mgmt", "iot"] }, []],
      [
        "static",
        { segments: ["servers"], redistribute: ["static"] },
        [{ destination: ROUTED, gateway: "10.50.0.253" }],
      ],
      ["connected", { segments: ["servers"], redistribute: ["connected"] }, []],
      [
        "both, another area",
        { segments: ["servers"], area: "0.0.0.7", redistribute: ["connected", "static"] },
        [{ destination: ROUTED, gateway: "10.50.0.253" }],
      ],
    ])("%s", (_name, ospf, routes) => {
      const dev = site(ospf, routes);
      expect(birdCheck(renderBird(dev.site, dev.plan)!)).toEqual([]);
    });

    it.each(["hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha1", "keyed-md5"])(
      "authentication with %s and the key file of the Secret",
      (algorithm) => {
        const key = algorithm === "keyed-md5" ? "sixteen chars!!!" : KEY;
        const dev = site({ segments: ["servers"], authentication: { algorithm } }, [], key);
        const auth = dev.site.routing.ospf!.authentication!;
        expect(birdCheckWithKey(renderBird(dev.site, dev.plan)!, renderOspfKeyFile(auth, key))).toEqual([]);
      },
    );

    it.each([false, true])("a next key of another algorithm beside the key (send: %s)", (send) => {
      const dev = site(
        {
          segments: ["servers"],
          authentication: { algorithm: "keyed-md5", keyId: 1, next: { keyId: 2, algorithm: "hmac-sha256", send } },
        },
        [],
        "sixteen chars!!!",
        KEY,
      );
      const file = renderOspfKeyFile(dev.site.routing.ospf!.authentication!, "sixteen chars!!!", KEY);
      expect(birdCheckWithKey(renderBird(dev.site, dev.plan)!, file)).toEqual([]);
    });

    it("refuses to start without the key file: BIRD never runs OSPF unauthenticated for want of it", () => {
      const dev = site({ segments: ["servers"], authentication: {} }, [], KEY);
      expect(birdCheckWithKey(renderBird(dev.site, dev.plan)!, undefined).join()).toMatch(/ospf-keys\.conf/);
    });

    it("rejects a broken file (so passing means something)", () => {
      expect(birdCheck("protocol kernel { ipv4 { export where nonsense; }; }\n")).not.toEqual([]);
    });
  });
});
