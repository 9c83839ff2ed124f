/**
 * A p2p node in its own process, driven by the tests over stdin/stdout JSON lines.
 *
 *   argv[2]: JSON PeerProcessConfig
 *   stdout:  {"event":"ready","peerId":...,"multiaddrs":[...]} then one {"id","ok","result"|"error"}
 *            line per command
 *   stdin:   {"id":n,"cmd":"...","args":{...}} lines
 *
 * The process exits when told to stop, on SIGTERM/SIGINT, or when stdin closes (parent gone).
 * `attack` runs the adversary: a fresh identity opens a raw `/muri/fragment/1.0.0` stream and
 * writes a crafted frame, then reports what the victim did.
 */
import { createHash } from "node:crypto";
import { createInterface } from "node:readline";
import type { Connection, StreamCloseEvent, StreamMessageEvent } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { CID } from "multiformats/cid";
import { Uint8ArrayList } from "uint8arraylist";
import { fragmentCid } from "../../../agents/data/cid.js";
import {
  FRAGMENT_PROTOCOL,
  Op,
  createP2PNode,
  encodeRequestHeader,
  loadOrCreatePrivateKey,
  type ConnectionLimits,
  type FragmentSink,
  type FragmentSource,
  type P2PLimits,
  type P2PNode,
} from "../../../agents/p2p/index.js";
import { MemoryFragmentStore, fragmentFromSeed } from "./fixtures.js";

export interface PeerProcessConfig {
  /** `fs`: the real fragment store in `storeDir`; `memory`: a Map. */
  store: "fs" | "memory";
  storeDir?: string;
  keyFile?: string;
  listen?: string[];
  bootstrap?: string[];
  limits?: Partial<P2PLimits>;
  connections?: ConnectionLimits;
  /** Serve corrupted bytes for every fragment made with `makeFragment` (a lying holder). */
  lie?: boolean;
}

interface TestStore extends FragmentSource, FragmentSink {
  stats(): { count: number; usedBytes: number };
  close(): Promise<void>;
}

type Args = Record<string, unknown>;

const config = JSON.parse(process.argv[2] ?? "{}") as PeerProcessConfig;

function send(line: object): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function openStore(): Promise<TestStore> {
  if (config.store === "memory") return new MemoryFragmentStore();
  const { openFragmentStore } = await import("../../../agents/store/index.js");
  const store = await openFragmentStore({ dir: config.storeDir!, quotaBytes: 256 << 20, sync: "none" });
  return {
    has: (cid) => store.has(cid),
    get: (cid) => store.get(cid),
    put: (cid, bytes) => store.put(cid, bytes),
    stats: () => store.stats(),
    close: () => store.close(),
  };
}

const store = await openStore();
// A lying holder keeps correct CIDs but corrupted bytes, in a side map its source serves from.
const lies = new Map<string, Uint8Array>();
const source: FragmentSource = config.lie === true
  ? { has: (cid) => lies.has(cid.toString()), get: (cid) => lies.get(cid.toString())! }
  : store;
const privateKey = config.keyFile !== undefined ? await loadOrCreatePrivateKey(config.keyFile) : undefined;
const node = await createP2PNode({
  privateKey,
  listen: config.listen,
  bootstrap: config.bootstrap,
  source,
  sink: store,
  limits: config.limits,
  connections: config.connections,
});
await node.start();

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * How long an attack waits for the victim to react. It reacts at once to a violation and within its
 * read timeout to a stall; only a victim that never reacts (a failure) waits this long.
 */
const EVENT_WAIT_MS = 60_000;

function waitForEvent<T>(register: (resolve: (value: T) => void) => () => void, timeoutMs: number, onTimeout: T): Promise<T> {
  return new Promise<T>((resolve) => {
    let unregister = (): void => {};
    const timer = setTimeout(() => {
      unregister();
      resolve(onTimeout);
    }, timeoutMs);
    unregister = register((value) => {
      clearTimeout(timer);
      unregister();
      resolve(value);
    });
  });
}

