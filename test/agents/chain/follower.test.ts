import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createTestClient, http, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  ChainResetError,
  EventHandlerError,
  RpcUnavailableError,
  createChainClients,
  createEventFollower,
  maguRegistryAbi,
  nodeRegistryAbi,
  type ChainEvent,
  type Deployment,
  type EventArgs,
  type EventFollower,
  type EventFollowerInit,
} from "../../../agents/chain/index.js";
import { Registry } from "prom-client";
import { Bucket, openMetaDb, type MetaDb } from "../../../agents/store/meta-db.js";
import { registerFollowerMetrics } from "../../../agents/roles/shared/metrics-server.js";
import { parseFollowerMetrics } from "../../../agents/cli/agent-health.js";
import type { Logger } from "../../../agents/store/logger.js";
import {
  cleanup,
  deployLocal,
  freePort,
  recordingLogger,
  registerNode,
  requestMagu,
  startFreshHardhatNode,
  startHardhatNode,
  startRpcProxy,
  tempDir,
  type HardhatChain,
} from "./harness.js";

after(cleanup);

type NodeRegisteredArgs = EventArgs<typeof nodeRegistryAbi, "NodeRegistered">;
type MaguRequestedArgs = EventArgs<typeof maguRegistryAbi, "MaguRequested">;

/** What a test expects or saw: "NodeRegistered:<node>" / "MaguRequested:<id>:<owner>". */
type Seen = string;
const nodeSeen = (node: Address): Seen => `NodeRegistered:${node}`;
const maguSeen = (id: bigint, owner: Address): Seen => `MaguRequested:${id}:${owner}`;

const WAIT_MS = 30_000;

