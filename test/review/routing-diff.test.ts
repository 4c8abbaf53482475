/**
 * `npm run diff`'s dynamic routing section (cli/review-diff.ts): from the network services' review facts of two
 * renders of the dev site with OSPF, whether a change restarts BIRD and which adjacencies the services' rollout
 * gate then holds, and the segments OSPF starts or stops on.
 */
import { describe, expect, it } from "vitest";
import { semanticDiff } from "../../cli/review-diff";
import { collectReview } from "../../components/review";
import { renderServicesFacts } from "../../components/network-services/review";
import { daemonNames } from "../../components/network-services/k8s";
import { devSite, type Raw } from "../helpers/dev-site";
import { withOspf } from "../helpers/lifecycle-fixtures";

function review(edit?: (raw: Raw) => void): Map<string, string> {
  const s = devSite(edit);
  const facts = renderServicesFacts(s.site, s.plan, s.policy, daemonNames(s.site, s.plan, s.policy));
  return new Map([["review.json", JSON.stringify(collectReview([facts]))]]);
}

function lines(before: (raw: Raw) => void, after: (raw: Raw) => void): string[] {
  return semanticDiff(review(before), review(after)).find((x) => x.title === "Dynamic routing (OSPF)")?.lines ?? [];
}

const ospf = (edit: (o: Raw) => void) => (raw: Raw) => {
  withOspf(raw);
  edit(raw.routing.ospf);
};

