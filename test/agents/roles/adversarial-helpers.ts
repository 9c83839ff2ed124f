/**
 * Shared set-up of the adversarial agent tests (adversarial-*.test.ts): a real `hardhat node` with
 * the contracts, storage nodes made of the real parts (LevelDB meta DB and fragment store on disk,
 * Magu index, Magu sync as push policy and sink, a libp2p node on 127.0.0.1) registered on chain
 * with their real peer id and address, blob Magus created and formed from a client account, and
 * hostile libp2p peers that serve whatever bytes they are given.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createTestClient, getAddress, http, type Address, type Hex } from "viem";
import type { CID } from "multiformats/cid";
import { ackTypedData, batchDomain, getMuriContracts, type BatchAck, type Deployment, type MuriContracts, type MuriPublicClient, type SigningChainClients } from "../../../agents/chain/index.js";
import { fragmentCid } from "../../../agents/data/cid.js";
import { encodeManifest, type Manifest } from "../../../agents/data/manifest.js";
import { fragmentRoot, maguRoot } from "../../../agents/data/merkle.js";
import { encodeToMemory } from "../../../agents/data/pipeline.js";
import { createP2PNode, type P2PNode, type PushPolicy, type ServePolicy } from "../../../agents/p2p/index.js";
import { openFragmentStore, type FragmentStore } from "../../../agents/store/fragment-store.js";
import { openMetaDb, type MetaDb } from "../../../agents/store/meta-db.js";
import type { Logger } from "../../../agents/store/logger.js";
import { createMaguIndex, type MaguIndex } from "../../../agents/roles/shared/magu-index.js";
import { createMaguSync, encodeMaguIndexList, type MaguSync } from "../../../agents/roles/shared/magu-sync.js";
import { createVectorService, type VectorService } from "../../../agents/roles/shared/vector-service.js";
import { commitRootWithAcks } from "./commit-helpers.js";
import { createAndFormMagu, E18, deployLocal, fund, recordingLogger, signer, startFreshHardhatNode, tempDir, type DeployParameters, type HardhatChain } from "../chain/harness.js";

export interface TestChain {
  chain: HardhatChain;
  d: Deployment;
  pub: MuriPublicClient;
  reader: MuriContracts<MuriPublicClient>;
  head(): Promise<bigint>;
  /** Mines blocks until the head is `block` (nothing when it is already there). */
  mineTo(block: bigint): Promise<void>;
  /** Waits for a transaction and asserts it succeeded. */
  wait(hash: Hex): Promise<bigint>;
}

/** A hardhat node with the contracts deployed (optionally with other Ignition parameters). */
export async function startTestChain(parameters?: DeployParameters): Promise<TestChain> {
  const chain = await startFreshHardhatNode();
  const d = await deployLocal(chain.rpcUrl, 90_000, parameters);
  const pub = signer(chain.rpcUrl, d, chain.keys[0]!).publicClient;
  const reader = getMuriContracts(d.contracts, { publicClient: pub });
  const testClient = createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) });
  const head = () => pub.getBlockNumber({ cacheTime: 0 });
  return {
    chain,
    d,
    pub,
    reader,
    head,
    async mineTo(block) {
      const h = await head();
      if (block > h) await testClient.mine({ blocks: Number(block - h) });
    },
    async wait(hash) {
      const receipt = await pub.waitForTransactionReceipt({ hash, pollingInterval: 50, timeout: 60_000 });
      assert.equal(receipt.status, "success", `transaction ${hash}`);
      return receipt.blockNumber;
    },
  };
}

/** The peer id bytes NodeRegistry keeps (the multihash, as node-agent.ts registers it). */
export function peerIdHex(p2p: P2PNode): Hex {
  return `0x${Buffer.from(p2p.peerId.toMultihash().bytes).toString("hex")}`;
}

/** Points the on-chain registration of `clients`' account at `p2p` (its peer id and first address). */
export async function announce(t: TestChain, clients: SigningChainClients, p2p: P2PNode): Promise<void> {
  const k = getMuriContracts(t.d.contracts, clients);
  await t.wait(await k.nodeRegistry.write.updateNode([1_000_000_000n, peerIdHex(p2p), [p2p.multiaddrs[0]!.toString()]]));
}

/** A storage node of real parts, as node-agent.ts wires them (no follower, prover or repair loop). */
export interface TestNode {
  key: Hex;
  address: Address;
  clients: SigningChainClients;
  dir: string;
  meta: MetaDb;
  store: FragmentStore;
  index: MaguIndex;
  sync: MaguSync;
  /** The vector service, when started with `vectors: true`. */
  vectors?: VectorService;
  p2p: P2PNode;
  log: ReturnType<typeof recordingLogger>;
  close(): Promise<void>;
}