describe("event follower against a hardhat node", () => {
  let chain: HardhatChain;
  let d: Deployment;
  let nextKey = 1;
  let maguCount = 0n;
  const clientKey = (): Hex => chain.keys[19]!;
  /** Every followed event emitted so far, in order. */
  const history: Seen[] = [];

  async function addNode(): Promise<bigint> {
    const key = chain.keys[nextKey++]!;
    const block = await registerNode(chain.rpcUrl, d, chain.keys[0]!, key);
    history.push(nodeSeen(privateKeyToAccount(key).address));
    return block;
  }

  async function addMagu(): Promise<bigint> {
    const block = await requestMagu(chain.rpcUrl, d, chain.keys[0]!, clientKey());
    history.push(maguSeen(++maguCount, privateKeyToAccount(clientKey()).address));
    return block;
  }

  function follow(
    db: MetaDb,
    options: Partial<EventFollowerInit> & { rpcUrl?: string; logger?: Logger; deployment?: Deployment } = {},
  ): EventFollower {
    const dep = options.deployment ?? d;
    const { publicClient } = createChainClients({ rpcUrl: options.rpcUrl ?? chain.rpcUrl, chainId: dep.chainId, retryCount: 0 });
    return createEventFollower(
      {
        contracts: [
          { address: dep.contracts.nodeRegistry, abi: nodeRegistryAbi, eventNames: ["NodeRegistered"], name: "NodeRegistry" },
          { address: dep.contracts.maguRegistry, abi: maguRegistryAbi, eventNames: ["MaguRequested"], name: "MaguRegistry" },
        ],
        fromBlock: dep.deployBlock,
        pollMs: 50,
        backoffMinMs: 40,
        backoffMaxMs: 400,
        ...options,
      },
      { publicClient, metaDb: db, logger: options.logger },
    );
  }

  /** Records what the follower delivers, checking chain order as it goes. */
  function record(follower: EventFollower): { seen: Seen[]; events: ChainEvent[] } {
    const out = { seen: [] as Seen[], events: [] as ChainEvent[] };
    const push = (e: ChainEvent<any>, s: Seen) => {
      const last = out.events.at(-1);
      if (last) {
        assert.ok(
          e.blockNumber > last.blockNumber || (e.blockNumber === last.blockNumber && e.logIndex > last.logIndex),
          "events are delivered in (block, log index) order",
        );
      }
      out.events.push(e);
      out.seen.push(s);
    };
    follower.on<NodeRegisteredArgs>("NodeRegistered", (e) => push(e, nodeSeen(e.args.node)));
    follower.on<MaguRequestedArgs>("MaguRequested", (e) => push(e, maguSeen(e.args.magu, e.args.owner)));
    return out;
  }

  async function head(url = chain.rpcUrl): Promise<bigint> {
    return createChainClients({ rpcUrl: url, chainId: 31337, retryCount: 0 }).publicClient.getBlockNumber();
  }

  before(async () => {
    chain = await startFreshHardhatNode();
    d = await deployLocal(chain.rpcUrl);
  });

  test("delivers NodeRegistered and MaguRequested in chain order, in bounded ranges, then live", async () => {
    await addNode();
    await addNode();
    await addMagu();
    await addNode();

    const db = await openMetaDb(await tempDir());
    const follower = follow(db, { batchBlocks: 4 });
    const got = record(follower);
    try {
      await follower.start();
      await follower.waitForBlock(await head(), { signal: AbortSignal.timeout(WAIT_MS) });
      assert.deepEqual(got.seen, history);
      assert.ok(got.events.every((e) => e.contract === (e.eventName === "MaguRequested" ? "MaguRegistry" : "NodeRegistry")));
      assert.ok(got.events.every((e) => e.blockNumber > d.deployBlock));

      // While following: a new event arrives within a poll.
      const block = await addNode();
      await follower.waitForBlock(block, { signal: AbortSignal.timeout(WAIT_MS) });
      assert.deepEqual(got.seen, history);
      assert.equal(follower.status().state, "following");
      assert.equal(follower.status().cursor! >= block, true);
    } finally {
      await follower.stop();
      await db.close();
    }
  });

  test("a restart over the same database resumes from the cursor without re-delivering", async () => {
    const dir = await tempDir();
    let db = await openMetaDb(dir);
    const first = follow(db);
    const firstGot = record(first);
    let cursor: bigint;
    try {
      await first.start();
      await first.waitForBlock(await head(), { signal: AbortSignal.timeout(WAIT_MS) });
      cursor = first.status().cursor!;
      assert.deepEqual(firstGot.seen, history);
    } finally {
      await first.stop();
      await db.close();
    }

    const before = history.length;
    await addMagu();
    await addNode();

    db = await openMetaDb(dir);
    const second = follow(db);
    const secondGot = record(second);
    try {
      await second.start();
      assert.equal(second.status().cursor, cursor);
      await second.waitForBlock(await head(), { signal: AbortSignal.timeout(WAIT_MS) });
      assert.deepEqual(secondGot.seen, history.slice(before));
    } finally {
      await second.stop();
      await db.close();
    }
  });

  test("stays `confirmations` blocks behind the head", async () => {
    const db = await openMetaDb(await tempDir());
    const follower = follow(db, { confirmations: 3 });
    const got = record(follower);
    try {
      await follower.start();
      const block = await addNode();
      await follower.waitForBlock(block - 3n, { signal: AbortSignal.timeout(WAIT_MS) });
      // Without new blocks the follower cannot go further than head - 3.
      assert.equal(follower.status().cursor, block - 3n);
      assert.deepEqual(got.seen, history.slice(0, -1));

      const testClient = createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) });
      await testClient.mine({ blocks: 3 });
      await follower.waitForBlock(block, { signal: AbortSignal.timeout(WAIT_MS) });
      assert.deepEqual(got.seen, history);
    } finally {
      await follower.stop();
      await db.close();
    }
  });

  test("a handler that throws holds the follower at that log, retries with back-off, and never skips it", async () => {
    const dir = await tempDir();
    let db = await openMetaDb(dir);
    const logger = recordingLogger();
    const follower = follow(db, { batchBlocks: 10_000, logger }); // everything in one range
    const failing = history.find((s) => s.startsWith("NodeRegistered:") && s !== history[0])!;
    const delivered: Seen[] = [];
    const attempts: number[] = [];
    follower.on<NodeRegisteredArgs>("NodeRegistered", (e) => {
      const s = nodeSeen(e.args.node);
      if (s === failing) {
        attempts.push(performance.now());
        throw new Error("disk unavailable");
      }
      delivered.push(s);
    });
    follower.on<MaguRequestedArgs>("MaguRequested", (e) => void delivered.push(maguSeen(e.args.magu, e.args.owner)));
    try {
      await follower.start();
      // The follower logs the first failure as an error, then each retry quietly.
      await logger.waitFor((e) => e.msg === "event handler failed again" && e.context?.attempts === 3);
      assert.equal(logger.entries.filter((e) => e.level === "error").length, 1);
      const status = follower.status();
      assert.equal(status.state, "backing-off");
      assert.ok(status.lastError instanceof EventHandlerError);
      assert.equal(status.lastError.message.includes("disk unavailable"), true);
      assert.equal(status.cursor, undefined, "the range holding the failing log is not complete");
      // Only the logs before the failing one were delivered, each once despite the retries.
      assert.deepEqual(delivered, history.slice(0, history.indexOf(failing)));
      // Back-off doubles: 40 ms, then 80 ms (plus the RPC round trips).
      assert.ok(attempts[1]! - attempts[0]! >= 35, `first back-off ${attempts[1]! - attempts[0]!} ms`);
      assert.ok(attempts[2]! - attempts[1]! >= 75, `second back-off ${attempts[2]! - attempts[1]!} ms`);
    } finally {
      await follower.stop();
      await db.close();
    }

    // A restart with a working handler: the completed logs are not delivered again; the failed one is.
    db = await openMetaDb(dir);
    const second = follow(db, { batchBlocks: 10_000 });
    const got = record(second);
    try {
      await second.start();
      await second.waitForBlock(await head(), { signal: AbortSignal.timeout(WAIT_MS) });
      assert.deepEqual(got.seen, history.slice(history.indexOf(failing)));
      // Once the cursor passed them, the handled-log records are dropped: only the cursor and the
      // checkpoint of each completed range (block hashes, for reorganisations) are left.
      const keys: string[] = [];
      for await (const key of db.bucket(Bucket.chainCursor).keys()) keys.push(Buffer.from(key).toString("latin1"));
      assert.equal(keys[0], "c/default");
      assert.ok(keys.length >= 2, "at least this run's checkpoint");
      assert.ok(keys.slice(1).every((k) => k.startsWith("k/default/") && k.length === "k/default/".length + 8), keys.join(", "));
    } finally {
      await second.stop();
      await db.close();
    }
  });

  test("an RPC outage is reported once, backed off (capped), and followed by a catch-up", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const logger = recordingLogger();
    const dir = await tempDir();
    const db = await openMetaDb(dir);
    // The addresses deploy-local will produce on a fresh chain (same deployer, same nonces).
    const follower = follow(db, { rpcUrl: url, logger, fromBlock: 0n, backoffMinMs: 50, backoffMaxMs: 200 });
    const got = record(follower);
    let chain2: HardhatChain | undefined;
    try {
      await follower.start();
      await logger.waitFor((e) => e.msg === "RPC still unreachable" && (e.context?.attempts as number) >= 5);
      const warnings = logger.entries.filter((e) => e.level === "warn");
      assert.equal(warnings.length, 1, "one warning per outage");
      assert.equal(warnings[0]!.msg, `RPC ${url} is not reachable (connect ECONNREFUSED): start a chain or pass --rpc; retrying with back-off`);
      const delays = logger.entries.filter((e) => e.context?.retryInMs !== undefined).map((e) => e.context!.retryInMs);
      assert.deepEqual(delays.slice(0, 5), [50, 100, 200, 200, 200]);
      assert.equal(follower.status().state, "backing-off");
      assert.ok(follower.status().lastError instanceof RpcUnavailableError);

      chain2 = await startHardhatNode(port);
      const d2 = await deployLocal(chain2.rpcUrl);
      assert.deepEqual(d2.contracts, d.contracts);
      const node = chain2.keys[1]!;
      await registerNode(chain2.rpcUrl, d2, chain2.keys[0]!, node);
      await requestMagu(chain2.rpcUrl, d2, chain2.keys[0]!, chain2.keys[19]!);

      await follower.waitForBlock(await head(url), { signal: AbortSignal.timeout(WAIT_MS) });
      assert.deepEqual(got.seen, [
        nodeSeen(privateKeyToAccount(node).address),
        maguSeen(1n, privateKeyToAccount(chain2.keys[19]!).address),
      ]);
      assert.equal(logger.entries.filter((e) => e.level === "warn").length, 1);
      assert.equal(logger.entries.filter((e) => e.msg === "RPC reachable again; resuming").length, 1);
      assert.equal(follower.status().lastError, undefined);
    } finally {
      await follower.stop();
      await db.close();
    }

    // The same cursor against another chain (the first node: a different history): refuse, do not skip.
    const db2 = await openMetaDb(dir);
    const logger2 = recordingLogger();
    const stray = follow(db2, { logger: logger2, fromBlock: 0n });
    try {
      await stray.start();
      await assert.rejects(stray.waitForBlock(1_000_000n, { signal: AbortSignal.timeout(WAIT_MS) }), ChainResetError);
      assert.equal(stray.status().state, "failed");
      assert.match(logger2.entries.find((e) => e.level === "error")!.msg, /no longer has block \d+ 0x[0-9a-f]{8}… \(found 0x[0-9a-f]{8}…\): it was reset/);
    } finally {
      await stray.stop();
      await db2.close();
      await chain2?.stop();
    }
  });
});

