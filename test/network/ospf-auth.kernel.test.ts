/**
 * OSPF authentication (router:routing.ospf.authentication with the secret router:ospfKey), in namespaces: the
 * bird pod as the node runs it (test/network/bird.ts: the rendered command, capabilities and bird.conf, which
 * includes the key file the Secret holds) and its status container (router-ospf-status, which watches that file).
 *   - HMAC-SHA-256: a neighbour BIRD with the key (its configuration written here, by hand) forms the adjacency
 *     and its prefix is installed; a host on another OSPF segment with another key, then with none, is never a
 *     neighbour and nothing it announces is installed, and the router says why in its log;
 *   - a key rollover (the Secret's file replaced the way the kubelet does at each step: the next key accepted,
 *     then sent, then the only one) with a neighbour that follows it: at each step the neighbour, accepting only
 *     the key the router should send, keeps hearing its hellos, the router keeps hearing the neighbour's, the
 *     adjacency stays Full, the learned route never leaves the kernel and BIRD is never restarted;
 *   - keyed MD5 against FRR (`ip ospf message-digest-key`: what FRR 8 offers), the interoperability case.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderOspfKeyFile } from "../../components/network-services/bird";
import { Shell, type Daemon } from "../e2e/lib/exec";
import { devSite } from "../helpers/dev-site";
import { tier } from "../helpers/tier";
import { sleep, waitFor } from "../helpers/wait";
import { BirdPod } from "./bird";
import { FRR_DAEMONS, FrrInstance } from "./frr";
import { Netns } from "./netns";

const t = tier("OSPF authentication between the bird pod and its neighbours", {
  root: true,
  commands: ["ip", "unshare", "setpriv", "node", "vtysh", "bird", "birdc"],
  files: ["zebra", "ospfd"].map((d) => `${FRR_DAEMONS}/${d}`),
});

const ROUTER_ID = "10.10.0.1";
const ROUTER = "10.50.0.1";
const PEER = "10.50.0.254";
const ROGUE = "10.20.0.66";
/** The neighbour's prefix (learned), and the one the host without the key announces (inside accept). */
const LEARNED = "172.30.9.0/24";
const ROGUE_PREFIX = "172.30.66.0/24";
const KEY = "first key of the servers segment";
const NEXT_KEY = "second-key-0123456789-abcdef";
const MD5_KEY = "md5-key-16chars!";
/** BIRD's log of a dropped packet (proto/ospf/packet.c): a digest that does not match, no authentication at all. */
const WRONG_DIGEST = /Authentication failed for nbr .* - wrong authentication code/;
const NO_AUTHENTICATION = /Authentication failed for nbr .* - authentication method mismatch/;

/** The site's parsed authentication section (a next key set with it when it has one). */
function authentication(auth: Record<string, unknown>) {
  return devSite((raw) => {
    raw.routing = { ospf: { routerId: ROUTER_ID, segments: ["servers", "trusted"], authentication: auth } };
    raw.ospfKey = KEY;
    if (auth.next) raw.ospfNextKey = NEXT_KEY;
  }).site.routing.ospf!.authentication!;
}

function site(algorithm: string, key: string) {
  return devSite((raw) => {
    raw.routing = {
      ospf: {
        routerId: ROUTER_ID,
        segments: ["servers", "trusted"],
        authentication: { algorithm, keyId: 7 },
      },
    };
    raw.ospfKey = key;
  });
}

/**
 * A neighbour's BIRD, written by hand from BIRD's documentation (not from the render): OSPF on eth0 with the
 * router's timers, a short wait and a high priority (it becomes the DR at once, so the adjacency does not wait
 * for the router's election timer), announcing `prefix` from its loopback.
 */
function neighbourBird(routerId: string, prefix: string, auth: string): string {
  return `router id ${routerId};
protocol device { scan time 2; }
protocol direct { ipv4; interface "lo"; }
protocol ospf v2 {
  ipv4 { import none; export where net = ${prefix}; };
  area 0.0.0.0 {
    interface "eth0" { hello 10; dead 40; wait 2; priority 200; ${auth} };
  };
}
`;
}
/** A neighbour's password, by hand: `sent: false` ends its generation in the past (BIRD's `generate to`). */
const peerPassword = (key: string, id: number, sent = true) =>
  `password "${key}" { id ${id}; algorithm hmac sha256;${sent ? "" : ' generate to "2000-01-01 00:00:00";'} };`;
