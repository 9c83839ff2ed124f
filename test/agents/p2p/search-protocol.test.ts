/**
 * `/muri/search/3.0.0` sessions between two real libp2p nodes (TCP, TLS, yamux) in this process:
 * many requests share one stream and are answered out of order by id; a slow request times out
 * without breaking the session; a closed connection is replaced by a new session; an idle session
 * closes; a listener reads at most maxConcurrent requests of a stream at once; an answer to a
 * request never sent is a violation that fails what was waiting. A handler's bytes travel as a
 * binary frame (flag bit set) and reach the dialer as bytes; a binary request frame is answered
 * with an error and the session carries on.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import type { Stream } from "@libp2p/interface";
import { RequestTimeoutError, SEARCH_PROTOCOL, StreamClosedError, createP2PNode, handleSearchProtocol, searchRequest, type P2PNode } from "../../../agents/p2p/index.js";
import { MemoryFragmentStore } from "./fixtures.js";

const node = (): Promise<P2PNode> => {
  const store = new MemoryFragmentStore();
  return createP2PNode({ source: store, sink: store });
};

describe("search protocol sessions", { timeout: 120_000 }, () => {
  let server: P2PNode;
  let client: P2PNode;
  let running = 0;
  let mostAtOnce = 0;

  const searchStreams = (): number =>
    client.libp2p
      .getConnections(server.peerId)
      .flatMap((c) => c.streams)
      .filter((s) => s.protocol === SEARCH_PROTOCOL && s.status === "open").length;

  before(async () => {
    server = await node();
    client = await node();
    await Promise.all([server.start(), client.start()]);
    await handleSearchProtocol(
      server.libp2p,
      async (request) => {
        const r = request as { delayMs?: number; n?: number; fail?: boolean; bytes?: number };
        running++;
        mostAtOnce = Math.max(mostAtOnce, running);
        try {
          if (r.delayMs !== undefined) await sleep(r.delayMs);
          if (r.fail === true) throw Object.assign(new Error("no such Magu"), { code: "ERR_TEST" });
          if (r.bytes !== undefined) return Uint8Array.from({ length: r.bytes }, (_, i) => i % 251);
          return { ok: true, n: r.n };
        } finally {
          running--;
        }
      },
      { maxConcurrent: 4 },
    );
    await client.addPeers(server.multiaddrs.map(String));
  });

  after(async () => {
    await Promise.all([client?.stop(), server?.stop()]);
  });

  it("answers concurrent requests on one stream, each by its id, in the order they finish", async () => {
    mostAtOnce = 0;
    const order: number[] = [];
    const answers = await Promise.all(
      Array.from({ length: 12 }, async (_, n) => {
        const answer = (await searchRequest(client.libp2p, server.peerId, { n, delayMs: (12 - n) * 15 })) as { n: number };
        order.push(answer.n);
        return answer.n;
      }),
    );
    assert.deepEqual(answers, Array.from({ length: 12 }, (_, n) => n), "every request got its own answer");
    assert.notDeepEqual(order, [...order].sort((a, b) => a - b), "answers came back out of order");
    assert.equal(searchStreams(), 1, "one stream carried them all");
    assert.ok(mostAtOnce <= 4, `the listener ran ${mostAtOnce} at once, its limit is 4`);
    assert.ok(mostAtOnce >= 2, "requests ran concurrently");
    const error = (await searchRequest(client.libp2p, server.peerId, { fail: true })) as { ok: boolean; error: string; code: string };
    assert.deepEqual(error, { ok: false, error: "no such Magu", code: "ERR_TEST" });
    assert.equal(searchStreams(), 1);
  });

  it("a handler's bytes are a binary answer; a binary request frame is answered with an error, and the session goes on", async () => {
    const answer = await searchRequest(client.libp2p, server.peerId, { bytes: 70_000 });
    assert.ok(answer instanceof Uint8Array, "bytes come back as bytes");
    assert.equal(answer.length, 70_000);
    assert.ok(answer.every((b, i) => b === i % 251));
    assert.equal(((await searchRequest(client.libp2p, server.peerId, { bytes: 0 })) as Uint8Array).length, 0, "an empty binary answer");

    // A raw session that sends a binary request frame (flag bit set), then a JSON one.
    const stream = await client.libp2p.dialProtocol(server.peerId, SEARCH_PROTOCOL);
    const got: Buffer[] = [];
    stream.addEventListener("message", (e) => got.push(Buffer.from((e as unknown as { data: { subarray(): Uint8Array } }).data.subarray())));
    const frame = (id: number, body: Buffer, binary: boolean): Buffer => {
      const head = Buffer.alloc(8);
      head.writeUInt32BE(id, 0);
      head.writeUInt32BE((binary ? 0x8000_0000 : 0) + body.length, 4);
      return Buffer.concat([head, body]);
    };
    stream.send(frame(1, Buffer.from([1, 2, 3, 0xff]), true));
    stream.send(frame(2, Buffer.from(JSON.stringify({ n: 9 })), false));
    const answers = new Map<number, unknown>();
    for (let i = 0; i < 100 && answers.size < 2; i++) {
      await sleep(20);
      const all = Buffer.concat(got);
      answers.clear();
      for (let o = 0; o + 8 <= all.length; ) {
        const length = all.readUInt32BE(o + 4);
        if (o + 8 + length > all.length) break;
        answers.set(all.readUInt32BE(o), JSON.parse(all.toString("utf8", o + 8, o + 8 + length)));
        o += 8 + length;
      }
    }
    const refused = answers.get(1) as { ok: boolean; error: string };
    assert.equal(refused.ok, false);
    assert.match(refused.error, /request 1 is a binary frame of 4 bytes: requests on \/muri\/search\/3\.0\.0 are JSON/);
    assert.deepEqual(answers.get(2), { ok: true, n: 9 }, "the same session answers the next request");
    await stream.close();
  });

  it("a request past its deadline fails alone; the session carries the next one", async () => {
    await assert.rejects(searchRequest(client.libp2p, server.peerId, { n: 1, delayMs: 400 }, { limits: { timeoutMs: 100 } }), RequestTimeoutError);
    assert.deepEqual(await searchRequest(client.libp2p, server.peerId, { n: 2 }), { ok: true, n: 2 });
    await sleep(500); // the late answer to the first request arrives and is dropped
    assert.deepEqual(await searchRequest(client.libp2p, server.peerId, { n: 3 }), { ok: true, n: 3 });
    assert.equal(searchStreams(), 1);
  });

  it("after the connection closes, the next request opens a new session", async () => {
    await client.libp2p.hangUp(server.peerId);
    assert.deepEqual(await searchRequest(client.libp2p, server.peerId, { n: 4 }), { ok: true, n: 4 });
    assert.equal(searchStreams(), 1);
  });

  it("an idle session is closed, and reopened on demand", async () => {
    const limits = { sessionIdleMs: 150 };
    const other = await node();
    await other.start();
    try {
      await other.addPeers(server.multiaddrs.map(String));
      assert.deepEqual(await searchRequest(other.libp2p, server.peerId, { n: 5 }, { limits }), { ok: true, n: 5 });
      const open = (): number => other.libp2p.getConnections(server.peerId).flatMap((c) => c.streams).filter((s) => s.protocol === SEARCH_PROTOCOL && s.status === "open").length;
      assert.equal(open(), 1);
      for (let i = 0; i < 40 && open() > 0; i++) await sleep(50);
      assert.equal(open(), 0, "closed after being idle");
      assert.deepEqual(await searchRequest(other.libp2p, server.peerId, { n: 6 }, { limits }), { ok: true, n: 6 });
    } finally {
      await other.stop();
    }
  });

  it("an answer to a request never sent fails the waiting request and closes the session", async () => {
    const rogue = await node();
    await rogue.start();
    try {
      // A listener that answers every request as request 999.
      await rogue.libp2p.handle(SEARCH_PROTOCOL, (stream: Stream) => {
        stream.addEventListener(
          "message",
          () => {
            const body = Buffer.from(JSON.stringify({ ok: true }));
            const frame = Buffer.alloc(8 + body.length);
            frame.writeUInt32BE(999, 0);
            frame.writeUInt32BE(body.length, 4);
            body.copy(frame, 8);
            stream.send(frame);
          },
          { once: true },
        );
      });
      await client.addPeers(rogue.multiaddrs.map(String));
      await assert.rejects(searchRequest(client.libp2p, rogue.peerId, { n: 7 }), (err: unknown) => {
        assert.ok(err instanceof StreamClosedError, String(err));
        assert.match(String((err as Error).cause), /answer to request 999, which was never sent/);
        return true;
      });
    } finally {
      await rogue.stop();
    }
  });
});