/** Crafted frames, each a protocol violation (or a stall) the victim must cut off. */
function craft(kind: string, maxFragmentBytes: number): { chunks: Uint8Array[]; closeWrite: boolean } {
  const real = fragmentFromSeed(`attack-${kind}`, 256 * 1024);
  const cid = fragmentCid(real);
  const header = (op: number, length: number): Uint8Array => {
    const h = encodeRequestHeader({ op: Op.Push, cid, length });
    h[0] = op;
    return h;
  };
  switch (kind) {
    case "bad-op":
      return { chunks: [header(9, 10), new Uint8Array(10)], closeWrite: true };
    case "bad-cid": {
      const h = header(Op.Push, 10);
      h.fill(0xff, 2, 2 + cid.bytes.length);
      return { chunks: [h, new Uint8Array(10)], closeWrite: true };
    }
    case "oversized":
      return { chunks: [header(Op.Push, maxFragmentBytes + 1), real], closeWrite: false };
    case "truncated-header":
      return { chunks: [header(Op.Push, real.length).subarray(0, 4)], closeWrite: true };
    case "truncated":
      return { chunks: [header(Op.Push, real.length), real.subarray(0, 100_000)], closeWrite: true };
    case "lying": {
      const other = fragmentFromSeed("not-the-fragment", real.length);
      return { chunks: [header(Op.Push, real.length), other], closeWrite: true };
    }
    case "trailing": {
      // A well-formed fetch followed by junk: on a keep-alive stream the junk is the next request.
      const fetch = encodeRequestHeader({ op: Op.Fetch, cid, length: real.length });
      return { chunks: [fetch, new Uint8Array(16).fill(0xee)], closeWrite: true };
    }
    case "stall":
      return { chunks: [header(Op.Push, real.length), real.subarray(0, 1000)], closeWrite: false };
    case "dribble":
      // The header, then (in `attack`) 64 bytes every 200 ms: never idle for a read timeout.
      return { chunks: [header(Op.Push, real.length)], closeWrite: false };
    default:
      throw new Error(`unknown attack ${kind}`);
  }
}

/** Runs one attack from a fresh identity and reports what the victim did. */
async function attack(args: Args): Promise<object> {
  const target = multiaddr(String(args.target));
  const kind = String(args.kind);
  const maxFragmentBytes = Number(args.maxFragmentBytes ?? 1 << 20);
  const mem = new MemoryFragmentStore();
  const attacker = await createP2PNode({ source: mem, sink: mem, dht: { clientMode: true } });
  await attacker.start();
  try {
    const stream = await attacker.libp2p.dialProtocol(target, FRAGMENT_PROTOCOL, { signal: AbortSignal.timeout(5_000) });
    const victim = peerIdFromString(target.getComponents().find((c) => c.name === "p2p")!.value!);
    const received = new Uint8ArrayList();
    stream.addEventListener("message", (e: StreamMessageEvent) => received.append(e.data));
    const streamOutcome = waitForEvent<string>((resolve) => {
      const onClose = (e: StreamCloseEvent): void => resolve(e.error !== undefined ? "reset" : "closed");
      stream.addEventListener("close", onClose);
      return () => stream.removeEventListener("close", onClose);
    }, EVENT_WAIT_MS, "still-open");
    const connectionClosed = waitForEvent<boolean>((resolve) => {
      const onClose = (e: CustomEvent<Connection>): void => {
        if (e.detail.remotePeer.equals(victim)) resolve(true);
      };
      attacker.libp2p.addEventListener("connection:close", onClose);
      return () => attacker.libp2p.removeEventListener("connection:close", onClose);
    }, EVENT_WAIT_MS, false);
    const { chunks, closeWrite } = craft(kind, maxFragmentBytes);
    try {
      for (const chunk of chunks) if (!stream.send(chunk)) await stream.onDrain({ signal: AbortSignal.timeout(5_000) });
      if (closeWrite) await stream.close({ signal: AbortSignal.timeout(5_000) });
      // Bounded: 150 pieces (30 s) at most, far past any floor's reaction.
      for (let i = 0; kind === "dribble" && i < 150 && stream.status === "open"; i++) {
        stream.send(new Uint8Array(64).fill(i));
        await new Promise((r) => setTimeout(r, 200));
      }
    } catch {
      // the victim may reset before everything is written
    }
    const outcome = await streamOutcome;
    const closed = await connectionClosed;
    let redial = "skipped";
    if (args.redial === true) {
      try {
        const again = await attacker.libp2p.dialProtocol(target, FRAGMENT_PROTOCOL, { signal: AbortSignal.timeout(5_000) });
        again.abort(new Error("probe"));
        redial = "accepted";
      } catch {
        redial = "refused";
      }
    }
    return {
      attacker: attacker.peerId.toString(),
      outcome,
      status: received.byteLength > 0 ? received.get(0) : null,
      connectionClosed: closed,
      redial,
    };
  } finally {
    await attacker.stop();
  }
}