const hmac = (key: string) => `authentication cryptographic; ${peerPassword(key, 7)}`;
const OSPF_DEAD = 40;

interface Neighbour {
  routerId: string;
  state: string;
  deadIn: number;
}

/** A birdc command's output through a BIRD's control socket. */
function birdc(socket: string, ...cmd: string[]): string {
  const r = spawnSync("birdc", ["-s", socket, ...cmd], { encoding: "utf8", timeout: 5_000 });
  return `${r.stdout}${r.stderr}`;
}

/** `birdc show ospf neighbors` of a BIRD: router id, state, seconds to dead (BIRD 2.0.12 prints seconds). */
function neighbours(socket: string): Neighbour[] {
  const out = birdc(socket, "show", "ospf", "neighbors");
  return out.split("\n").flatMap((l) => {
    const f = l.trim().split(/\s+/);
    return /^\d+\.\d+\.\d+\.\d+$/.test(f[0]) && f[2]?.includes("/")
      ? [{ routerId: f[0], state: f[2].split("/")[0], deadIn: Number(f[3]) }]
      : [];
  });
}

describe.skipIf(!t.ok)("OSPF authentication between the bird pod and its neighbours", () => {
  describe("HMAC-SHA-256 with a neighbour BIRD", () => {
    const dev = site("hmac-sha256", KEY);
    const lab = new Netns("oa");
    let shell: Shell;
    let bird: BirdPod;
    let status: Daemon;
    const peerSocket = () => join(lab.dir, "peer.ctl");
    const rogueSocket = () => join(lab.dir, "rogue.ctl");
    const kernel = (dst: string) =>
      JSON.parse(lab.exec("rtr", ["ip", "-d", "-j", "-4", "route", "show", "exact", dst]).stdout || "[]") as {
        protocol?: string;
      }[];

    beforeAll(async () => {
      shell = new Shell(lab.dir);
      lab.add("rtr", "peer", "rogue");
      lab.link("rtr", "lan0.50", "peer", "eth0");
      lab.link("rtr", "lan0.20", "rogue", "eth0");
      lab.ip("rtr", [`address add ${ROUTER}/24 dev lan0.50`, "address add 10.20.0.1/24 dev lan0.20"]);
      lab.ip("peer", [`address add ${PEER}/24 dev eth0`, "address add 172.30.9.1/24 dev lo"]);
      lab.ip("rogue", [`address add ${ROGUE}/24 dev eth0`, "address add 172.30.66.1/24 dev lo"]);
      writeFileSync(join(lab.dir, "peer.conf"), neighbourBird(PEER, LEARNED, hmac(KEY)));
      writeFileSync(
        join(lab.dir, "rogue.conf"),
        neighbourBird(ROGUE, ROGUE_PREFIX, hmac("another key of the same length")),
      );
      bird = new BirdPod(shell, lab.name("rtr"), lab.dir, dev);
      writeFileSync(bird.keyFile, renderOspfKeyFile(authentication({ keyId: 7 }), KEY), { mode: 0o400 });
      bird.start();
      await waitFor("the bird pod's socket", () => !bird.birdc("show", "status").includes("Unable"), 10_000, 100);
      status = shell.daemon("ospf-status", lab.name("rtr"), bird.statusCommand(join(lab.dir, "ospf.json"), 1));
      for (const [name, socket] of [
        ["peer", peerSocket()],
        ["rogue", rogueSocket()],
      ])
        shell.daemon(`bird-${name}`, lab.name(name), ["bird", "-f", "-c", join(lab.dir, `${name}.conf`), "-s", socket]);
    }, 60_000);

    afterAll(async () => {
      await bird?.stop(2_000);
      await shell?.daemons.stopAll();
      lab.close();
    });

    it("forms the adjacency with the neighbour that has the key and installs its prefix", async () => {
      await waitFor(
        `the neighbour Full in the router's BIRD\n${bird.daemon?.log()}`,
        () => neighbours(bird.socket).some((n) => n.routerId === PEER && n.state === "Full"),
        90_000,
        500,
      );
      await waitFor("the learned route", () => kernel(LEARNED).some((r) => r.protocol === "bird"), 20_000, 500);
    }, 120_000);

    it("never takes a host with another key, or with none, as a neighbour, installs nothing of it, and logs why", async () => {
      // BIRD's packet log names each packet it drops and why: the host's hellos (every 10 s) with the wrong key,
      // then, once its key is gone, without authentication
      const dropped =
        (why: RegExp, after = 0) =>
        () =>
          bird
            .daemon!.log()
            .split("\n")
            .slice(after)
            .some((l) => l.includes(ROGUE) && why.test(l));
      const seen = () => bird.daemon!.log().split("\n").length;
      await waitFor(`a hello with the wrong key dropped\n${bird.daemon!.log()}`, dropped(WRONG_DIGEST), 25_000, 250);
      expect(neighbours(bird.socket).map((n) => n.routerId)).not.toContain(ROGUE);
      const before = seen();
      writeFileSync(join(lab.dir, "rogue.conf"), neighbourBird(ROGUE, ROGUE_PREFIX, ""));
      expect(birdc(rogueSocket(), "configure")).toMatch(/Reconfigur/);
      await waitFor(
        `a hello without authentication dropped\n${bird.daemon!.log()}`,
        dropped(NO_AUTHENTICATION, before),
        25_000,
        250,
      );
      expect(neighbours(bird.socket).map((n) => n.routerId)).not.toContain(ROGUE);
      expect(kernel(ROGUE_PREFIX)).toEqual([]);
      expect(bird.birdc("show", "route", "protocol", "router_ospf")).not.toContain(ROGUE_PREFIX);
      // the neighbour with the key is still there
      expect(neighbours(bird.socket).find((n) => n.routerId === PEER)?.state).toBe("Full");
    }, 60_000);

    // the status container's log lines (images/services/router-ospf-status), never a key
    const count = (line: string) => status.log().split(line).length - 1;
    const CHANGED = "ospf-keys.conf changed: BIRD uses the new OSPF keys on trial";
    const statusFile = () =>
      JSON.parse(readFileSync(join(lab.dir, "ospf.json"), "utf8")) as { keys: string; since: number; uptime: number };
    const restartStatus = async () => {
      await status.stop();
      status = shell.daemon("ospf-status", lab.name("rtr"), bird.statusCommand(join(lab.dir, "ospf.json"), 1));
    };
    // the kubelet's atomic update of a Secret volume: a new file, renamed over the old one; then the status
    // container's next look at it gives BIRD the new keys on trial
    const secretFile = async (content: string, expect: string = CHANGED) => {
      const before = count(expect);
      writeFileSync(`${bird.keyFile}.new`, content, { mode: 0o400 });
      renameSync(`${bird.keyFile}.new`, bird.keyFile);
      await waitFor(`"${expect}"\n${status.log()}`, () => count(expect) > before, 10_000, 100);
      return Date.now();
    };
    const routerKeys = (auth: Record<string, unknown>, key: string, next?: string) =>
      secretFile(renderOspfKeyFile(authentication(auth), key, next));
    const peerKeys = (auth: string) => {
      writeFileSync(join(lab.dir, "peer.conf"), neighbourBird(PEER, LEARNED, auth));
      expect(birdc(peerSocket(), "configure")).toMatch(/Reconfigur/);
      return Date.now();
    };
    // a hello heard since `since` (one is sent every 10 s): the dead timer restarted after it
    const heard = async (socket: string, routerId: string, since: number, what: string) => {
      await sleep(Math.max(0, since + 12_000 - Date.now()));
      const n = neighbours(socket).find((x) => x.routerId === routerId);
      expect(n?.state, `${what}: ${JSON.stringify(neighbours(socket))}`).toBe("Full");
      expect(n!.deadIn, what).toBeGreaterThan(OSPF_DEAD - (Date.now() - since) / 1000 + 1);
    };
    /** Runs `steps` while the learned route and the router's adjacency are polled every 250 ms. */
    const held = async (steps: () => Promise<void>) => {
      let missing = 0;
      let notFull = 0;
      let polling = true;
      const poll = (async () => {
        while (polling) {
          if (!kernel(LEARNED).some((r) => r.protocol === "bird")) missing++;
          if (neighbours(bird.socket).find((n) => n.routerId === PEER)?.state !== "Full") notFull++;
          await sleep(250);
        }
      })();
      try {
        await steps();
      } finally {
        polling = false;
        await poll;
      }
      expect(missing, "polls without the learned route").toBe(0);
      expect(notFull, "polls with the neighbour not Full in the router's BIRD").toBe(0);
    };
    const refusedFromPeer = () =>
      bird
        .daemon!.log()
        .split("\n")
        .filter((l) => /Authentication failed for nbr 10\.50\.0\.254/.test(l)).length;

    it("rolls the key over without losing the adjacency: accepts the next key, sends it, then drops the old one", async () => {
      const pid = bird.pid();
      await held(async () => {
        // 1. the router accepts the next key (id 8) and still sends key 7: the neighbour, which knows only key 7,
        //    keeps hearing it
        let t = await routerKeys({ keyId: 7, next: { keyId: 8 } }, KEY, NEXT_KEY);
        await heard(peerSocket(), ROUTER_ID, t, "the neighbour with key 7 only hears the router");
        // 2. the neighbour sends key 8 (and accepts both): the router hears it
        t = peerKeys(`authentication cryptographic; ${peerPassword(KEY, 7, false)} ${peerPassword(NEXT_KEY, 8)}`);
        await heard(bird.socket, PEER, t, "the router hears the neighbour's key 8");
        // 3. the router sends key 8; the neighbour then drops key 7 and still hears it
        await routerKeys({ keyId: 7, next: { keyId: 8, send: true } }, KEY, NEXT_KEY);
        t = peerKeys(`authentication cryptographic; ${peerPassword(NEXT_KEY, 8)}`);
        await heard(peerSocket(), ROUTER_ID, t, "the neighbour with key 8 only hears the router");
        // 4. key 8 is the router's only key
        t = await routerKeys({ keyId: 8 }, NEXT_KEY);
        await heard(peerSocket(), ROUTER_ID, t, "the neighbour hears the router with key 8 alone");
        await heard(bird.socket, PEER, t, "the router hears the neighbour with key 8 alone");
        // the trial (restarted by each change) ends: the neighbour heard and Full a dead and a hello interval on
        await waitFor(`the keys confirmed\n${status.log()}`, () => statusFile().keys === "confirmed", 60_000, 500);
      });
      expect(status.log()).toMatch(/new OSPF keys confirmed: 10\.50\.0\.254 heard and Full/);
      expect(bird.pid(), "BIRD was not restarted").toBe(pid);
      expect(refusedFromPeer(), "packets of the neighbour refused").toBe(0);
      expect(status.log()).not.toContain(NEXT_KEY);
      expect(status.log()).not.toContain(KEY);
    }, 180_000);

    it("brings the previous keys back before the adjacency ends when the neighbour does not have the new one", async () => {
      const pid = bird.pid();
      await held(async () => {
        // a key of its own (id 9) given at once: the neighbour still sends and accepts only key 8
        const t = await routerKeys({ keyId: 9 }, "a third key the neighbour never got");
        await waitFor(`the keys reverted\n${status.log()}`, () => statusFile().keys === "reverted", 40_000, 250);
        // reverted within a hello interval and 2 s (and the status container's second), well before the
        // neighbour's dead interval
        expect(Date.now() - t).toBeLessThan(16_000);
        expect(status.log()).toMatch(
          /OSPF keys REVERTED after [\d.]+s: no hello from 10\.50\.0\.254 accepted with the new keys of .*ospf-keys\.conf/,
        );
        // the trial was real: BIRD refused the neighbour's key-8 packets while it had key 9 alone
        expect(refusedFromPeer(), "packets of the neighbour refused during the trial").toBeGreaterThan(0);
        const after = refusedFromPeer();
        const back = Date.now();
        await heard(peerSocket(), ROUTER_ID, back, "the neighbour hears the router with key 8 again");
        await heard(bird.socket, PEER, back, "the router hears the neighbour with key 8 again");
        expect(refusedFromPeer(), "packets of the neighbour refused after the revert").toBe(after);
        // a restarted status container (a log of its own) remembers the verdict (the pod's run directory): the
        // Secret's key 9 is not tried again
        const last = statusFile().uptime;
        await restartStatus();
        await waitFor("a status of the new container", () => statusFile().since > last, 5_000, 100);
        await sleep(3_000);
        expect(statusFile().keys).toBe("reverted");
        expect(count(CHANGED), status.log()).toBe(0);
      });
      expect(bird.pid(), "BIRD was not restarted").toBe(pid);
      const confirmed = readFileSync(bird.activeKeyFile, "utf8");
      // a trial the status container did not finish (it restarted) is undone, then tried anew
      await routerKeys({ keyId: 8, next: { keyId: 9 } }, NEXT_KEY, "a third key the neighbour never got");
      expect(readFileSync(bird.activeKeyFile, "utf8")).not.toBe(confirmed);
      await restartStatus();
      await waitFor(`the trial undone and tried anew\n${status.log()}`, () => count(CHANGED) > 0, 10_000, 100);
      expect(status.log()).toMatch(
        /an unfinished trial of new OSPF keys was undone[^\n]*\n(.*\n)*.*ospf-keys\.conf changed: BIRD uses the new OSPF keys on trial/,
      );
      // a file BIRD cannot read is refused at once, and the keys last confirmed stay
      await secretFile('password "unterminated { id 10; };\n', "BIRD REFUSED the OSPF keys of");
      expect(statusFile().keys).toBe("refused");
      expect(readFileSync(bird.activeKeyFile, "utf8")).toBe(confirmed);
      expect(status.log()).not.toContain("a third key");
    }, 150_000);
  });

  describe("keyed MD5 with an FRR neighbour", () => {
    const dev = site("keyed-md5", MD5_KEY);
    const lab = new Netns("om");
    let shell: Shell;
    let bird: BirdPod;
    const peer = new FrrInstance(lab, "peer", lab.name("frrp"));

    beforeAll(async () => {
      shell = new Shell(lab.dir);
      lab.add("rtr", "peer");
      lab.link("rtr", "lan0.50", "peer", "eth0");
      lab.ip("rtr", [`address add ${ROUTER}/24 dev lan0.50`]);
      lab.ip("peer", [`address add ${PEER}/24 dev eth0`, "address add 172.30.9.1/24 dev lo"]);
      // FRR's own syntax (ospfd's interface commands), written here
      const conf = [
        "frr defaults traditional",
        "hostname peer",
        "interface eth0",
        " ip ospf area 0.0.0.0",
        " ip ospf priority 200",
        " ip ospf authentication message-digest",
        ` ip ospf message-digest-key 7 md5 ${MD5_KEY}`,
        "!",
        "router ospf",
        ` ospf router-id ${PEER}`,
        " redistribute connected",
        "!",
        "",
      ].join("\n");
      // ospfd runs as the frr user: it must reach the file
      chmodSync(lab.dir, 0o755);
      writeFileSync(join(lab.dir, "peer.conf"), conf, { mode: 0o644 });
      bird = new BirdPod(shell, lab.name("rtr"), lab.dir, dev);
      writeFileSync(bird.keyFile, renderOspfKeyFile(dev.site.routing.ospf!.authentication!, MD5_KEY), { mode: 0o400 });
      bird.start();
      peer.start(["zebra", "ospfd"], join(lab.dir, "peer.conf"));
    }, 60_000);

    afterAll(async () => {
      await bird?.stop(2_000);
      await shell?.daemons.stopAll();
      peer.stop();
      lab.close();
    });

    it("forms the adjacency and installs the neighbour's prefix", async () => {
      await waitFor(
        `FRR Full in the router's BIRD\n${bird.daemon?.log()}\n${lab.exec("peer", ["vtysh", "-N", lab.name("frrp"), "-c", "show ip ospf neighbor"], false).out}\n${bird.birdc("show", "ospf", "interface")}`,
        () => neighbours(bird.socket).some((n) => n.routerId === PEER && n.state === "Full"),
        100_000,
        500,
      );
      const learned = () =>
        JSON.parse(lab.exec("rtr", ["ip", "-d", "-j", "-4", "route", "show", "exact", LEARNED]).stdout || "[]") as {
          protocol?: string;
        }[];
      await waitFor("the learned route", () => learned().some((r) => r.protocol === "bird"), 20_000, 500);
    }, 130_000);
  });
});
