/**
 * Behaviour of one node talking to another in the same process: error answers, deadlines,
 * cancellation, push policy and metrics. (Cross-process exchange is in fragment-exchange.test.ts.)
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Registry } from "prom-client";
import { fragmentCid } from "../../../agents/data/cid.js";
import {
  FRAGMENT_PROTOCOL,
  InvalidFragmentError,
  InvalidMultiaddrError,
  NodeNotStartedError,
  RemoteRefusedError,
  RemoteTooLargeError,
  RequestAbortedError,
  RequestTimeoutError,
  createP2PNode,
  type P2PNode,
} from "../../../agents/p2p/index.js";
import { MemoryFragmentStore, fragmentFromSeed } from "./fixtures.js";

describe("p2p node (in process)", { timeout: 300_000 }, () => {
  const registry = new Registry();
  const serverStore = new MemoryFragmentStore();
  const clientStore = new MemoryFragmentStore();
  let server: P2PNode;
  let hanging: P2PNode;
  let quick: P2PNode;
  let client: P2PNode;
  const quickStore = new MemoryFragmentStore();
  let releaseHang: () => void = () => {};
  const hang = new Promise<void>((resolve) => {
    releaseHang = resolve;
  });

  before(async () => {
    server = await createP2PNode({
      source: serverStore,
      sink: {
        put: (cid, bytes) => {
          if (bytes.length > 10_000) throw new Error("quota exceeded");
          serverStore.put(cid, bytes);
        },
      },
      acceptPush: ({ length }) => length !== 777,
      metricsRegistry: registry,
    });
    // Claims every fragment but never produces one: fetches from it can only end by timeout.
    hanging = await createP2PNode({
      source: { has: () => true, get: async () => (await hang, new Uint8Array()) },
      sink: new MemoryFragmentStore(),
    });
    quick = await createP2PNode({ source: quickStore, sink: quickStore, limits: { streamIdleTimeoutMs: 200 } });
    client = await createP2PNode({ source: clientStore, sink: clientStore, metricsRegistry: registry });
    await Promise.all([server.start(), hanging.start(), quick.start(), client.start()]);
  });

  after(async () => {
    releaseHang();
    await Promise.all([server?.stop(), hanging?.stop(), quick?.stop(), client?.stop()]);
  });

  it("refuses to work before start", async () => {
    const store = new MemoryFragmentStore();
    const idle = await createP2PNode({ source: store, sink: store });
    const cid = fragmentCid(new Uint8Array(1));
    await assert.rejects(idle.fetchFragment(server.peerId, cid), NodeNotStartedError);
    await assert.rejects(idle.provide(cid), NodeNotStartedError);
  });

  it("answers too-large when the fragment exceeds what the fetcher accepts", async () => {
    const bytes = fragmentFromSeed("big", 5000);
    const cid = fragmentCid(bytes);
    serverStore.put(cid, bytes);
    await assert.rejects(client.fetchFragment(server.multiaddrs[0], cid, { maxBytes: 4999 }), RemoteTooLargeError);
    assert.equal((await client.fetchFragment(server.peerId, cid, { maxBytes: 5000 })).length, 5000);
  });

  it("reports a push the policy declines, and one the sink fails to store, as refused", async () => {
    const declined = fragmentFromSeed("declined", 777);
    await assert.rejects(client.pushFragment(server.multiaddrs[0], fragmentCid(declined), declined), RemoteRefusedError);
    const tooBig = fragmentFromSeed("quota", 20_000);
    await assert.rejects(client.pushFragment(server.multiaddrs[0], fragmentCid(tooBig), tooBig), (err: unknown) =>
      err instanceof RemoteRefusedError && /quota exceeded/.test(err.context.reason),
    );
    assert.equal(serverStore.has(fragmentCid(tooBig)), false);
  });

  it("will not push bytes that do not match the CID", async () => {
    const bytes = fragmentFromSeed("mine", 100);
    await assert.rejects(client.pushFragment(server.multiaddrs[0], fragmentCid(new Uint8Array(1)), bytes), InvalidFragmentError);
  });

  it("bounds a fetch by its deadline and by the caller's signal", async () => {
    const cid = fragmentCid(new Uint8Array([42]));
    await assert.rejects(client.fetchFragment(hanging.multiaddrs[0], cid, { timeoutMs: 300 }), RequestTimeoutError);
    const controller = new AbortController();
    const pending = client.fetchFragment(hanging.multiaddrs[0], cid, { signal: controller.signal, timeoutMs: 10_000 });
    controller.abort(new Error("user gave up"));
    await assert.rejects(pending, RequestAbortedError);
  });

  it("reuses one stream for back-to-back requests to a peer", async () => {
    const bytes = fragmentFromSeed("reused", 2048);
    const cid = fragmentCid(bytes);
    serverStore.put(cid, bytes);
    for (let i = 0; i < 5; i++) assert.equal((await client.fetchFragment(server.peerId, cid)).length, 2048);
    const streams = client.libp2p.getConnections(server.peerId).flatMap((c) => c.streams).filter((st) => st.protocol === FRAGMENT_PROTOCOL);
    assert.equal(streams.length, 1);
  });

  it("opens a fresh stream when the listener closed the idle one", async () => {
    const bytes = fragmentFromSeed("idle", 2048);
    const cid = fragmentCid(bytes);
    quickStore.put(cid, bytes);
    await client.fetchFragment(quick.multiaddrs[0], cid);
    const [parked] = client.libp2p.getConnections(quick.peerId).flatMap((c) => c.streams).filter((st) => st.protocol === FRAGMENT_PROTOCOL);
    assert.ok(parked !== undefined);
    await new Promise<void>((resolve, reject) => {
      // The listener closes it after 200 ms idle; 30 s bounds a failure only.
      const timer = setTimeout(() => reject(new Error("the listener kept the idle stream open")), 30_000);
      parked.addEventListener("close", () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
    assert.equal((await client.fetchFragment(quick.peerId, cid)).length, 2048);
  });

  it("rejects peer multiaddrs without a peer id", async () => {
    await assert.rejects(client.addPeers(["/ip4/127.0.0.1/tcp/1"]), InvalidMultiaddrError);
    await assert.rejects(client.addPeers(["not a multiaddr"]), InvalidMultiaddrError);
    assert.deepEqual((await client.addPeers(server.multiaddrs)).map(String), [server.peerId.toString()]);
  });

  it("counts transfers in muri_p2p_* metrics", async () => {
    const bytes = fragmentFromSeed("counted", 1234);
    const cid = fragmentCid(bytes);
    await client.pushFragment(server.peerId, cid, bytes);
    await client.fetchFragment(server.peerId, cid);
    const text = await registry.metrics();
    assert.match(text, /muri_p2p_fragments_total\{direction="pushed"\} [1-9]/);
    assert.match(text, /muri_p2p_fragments_total\{direction="received"\} [1-9]/);
    assert.match(text, /muri_p2p_fragments_total\{direction="served"\} [1-9]/);
    assert.match(text, /muri_p2p_requests_failed_total\{op="fetch",code="ERR_P2P_REMOTE_TOO_LARGE"\} 1/);
  });

  it("serves libp2p's own metrics beside them (@libp2p/prometheus-metrics)", async () => {
    const text = await registry.metrics();
    assert.match(text, /^libp2p_connection_manager_connections\{libp2p_connection_manager_connections="(inbound|outbound)"\} [1-9]/m, "open connections");
    assert.match(text, /^libp2p_data_transfer_bytes_total\{protocol="\/muri\/fragment\/1\.0\.0 (sent|received)"\} [1-9]/m, "bytes per protocol");
    assert.match(text, /^libp2p_protocol_streams_total\{protocol="inbound \/muri\/fragment\/1\.0\.0"\} [1-9]/m, "streams per protocol");
    assert.match(text, /^process_cpu_seconds_total [0-9.]+$/m, "the process's CPU");
    assert.match(text, /^nodejs_eventloop_lag_seconds [0-9.e-]+$/m, "event-loop lag");
  });
});