/** Opens a node's parts under a fresh directory and registers its account with `stake` (peer id and address on chain). */
export async function startTestNode(t: TestChain, key: Hex, options: { stake?: bigint; register?: boolean; observer?: boolean; vectors?: boolean } = {}): Promise<TestNode> {
  const clients = signer(t.chain.rpcUrl, t.d, key);
  const address = getAddress(clients.account.address);
  const dir = await tempDir("muri-adversarial-node-");
  const log = recordingLogger();
  const meta = await openMetaDb(join(dir, "meta"));
  const store = await openFragmentStore({ dir, quotaBytes: 256 * 1024 * 1024, metaDb: meta, sync: "none" });
  const index = createMaguIndex({}, { metaDb: meta });
  const domain = batchDomain(t.d.chainId, t.d.contracts.maguRegistry);
  const ackSigner = { domain, sign: (ack: BatchAck) => clients.walletClient.signTypedData({ account: clients.account, ...ackTypedData(domain, ack) }) };
  const vectors = options.vectors === true ? createVectorService({ member: address, dir }, { store, index, metaDb: meta, contracts: t.reader, logger: log }) : undefined;
  const ref: { p2p?: P2PNode } = {};
  const sync = createMaguSync(
    { member: address, observer: options.observer, signer: ackSigner, vectors, ban: (peer, reason) => void ref.p2p?.banList.ban(peer, reason) },
    { store, index, contracts: t.reader, logger: log },
  );
  await vectors?.load();
  await sync.load();
  const p2p = await createP2PNode({ source: store, sink: sync.sink, acceptPush: sync.acceptPush, connections: { inboundConnectionThreshold: 100 } });
  ref.p2p = p2p;
  await p2p.start();
  if (options.register ?? true) {
    const stake = options.stake ?? 2_000n * E18;
    await fund(t.chain.rpcUrl, t.d, t.chain.keys[0]!, address, stake);
    const k = getMuriContracts(t.d.contracts, clients);
    await t.wait(await k.token.write.approve([t.d.contracts.nodeRegistry, stake]));
    await t.wait(await k.nodeRegistry.write.register([stake, 1, 1_000_000_000n, peerIdHex(p2p), [p2p.multiaddrs[0]!.toString()]]));
  }
  let closed = false;
  return {
    key,
    address,
    clients,
    dir,
    meta,
    store,
    index,
    sync,
    vectors,
    p2p,
    log,
    async close() {
      if (closed) return;
      closed = true;
      await p2p.stop();
      await vectors?.close();
      await store.close();
      await meta.close();
    },
  };
}

/**
 * How a test steers a hostile peer: `authorizeFetch` is asked before each fetch (a reason refuses
 * it as "access denied: <reason>", a pending promise holds it), `read` runs before each read (a
 * throw answers "fragment unavailable"), `acceptPush` judges each push (or holds it).
 */
export interface HostileSteering {
  authorizeFetch?: ServePolicy;
  acceptPush?: PushPolicy;
  read?: (cid: CID) => void;
}

/**
 * A libp2p peer that serves exactly the bytes it is given under the CIDs it is given (true or
 * not) and refuses pushes; `steer` makes it refuse or hold fetches and pushes.
 */
export async function startHostilePeer(steer: HostileSteering = {}): Promise<{ p2p: P2PNode; serve(cid: CID, bytes: Uint8Array): void }> {
  const served = new Map<string, Uint8Array>();
  const p2p = await createP2PNode({
    source: {
      has: (cid) => served.has(cid.toString()),
      get: (cid) => {
        steer.read?.(cid);
        return served.get(cid.toString())!;
      },
    },
    sink: {
      put() {
        throw new Error("this peer takes no pushes");
      },
    },
    authorizeFetch: steer.authorizeFetch,
    acceptPush: steer.acceptPush,
  });
  await p2p.start();
  return { p2p, serve: (cid, bytes) => void served.set(cid.toString(), bytes) };
}

/** Blob Magu parameters of `createBlobMagu`. */
export interface BlobMaguParams {
  k: number;
  m: number;
  members: number;
  maxFragments: number;
  periods?: bigint;
}

/** Creates and forms a blob Magu from the account of `clientKey`. Returns its id and members (by slot). */
export async function createBlobMagu(t: TestChain, clientKey: Hex, p: BlobMaguParams): Promise<{ maguId: bigint; members: Address[] }> {
  const price = E18 / 1000n;
  const periods = p.periods ?? 20n;
  const maguId = await createAndFormMagu(
    t.chain.rpcUrl,
    t.d,
    t.chain.keys[0]!,
    clientKey,
    { kind: 0, metric: 0, dimension: 0, members: p.members, replication: 0, dataShards: p.k, parityShards: p.m, maxFragments: p.maxFragments, durationPeriods: periods, pricePerFragmentPeriod: price },
    (b) => t.mineTo(b),
  );
  const info = await t.reader.maguRegistry.read.maguInfo([maguId]);
  return { maguId, members: info.members.map((a) => getAddress(a)) };
}