describe("the dynamic routing section of npm run diff", () => {
  it("says an area change restarts BIRD, which neighbours must come back, and that they must be in the new area", () => {
    expect(
      lines(
        withOspf,
        ospf((o) => (o.area = "0.0.0.1")),
      ),
    ).toEqual([
      "BIRD RESTARTS with a new configuration: every neighbour Full on trusted (lan0.20), servers (lan0.50) must be Full again within 50 s, or BIRD is rolled back (the services' rollout gate)",
      "OSPF area 0.0.0.0 → 0.0.0.1: every neighbour must be in the new area, or BIRD is rolled back",
    ]);
  });

  it("says which adjacencies end when a segment is made passive, and holds only the others", () => {
    expect(
      lines(
        withOspf,
        ospf((o) => {
          o.segments = ["trusted"];
          o.passive = ["servers"];
        }),
      ),
    ).toEqual([
      "BIRD RESTARTS with a new configuration: every neighbour Full on trusted (lan0.20) must be Full again within 50 s, or BIRD is rolled back (the services' rollout gate)",
      "OSPF adjacencies end on servers (lan0.50): no longer an active OSPF segment",
      "advertised without neighbours (passive): servers (lan0.50)",
    ]);
  });

  it("names what OSPF starts redistributing", () => {
    const statics = (raw: Raw) => {
      withOspf(raw);
      raw.routes = [{ destination: "172.20.99.0/24", gateway: "10.50.0.254" }];
      raw.routing.ospf.redistribute = ["connected", "static"];
    };
    expect(lines(withOspf, statics)).toContain("OSPF now redistributes static routes");
  });

  it("says where OSPF starts and when it ends", () => {
    expect(lines(() => undefined, withOspf)).toEqual([
      "OSPF starts: BIRD runs in area 0.0.0.0 on trusted (lan0.20), servers (lan0.50)",
    ]);
    expect(lines(withOspf, () => undefined)).toEqual([
      "OSPF ENDS: BIRD is removed, and with it every adjacency (trusted (lan0.20), servers (lan0.50))",
    ]);
  });

  it("says when OSPF authentication starts, changes and ends, never showing the key", () => {
    const KEY = "the key of the area, secret";
    const NEXT = "the next key of the area, secret";
    const auth =
      (authentication: Raw, key = KEY) =>
      (raw: Raw) => {
        withOspf(raw);
        raw.routing.ospf.authentication = authentication;
        raw.ospfKey = key;
        if (authentication.next) raw.ospfNextKey = NEXT;
      };
    const restart =
      "BIRD RESTARTS with a new configuration: every neighbour Full on trusted (lan0.20), servers (lan0.50) must be Full again within 50 s, or BIRD is rolled back (the services' rollout gate)";
    expect(lines(withOspf, auth({}))).toEqual([
      restart,
      "OSPF authentication none → hmac-sha256, key id 1: every neighbour needs the same algorithm, key id and key (router:ospfKey), or its adjacency ends (and BIRD is rolled back where it was Full)",
    ]);
    // the keys live in BIRD's Secret, taken in place on a trial: no restart, but the previous keys come back unless the
    // neighbours change at once
    expect(lines(auth({}), auth({ algorithm: "hmac-sha512", keyId: 2 }))).toEqual([
      "OSPF key changes at once (hmac-sha256, key id 1 → hmac-sha512, key id 2): every neighbour needs the new algorithm, key id and key at the same time, or the router brings the previous keys back when its trial fails (without that risk: routing.ospf.authentication.next, docs/operations.md)",
    ]);
    expect(lines(auth({}), withOspf)).toEqual([
      restart,
      "OSPF AUTHENTICATION OFF (was hmac-sha256, key id 1): any host on trusted (lan0.20), servers (lan0.50) can speak OSPF to the router",
    ]);
    // a new key alone changes no plain fact: BIRD reads it from its Secret without a restart
    expect(lines(auth({}), auth({}, "another key of the area, secret"))).toEqual([]);
    expect(JSON.stringify([...review(auth({}))])).not.toContain(KEY);
  });

  it("reads a key rollover step by step: accept the next key, send it, then drop the old one", () => {
    const auth = (authentication: Raw, key: string) => (raw: Raw) => {
      withOspf(raw);
      raw.routing.ospf.authentication = authentication;
      raw.ospfKey = key;
      if (authentication.next) raw.ospfNextKey = "the next key of the area, secret";
    };
    const old = auth({ keyId: 1 }, "the old key of the area, secret");
    const accept = auth({ keyId: 1, next: { keyId: 2 } }, "the old key of the area, secret");
    const send = auth({ keyId: 1, next: { keyId: 2, send: true } }, "the old key of the area, secret");
    const done = auth({ keyId: 2 }, "the next key of the area, secret");
    expect(lines(old, accept)).toEqual([
      "OSPF accepts key id 2 (hmac-sha256) besides key id 1 (hmac-sha256), which it still sends: no adjacency changes",
    ]);
    expect(lines(accept, send)).toEqual([
      "OSPF now SENDS key id 2 (hmac-sha256) instead of key id 1 (hmac-sha256): every neighbour must already accept key id 2 (hmac-sha256), or it drops the router after 40 s and the trial brings the previous keys back",
    ]);
    expect(lines(send, done)).toEqual([
      "OSPF no longer accepts key id 1 (hmac-sha256): a neighbour still sending it is not heard, and the trial brings the previous keys back",
    ]);
    // skipping the step that sends the next key: the neighbours that still send the old one are dropped
    expect(lines(accept, done)).toEqual([
      "OSPF now SENDS key id 2 (hmac-sha256) instead of key id 1 (hmac-sha256): every neighbour must already accept key id 2 (hmac-sha256), or it drops the router after 40 s and the trial brings the previous keys back",
      "OSPF no longer accepts key id 1 (hmac-sha256): a neighbour still sending it is not heard, and the trial brings the previous keys back",
    ]);
    // a change of algorithm rolls over the same way
    const md5 = auth({ algorithm: "keyed-md5", keyId: 1 }, "md5 key 16 chars");
    const toHmac = auth(
      { algorithm: "keyed-md5", keyId: 1, next: { keyId: 2, algorithm: "hmac-sha256" } },
      "md5 key 16 chars",
    );
    expect(lines(md5, toHmac)).toEqual([
      "OSPF accepts key id 2 (hmac-sha256) besides key id 1 (keyed-md5), which it still sends: no adjacency changes",
    ]);
    // none of these steps restarts BIRD
    for (const [a, b] of [
      [old, accept],
      [accept, send],
      [send, done],
    ])
      expect(lines(a, b).join("\n")).not.toContain("RESTARTS");
  });

  it("has no section when BIRD's configuration does not change", () => {
    const ntp = (raw: Raw) => {
      withOspf(raw);
      raw.ntp = { ...(raw.ntp ?? {}), servers: ["162.159.200.1"] };
    };
    expect(lines(withOspf, ntp)).toEqual([]);
  });
});