async function handle(cmd: string, args: Args, p2p: P2PNode): Promise<unknown> {
  switch (cmd) {
    case "makeFragment": {
      const bytes = fragmentFromSeed(String(args.seed), Number(args.size));
      const cid = fragmentCid(bytes);
      await store.put(cid, bytes);
      if (config.lie === true) {
        const corrupt = bytes.slice();
        corrupt[0] ^= 0xff;
        lies.set(cid.toString(), corrupt);
      }
      return cid.toString();
    }
    case "has":
      return await store.has(CID.parse(String(args.cid)));
    case "stats":
      return store.stats();
    case "fetch": {
      const bytes = await p2p.fetchFragment(String(args.target), CID.parse(String(args.cid)), {
        timeoutMs: Number(args.timeoutMs ?? 60_000),
      });
      return { size: bytes.length, sha256: sha256Hex(bytes) };
    }
    case "push": {
      const bytes = fragmentFromSeed(String(args.seed), Number(args.size));
      const cid = fragmentCid(bytes);
      await p2p.pushFragment(String(args.target), cid, bytes, { timeoutMs: Number(args.timeoutMs ?? 60_000) });
      return cid.toString();
    }
    case "provide":
      await p2p.provide(CID.parse(String(args.cid)), { timeoutMs: Number(args.timeoutMs ?? 10_000) });
      return true;
    case "findProviders": {
      const found = await p2p.findProviders(CID.parse(String(args.cid)), {
        timeoutMs: Number(args.timeoutMs ?? 10_000),
        limit: args.limit === undefined ? undefined : Number(args.limit),
      });
      return found.map((p) => ({ id: p.id.toString(), multiaddrs: p.multiaddrs.map(String) }));
    }
    case "routingTableSize":
      // Peers in the DHT routing table (a bootstrap peer appears once identify ran after the dial).
      return (p2p.libp2p.services as { dht?: { routingTable?: { size: number } } }).dht?.routingTable?.size ?? 0;
    case "addPeers":
      return (await p2p.addPeers((args.addrs as string[]) ?? [], { dial: args.dial === true })).map(String);
    case "dial":
      return (await p2p.dial(String(args.addr))).toString();
    case "isBanned":
      return p2p.banList.isBanned(String(args.peer));
    case "ban":
      return p2p.banList.get(String(args.peer)) ?? null;
    case "attack":
      return await attack(args);
    default:
      throw new Error(`unknown command ${cmd}`);
  }
}

let stopping = false;
async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    const hardStop = setTimeout(() => process.exit(code), 5_000);
    hardStop.unref();
    await node.stop().catch(() => {});
    await store.close().catch(() => {});
  }
  process.exit(code);
}

process.on("SIGTERM", () => void shutdown(0));
process.on("SIGINT", () => void shutdown(0));

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  let request: { id: number; cmd: string; args?: Args };
  try {
    request = JSON.parse(line) as typeof request;
  } catch {
    return;
  }
  if (request.cmd === "stop") {
    send({ id: request.id, ok: true, result: true });
    void shutdown(0);
    return;
  }
  handle(request.cmd, request.args ?? {}, node).then(
    (result) => send({ id: request.id, ok: true, result }),
    (err: Error & { code?: string; context?: unknown }) =>
      send({ id: request.id, ok: false, error: { name: err.name, code: err.code, message: err.message, context: err.context } }),
  );
});
lines.on("close", () => void shutdown(0));

send({ event: "ready", peerId: node.peerId.toString(), multiaddrs: node.multiaddrs.map(String) });