/** Creates and forms a vector Magu (l2) from the account of `clientKey`. Returns its id and members (by slot). */
export async function createVectorMagu(
  t: TestChain,
  clientKey: Hex,
  p: { dim: number; members: number; replication: number; maxFragments: number; periods?: bigint },
): Promise<{ maguId: bigint; members: Address[] }> {
  const price = E18 / 1000n;
  const periods = p.periods ?? 20n;
  const maguId = await createAndFormMagu(
    t.chain.rpcUrl,
    t.d,
    t.chain.keys[0]!,
    clientKey,
    { kind: 1, metric: 1, dimension: p.dim, members: p.members, replication: p.replication, dataShards: 0, parityShards: 0, maxFragments: p.maxFragments, durationPeriods: periods, pricePerFragmentPeriod: price },
    (b) => t.mineTo(b),
  );
  const info = await t.reader.maguRegistry.read.maguInfo([maguId]);
  return { maguId, members: info.members.map((a) => getAddress(a)) };
}

/** Commits `root` over `count` fragments as the first batch of `maguId` from the owner's account, every member acknowledging (commit-helpers.ts). */
export async function commitRoots(t: TestChain, clientKey: Hex, maguId: bigint, root: Hex, count: number): Promise<void> {
  await commitRootWithAcks(t.chain.rpcUrl, t.d, clientKey, t.chain.keys, maguId, root, count);
}

/**
 * The blob layout of the repair tests (adversarial-repair, repair-mutants): 4 KiB shards, k=2,
 * m=1, a file of two stripes (each member holds one shard of each), the client at account 5.
 */
export const REPAIR_LAYOUT = { SHARD: 4096, CLIENT: 5, K: 2, M: 1, FILE_BYTES: 3 * (4096 - 28) + 100 } as const;

/** The Magu root over a blob manifest's fragment roots. */
export function manifestRoot(manifest: Manifest): Hex {
  return `0x${maguRoot(manifest.roots.map((r) => Buffer.from(r, "hex"))).toString("hex")}`;
}

/** A small encrypted, erasure-coded file (shards of `shardSize` bytes) with `stripes` stripes; its manifest and shards. */
export async function encodeSmallFile(content: Uint8Array, k: number, m: number, shardSize: number): Promise<{ manifest: Manifest; manifestCid: CID; manifestBytes: Buffer; shards: Map<string, Buffer> }> {
  const result = await encodeToMemory(content, { secret: Buffer.alloc(32, 7), k, m, shardSize });
  const { bytes, cid } = encodeManifest(result.manifest);
  return { manifest: result.manifest, manifestCid: cid, manifestBytes: bytes, shards: result.shards };
}

/** `manifest` with shard `i` replaced by `bytes` (its CID and fragment root recomputed): what a lying client could send. */
export function withShard(manifest: Manifest, i: number, bytes: Uint8Array): Manifest {
  const shards = [...manifest.shards];
  const roots = [...manifest.roots];
  shards[i] = fragmentCid(bytes);
  roots[i] = fragmentRoot(bytes).toString("hex");
  return { ...manifest, shards, roots };
}

/** Waits for `pred` to hold, checking every `everyMs`; fails after `timeoutMs` with `what`. */
export async function waitUntil(what: string, pred: () => Promise<boolean> | boolean, timeoutMs = 30_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Quiet loggers unless MURI_TEST_LOG is set. */
export function testLogger(name: string): Logger & ReturnType<typeof recordingLogger> {
  const rec = recordingLogger();
  if (!process.env.MURI_TEST_LOG) return rec;
  const out =
    (level: "debug" | "info" | "warn" | "error") =>
    (msg: string, ctx?: Record<string, unknown>): void => {
      rec[level](msg, ctx);
      console.error(name, level, msg, JSON.stringify(ctx, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
    };
  return { ...rec, debug: out("debug"), info: out("info"), warn: out("warn"), error: out("error") };
}

/**
 * What a client's put does after committing: pushes the manifest and index document to each
 * member (and to `observers`), then each member the shards its verified index assigns it.
 */
export async function upload(
  client: P2PNode,
  maguId: bigint,
  members: readonly TestNode[],
  file: { manifest: Manifest; manifestCid: CID; manifestBytes: Uint8Array; shards: ReadonlyMap<string, Uint8Array> },
  observers: readonly TestNode[] = [],
): Promise<void> {
  const index = encodeMaguIndexList({ maguId, manifestCids: [file.manifestCid] });
  for (const node of [...members, ...observers]) {
    await client.addPeers([node.p2p.multiaddrs[0]!]);
    await client.pushFragment(node.p2p.peerId, file.manifestCid, file.manifestBytes, { timeoutMs: 20_000 });
    await client.pushFragment(node.p2p.peerId, index.cid, index.bytes, { timeoutMs: 20_000 });
  }
  for (const node of members) {
    const rec = await node.index.get(maguId);
    assert.ok(rec, `${node.address} recorded Magu ${maguId}`);
    for (const f of rec.held) {
      const cid = file.manifest.shards[f]!;
      await client.pushFragment(node.p2p.peerId, cid, file.shards.get(cid.toString())!, { timeoutMs: 20_000 });
    }
  }
}

/** A libp2p node that only fetches and pushes (a client). */
export async function startClientPeer(): Promise<P2PNode> {
  const p2p = await createP2PNode({ source: { has: () => false, get: () => new Uint8Array() }, sink: { put: () => undefined } });
  await p2p.start();
  return p2p;
}
