/**
 * The transports a node offers (`P2PNodeInit.transports`): the default settles on TLS 1.3 with a
 * peer like itself, still exchanges fragments with a peer that only speaks noise, and QUIC works
 * when both sides offer it; a `/ws` listen address (how browsers reach a node) serves fragments over
 * WebSockets. An empty, unknown or repeated transport is refused up front.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { FRAGMENT_SIZE } from "../../../agents/data/constants.js";
import { fragmentCid } from "../../../agents/data/cid.js";
import { DEFAULT_TRANSPORTS, InvalidTransportError, createP2PNode, type P2PNode, type TransportName } from "../../../agents/p2p/index.js";
import { MemoryFragmentStore, fragmentFromSeed } from "./fixtures.js";

interface Peer {
  node: P2PNode;
  store: MemoryFragmentStore;
}

async function peer(transports?: TransportName[]): Promise<Peer> {
  const store = new MemoryFragmentStore();
  const node = await createP2PNode({ source: store, sink: store, ...(transports !== undefined ? { transports } : {}) });
  await node.start();
  return { node, store };
}

/** The encrypter the two nodes' connection negotiated (undefined for QUIC, which has its own). */
function encryption(from: P2PNode, to: P2PNode): string | undefined {
  const [connection] = from.libp2p.getConnections(to.peerId);
  assert.ok(connection !== undefined, "the nodes are not connected");
  return connection.encryption;
}

describe("p2p transports", { timeout: 300_000 }, () => {
  let modern: Peer;
  let other: Peer;
  let noiseOnly: Peer;
  let quicOnly: Peer;
  let everything: Peer;

  before(async () => {
    [modern, other, noiseOnly, quicOnly, everything] = await Promise.all([
      peer(),
      peer(),
      peer(["tcp-noise"]),
      peer(["quic"]),
      peer(["tcp-tls", "tcp-noise", "quic"]),
    ]);
  });

  after(async () => {
    await Promise.all([modern, other, noiseOnly, quicOnly, everything].map((p) => p?.node.stop()));
  });

  it("offers TLS first and noise as the fallback by default", () => {
    assert.deepEqual([...DEFAULT_TRANSPORTS], ["tcp-tls", "tcp-noise"]);
  });

  it("uses TLS 1.3 between two nodes with the default transports", async () => {
    const bytes = fragmentFromSeed("tls", FRAGMENT_SIZE);
    const cid = fragmentCid(bytes);
    other.store.put(cid, bytes);
    assert.deepEqual(await modern.node.fetchFragment(other.node.multiaddrs[0], cid), bytes);
    assert.equal(encryption(modern.node, other.node), "/tls/1.0.0");
  });

  it("exchanges fragments both ways with a node that only offers noise", async () => {
    const fromNoise = fragmentFromSeed("from-noise", FRAGMENT_SIZE);
    noiseOnly.store.put(fragmentCid(fromNoise), fromNoise);
    // The default node dials the noise-only one...
    assert.deepEqual(await modern.node.fetchFragment(noiseOnly.node.multiaddrs[0], fragmentCid(fromNoise)), fromNoise);
    assert.equal(encryption(modern.node, noiseOnly.node), "/noise");
    const pushed = fragmentFromSeed("pushed-to-noise", 300_000);
    await modern.node.pushFragment(noiseOnly.node.peerId, fragmentCid(pushed), pushed);
    assert.equal(noiseOnly.store.has(fragmentCid(pushed)), true);

    // ...and the noise-only node dials a default one (the listener picks noise from its list).
    const fromDefault = fragmentFromSeed("from-default", FRAGMENT_SIZE);
    other.store.put(fragmentCid(fromDefault), fromDefault);
    assert.deepEqual(await noiseOnly.node.fetchFragment(other.node.multiaddrs[0], fragmentCid(fromDefault)), fromDefault);
    assert.equal(encryption(noiseOnly.node, other.node), "/noise");
  });

  it("listens on TCP and QUIC when offered both, and a QUIC-only node fetches over QUIC", async () => {
    const addrs = everything.node.multiaddrs.map(String);
    assert.ok(addrs.some((a) => a.includes("/tcp/")), addrs.join(" "));
    const quicAddr = addrs.find((a) => a.includes("/quic-v1"));
    assert.ok(quicAddr !== undefined, addrs.join(" "));
    const bytes = fragmentFromSeed("quic", FRAGMENT_SIZE);
    everything.store.put(fragmentCid(bytes), bytes);
    assert.deepEqual(await quicOnly.node.fetchFragment(quicAddr, fragmentCid(bytes)), bytes);
  });

  it("listens on WebSockets beside TCP when asked, and a peer fetches over them", async () => {
    const store = new MemoryFragmentStore();
    const ws = await createP2PNode({ source: store, sink: store, listen: ["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/0/ws"] });
    await ws.start();
    try {
      const wsAddr = ws.multiaddrs.map(String).find((a) => a.includes("/ws/"));
      assert.ok(wsAddr !== undefined, ws.multiaddrs.join(" "));
      const bytes = fragmentFromSeed("websockets", FRAGMENT_SIZE);
      store.put(fragmentCid(bytes), bytes);
      assert.deepEqual(await modern.node.fetchFragment(wsAddr, fragmentCid(bytes)), bytes);
      const [connection] = modern.node.libp2p.getConnections(ws.peerId);
      assert.match(connection!.remoteAddr.toString(), /\/ws(\/|$)/, "the connection runs over WebSockets");
    } finally {
      await ws.stop();
    }
  });

  it("refuses an empty, unknown or repeated transport", async () => {
    const store = new MemoryFragmentStore();
    await assert.rejects(createP2PNode({ source: store, sink: store, transports: [] }), InvalidTransportError);
    await assert.rejects(createP2PNode({ source: store, sink: store, transports: ["udp" as TransportName] }), InvalidTransportError);
    await assert.rejects(createP2PNode({ source: store, sink: store, transports: ["tcp-tls", "tcp-tls"] }), InvalidTransportError);
  });
});