/** JSON-RPC quantity of a bigint. */
const quantity = (n: bigint): Hex => `0x${n.toString(16)}`;

describe("event follower over reorganisations and a lagging RPC (hardhat node, evm_snapshot/evm_revert)", () => {
  let chain: HardhatChain;
  let d: Deployment;
  let nextKey = 1;
  let rpc: ReturnType<typeof createTestClient>;

  before(async () => {
    chain = await startFreshHardhatNode();
    d = await deployLocal(chain.rpcUrl);
    rpc = createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) });
  });
  after(async () => chain?.stop());

  const addNode = async (): Promise<Address> => {
    const key = chain.keys[nextKey++]!;
    await registerNode(chain.rpcUrl, d, chain.keys[0]!, key);
    return privateKeyToAccount(key).address;
  };
  const headOf = (): Promise<bigint> => createChainClients({ rpcUrl: chain.rpcUrl, chainId: 31337, retryCount: 0 }).publicClient.getBlockNumber({ cacheTime: 0 });

  /** A follower of NodeRegistered; `seen` lists the registered nodes in delivery order (no order check: a reorg repeats). */
  function follower(db: MetaDb, rpcUrl: string, logger: Logger): { f: EventFollower; seen: Address[] } {
    const { publicClient } = createChainClients({ rpcUrl, chainId: 31337, retryCount: 0 });
    const f = createEventFollower(
      {
        id: "reorg",
        contracts: [{ address: d.contracts.nodeRegistry, abi: nodeRegistryAbi, eventNames: ["NodeRegistered"], name: "NodeRegistry" }],
        fromBlock: d.deployBlock,
        pollMs: 50,
        backoffMinMs: 40,
        backoffMaxMs: 400,
      },
      { publicClient, metaDb: db, logger },
    );
    const seen: Address[] = [];
    f.on<NodeRegisteredArgs>("NodeRegistered", (e) => void seen.push(e.args.node));
    return { f, seen };
  }

  test("a reorganisation rewinds to the last shared block and delivers the new chain's events, live and across a restart", async () => {
    const dir = await tempDir();
    const db = await openMetaDb(dir);
    const logger = recordingLogger();
    const { f, seen } = follower(db, chain.rpcUrl, logger);
    await f.start();
    try {
      const first = await addNode();
      await f.waitForBlock(await headOf(), { signal: AbortSignal.timeout(WAIT_MS) });
      const shared = await headOf();
      const snapshot = await rpc.snapshot();
      const replaced = await addNode(); // a block the reorganisation takes away
      await f.waitForBlock(await headOf(), { signal: AbortSignal.timeout(WAIT_MS) });
      assert.deepEqual(seen, [first, replaced]);
      const cursorBefore = f.status().cursor!;

      // The reorganisation: back to `shared`, then other blocks, more of them than were replaced.
      await rpc.revert({ id: snapshot });
      const instead = await addNode();
      await rpc.mine({ blocks: 4 });
      await f.waitForBlock(await headOf(), { signal: AbortSignal.timeout(WAIT_MS) });
      assert.deepEqual(seen, [first, replaced, instead], "the new chain's event is delivered; the replaced one was delivered before (handlers are idempotent)");
      const s = f.status();
      assert.equal(s.state, "following");
      assert.equal(s.reorgs, 1);
      assert.equal(s.lastReorg!.from, cursorBefore);
      assert.ok(s.lastReorg!.to <= shared && s.lastReorg!.to >= d.deployBlock, `rewound to ${s.lastReorg!.to}, at or before the shared block ${shared}`);
      assert.equal(logger.entries.filter((e) => e.msg.startsWith("chain reorganised")).length, 1);
      assert.equal(logger.entries.filter((e) => e.level === "error").length, 0);
    } finally {
      await f.stop();
      await db.close();
    }

    // While it is stopped the chain reorganises again: a restart over the same database rewinds
    // instead of refusing the stored cursor.
    const snapshot = await rpc.snapshot();
    const gone = await addNode();
    const db2 = await openMetaDb(dir);
    const logger2 = recordingLogger();
    const again = follower(db2, chain.rpcUrl, logger2);
    await again.f.start();
    try {
      await again.f.waitForBlock(await headOf(), { signal: AbortSignal.timeout(WAIT_MS) });
      assert.deepEqual(again.seen, [gone]);
      await again.f.stop();
      await rpc.revert({ id: snapshot });
      const later = await addNode();
      await rpc.mine({ blocks: 3 });
      await again.f.start();
      await again.f.waitForBlock(await headOf(), { signal: AbortSignal.timeout(WAIT_MS) });
      assert.deepEqual(again.seen, [gone, later]);
      assert.equal(again.f.status().reorgs, 1);
      assert.equal(again.f.status().state, "following");
    } finally {
      await again.f.stop();
      await db2.close();
    }
  });

  test("a lagging head is waited out and a log from another block is read again; neither stops the follower", async () => {
    let lag = 0n;
    let tamper = false;
    const proxy = await startRpcProxy(chain.rpcUrl, (call, result) => {
      if (call.method === "eth_blockNumber" && lag > 0n) return quantity(BigInt(result as Hex) - lag);
      if (call.method === "eth_getLogs" && tamper && Array.isArray(result) && result.length > 0) {
        tamper = false;
        return (result as Array<Record<string, unknown>>).map((l) => ({ ...l, blockHash: `0x${"ab".repeat(32)}` }));
      }
      return result;
    });
    const db = await openMetaDb(await tempDir());
    const logger = recordingLogger();
    const { f, seen } = follower(db, proxy.url, logger);
    // Its health as an agent's /metrics shows it (what `muri status --metrics URL` reads).
    const registry = new Registry();
    registerFollowerMetrics(registry, { reorg: () => f.status() });
    const health = async () => parseFollowerMetrics(await registry.metrics())[0]!;
    await f.start();
    try {
      await f.waitForBlock(await headOf(), { signal: AbortSignal.timeout(WAIT_MS) });
      const before = seen.length;
      // A backend 10 blocks behind: the head is below the cursor (a registration below mines 3).
      lag = 10n;
      await logger.waitFor((e) => e.msg.startsWith("RPC head is behind"), WAIT_MS);
      assert.equal(f.status().state, "lagging");
      assert.deepEqual(await health(), { follower: "reorg", healthy: false, state: "lagging", cursor: f.status().cursor, head: f.status().head, lagBlocks: f.status().lagBlocks, reorgs: 0 });
      assert.ok(f.status().lagBlocks! < 0n, "the head is below the cursor");
      const node = await addNode();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(f.status().state, "lagging", "still waiting: the lagging head is not past the cursor");
      lag = 0n;
      await f.waitForBlock(await headOf(), { signal: AbortSignal.timeout(WAIT_MS) });
      assert.deepEqual(seen.slice(before), [node]);
      assert.equal(logger.entries.filter((e) => e.msg.startsWith("RPC head is behind")).length, 1, "one warning per lagging episode");
      assert.ok(logger.entries.some((e) => e.msg === "RPC head caught up again"));

      // A log whose block hash is not its block's: nothing is delivered from that answer, the range is read again.
      tamper = true;
      const other = await addNode();
      await f.waitForBlock(await headOf(), { signal: AbortSignal.timeout(WAIT_MS) });
      assert.equal(tamper, false, "the tampered answer was served");
      assert.deepEqual(seen.slice(before), [node, other], "delivered once, from the real answer");
      assert.ok(logger.entries.some((e) => e.level === "warn" && /changed block \d+ while it was read/.test(e.msg)));
      assert.equal(f.status().reorgs, 0);
      assert.equal(f.status().state, "following");
      const h = await health();
      assert.equal(h.healthy, true);
      assert.equal(h.state, "following");
      assert.equal(h.lagBlocks, 0n);
    } finally {
      await f.stop();
      await db.close();
      await proxy.close();
    }
  });

  test("several RPC URLs: with the first one down, the next answers and the follower keeps following", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const proxy = await startRpcProxy(chain.rpcUrl);
    const db = await openMetaDb(await tempDir());
    const logger = recordingLogger();
    const { f, seen } = follower(db, `${proxy.url},${dead},${chain.rpcUrl}`, logger);
    await f.start();
    try {
      const one = await addNode();
      await f.waitForBlock(await headOf(), { signal: AbortSignal.timeout(WAIT_MS) });
      assert.ok(seen.includes(one));
      // The first endpoint goes down (503 on every request), the second refuses connections: the third serves.
      proxy.down = true;
      const two = await addNode();
      await f.waitForBlock(await headOf(), { signal: AbortSignal.timeout(WAIT_MS) });
      assert.equal(seen.at(-1), two);
      assert.equal(f.status().state, "following");
      assert.equal(logger.entries.filter((e) => e.level === "error").length, 0);
    } finally {
      await f.stop();
      await db.close();
      await proxy.close();
    }
  });
});
