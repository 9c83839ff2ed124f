/**
 * The storage client's record of the files it put into each Magu, in its directory beside the
 * encryption secret (so whoever can decrypt a file can also locate it). Magu ids are per network
 * (Magu 1 exists on every chain), so everything kept about a Magu lives under the network it
 * belongs to (chain/network.ts: chain id, MaguRegistry address, deployment block hash):
 *
 *   <dir>/secret.key, <dir>/peer.key           the client's keys, shared by every network
 *   <dir>/networks/<key>/network.json          {"version":1,"chainId":31337,"maguRegistry":"0x…","deployBlock":"12","deployBlockHash":"0x…","rpcUrl":"…"}
 *   <dir>/networks/<key>/magus/<id>.json       {"magu":"7","files":[{"manifest":"bafy…","offset":0,"shards":15,"fileSize":123}, …]}
 *   <dir>/networks/<key>/magus/<id>.lock       pid of the process appending to the Magu
 *   <dir>/networks/<key>/staging/              the fragment store a large put stages its shards in
 *
 * `<key>` is `networkKey` (`31337-0x5fbd…-1a2b3c4d5e6f`); `network.json` is compared with the
 * network read from the chain every time the directory is opened (`NetworkMismatchError` names both
 * when they differ), so a record is only ever read by its own network.
 *
 * A record lists files in commit order; `offset` is the Magu fragment index of the file's first
 * shard (the running sum of the shard counts before it). `put` appends an entry right after its
 * commitData lands, so the record covers exactly the fragments committed on chain. `get` reads a
 * file's offset from it; an append (`putInto`) reads the listed manifests to compute the new root.
 * Writes go to a temporary file renamed into place. The lock file is created exclusively; a lock
 * whose process is gone is taken over, so two appends from one directory cannot both commit over
 * the same old root.
 *
 * The old layout kept `<dir>/magus/<id>.json` for every network at once. Such a record is never
 * read as it is: the client adopts it into a network (`adoptLegacyRecord`, a move) only once it
 * proved to be that network's Magu (roles/client/client.ts: it covers the committed count and its
 * manifests fold to the root on chain); until then it stays where it is, unused.
 */
import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { link, mkdir, readdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { getAddress, type Hex } from "viem";
import { CID } from "multiformats/cid";
import { describeNetwork, networkKey, sameNetwork, type NetworkIdentity } from "../../chain/index.js";

/** One file of a Magu as the client recorded it. */
export interface RecordedFile {
  readonly manifestCid: CID;
  /** Magu fragment index of the file's first shard. */
  readonly offset: number;
  readonly shards: number;
  readonly fileSize: number;
}

/** A client directory's part for one network, opened by {@link openNetworkRecords}. */
export interface NetworkRecords {
  /** The client directory. */
  readonly root: string;
  /** `<root>/networks/<networkKey>`. */
  readonly dir: string;
  readonly network: NetworkIdentity;
}

/** A network as its `network.json` describes it (`rpcUrl`: where it was first reached; not compared). */
export interface StoredNetwork extends NetworkIdentity {
  rpcUrl?: string;
}

/** A record that cannot be read, or an append that does not continue it. */
export class MaguRecordError extends Error {
  readonly code = "ERR_MAGU_RECORD";
  constructor(message: string) {
    super(message);
    this.name = "MaguRecordError";
  }
}

/** A Magu another process of this client directory is appending to. */
export class MaguBusyError extends Error {
  readonly code = "ERR_MAGU_BUSY";
  constructor(message: string) {
    super(message);
    this.name = "MaguBusyError";
  }
}

/** A network directory whose `network.json` describes another network than the one in use. */
export class NetworkMismatchError extends Error {
  readonly code = "ERR_NETWORK_MISMATCH";
  constructor(
    message: string,
    readonly recorded: StoredNetwork | undefined,
    readonly current: NetworkIdentity,
  ) {
    super(message);
    this.name = "NetworkMismatchError";
  }
}

const NETWORK_FILE = "network.json";
const NETWORK_FILE_VERSION = 1;

/** `<root>/networks/<networkKey>`: where the client directory keeps what belongs to `network`. */
export function networkDirOf(root: string, network: NetworkIdentity): string {
  return join(root, "networks", networkKey(network));
}

/** The old layout's record of `maguId` (before records were kept per network). */
export function legacyRecordPath(root: string, maguId: bigint): string {
  return join(root, "magus", `${maguId}.json`);
}

function recordPath(records: NetworkRecords, maguId: bigint): string {
  return join(records.dir, "magus", `${maguId}.json`);
}

/**
 * Opens (creating on first use) the part of client directory `root` that belongs to `network`,
 * and checks its `network.json` against it.
 *
 * @throws NetworkMismatchError when `network.json` describes another network, or cannot be read.
 */
export async function openNetworkRecords(root: string, network: NetworkIdentity, opts: { rpcUrl?: string } = {}): Promise<NetworkRecords> {
  const dir = networkDirOf(root, network);
  const path = join(dir, NETWORK_FILE);
  const recorded = await readNetworkFile(path);
  if (recorded === undefined) {
    await mkdir(join(dir, "magus"), { recursive: true });
    const body = {
      version: NETWORK_FILE_VERSION,
      chainId: network.chainId,
      maguRegistry: network.maguRegistry,
      deployBlock: network.deployBlock.toString(),
      deployBlockHash: network.deployBlockHash,
      ...(opts.rpcUrl !== undefined ? { rpcUrl: opts.rpcUrl } : {}),
    };
    await writeAtomically(path, body);
  } else if (recorded === "unreadable" || !sameNetwork(recorded, network)) {
    const what = recorded === "unreadable" ? "cannot be read" : `describes ${describeNetwork(recorded)}`;
    throw new NetworkMismatchError(
      `client directory ${root}: ${path} ${what}, but this command uses ${describeNetwork(network)}: ` +
        `move ${dir} aside (it holds that network's records) or pass another --client-dir`,
      recorded === "unreadable" ? undefined : recorded,
      network,
    );
  }
  return { root, dir, network };
}

/** `network.json` at `path`: undefined when absent, "unreadable" when it is not a valid one. */
async function readNetworkFile(path: string): Promise<StoredNetwork | "unreadable" | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    return "unreadable";
  }
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    if (j.version !== NETWORK_FILE_VERSION || !Number.isSafeInteger(j.chainId) || typeof j.maguRegistry !== "string") return "unreadable";
    if (typeof j.deployBlock !== "string" || !/^\d+$/.test(j.deployBlock)) return "unreadable";
    if (typeof j.deployBlockHash !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(j.deployBlockHash)) return "unreadable";
    return {
      chainId: j.chainId as number,
      maguRegistry: getAddress(j.maguRegistry),
      deployBlock: BigInt(j.deployBlock),
      deployBlockHash: j.deployBlockHash as Hex,
      ...(typeof j.rpcUrl === "string" ? { rpcUrl: j.rpcUrl } : {}),
    };
  } catch {
    return "unreadable";
  }
}

async function writeAtomically(path: string, body: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(body, null, 1)}\n`);
  await rename(tmp, path);
}

/** Parses the record of `maguId` read from `path`. */
function parseRecord(path: string, text: string, maguId: bigint): RecordedFile[] {
  try {
    const parsed = JSON.parse(text) as { magu?: unknown; files?: unknown };
    if (parsed.magu !== maguId.toString() || !Array.isArray(parsed.files)) throw new Error("not a record of this Magu");
    let next = 0;
    return parsed.files.map((f: { manifest?: unknown; offset?: unknown; shards?: unknown; fileSize?: unknown }) => {
      if (typeof f.manifest !== "string" || f.offset !== next || !Number.isSafeInteger(f.shards) || !Number.isSafeInteger(f.fileSize)) {
        throw new Error(`file entry ${JSON.stringify(f)} is malformed or out of order`);
      }
      next += f.shards as number;
      return { manifestCid: CID.parse(f.manifest), offset: f.offset, shards: f.shards as number, fileSize: f.fileSize as number };
    });
  } catch (err) {
    throw new MaguRecordError(`client record ${path} is unreadable (${(err as Error).message}): restore it from a backup of the client directory`);
  }
}

/** The record at `path` (undefined when there is none). */
async function readRecordAt(path: string, maguId: bigint): Promise<RecordedFile[] | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return parseRecord(path, text, maguId);
}

/** The files recorded for `maguId` on this network, in commit order ([] when there is no record of it). */
export async function readMaguRecord(records: NetworkRecords, maguId: bigint): Promise<RecordedFile[]> {
  return (await readRecordAt(recordPath(records, maguId), maguId)) ?? [];
}

/** Appends `file` to the record of `maguId`; its offset must be the end of the recorded files. */
export async function appendMaguRecord(records: NetworkRecords, maguId: bigint, file: Omit<RecordedFile, "offset">, offset: number): Promise<RecordedFile> {
  const files = await readMaguRecord(records, maguId);
  const end = files.reduce((n, f) => n + f.shards, 0);
  if (offset !== end) {
    throw new MaguRecordError(`record of Magu ${maguId} on ${describeNetwork(records.network)} ends at fragment ${end}, cannot add a file at ${offset}`);
  }
  const entry: RecordedFile = { ...file, offset };
  await mkdir(join(records.dir, "magus"), { recursive: true });
  await writeAtomically(recordPath(records, maguId), recordBody(maguId, [...files, entry]));
  return entry;
}

function recordBody(maguId: bigint, files: readonly RecordedFile[]): unknown {
  return {
    magu: maguId.toString(),
    files: files.map((f) => ({ manifest: f.manifestCid.toString(), offset: f.offset, shards: f.shards, fileSize: f.fileSize })),
  };
}

/** The old layout's record of `maguId` in client directory `root`, if there is one (not yet proven to be any network's). */
export async function readLegacyRecord(root: string, maguId: bigint): Promise<{ path: string; files: RecordedFile[] } | undefined> {
  const path = legacyRecordPath(root, maguId);
  const files = await readRecordAt(path, maguId);
  return files === undefined ? undefined : { path, files };
}

/**
 * Moves the old layout's record of `maguId` into this network's directory, once the caller proved
 * it to be this network's Magu. Never overwrites: when this network already has a record of the
 * Magu, that one stays and the old one is left where it is. Returns whether it moved.
 */
export async function adoptLegacyRecord(records: NetworkRecords, maguId: bigint): Promise<boolean> {
  const from = legacyRecordPath(records.root, maguId);
  await mkdir(join(records.dir, "magus"), { recursive: true });
  try {
    await link(from, recordPath(records, maguId)); // fails with EEXIST instead of replacing
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST" || code === "ENOENT") return false; // this network's own record, or another process adopted it
    throw err;
  }
  await unlink(from).catch(() => undefined);
  return true;
}

/** The Magus whose record on this network lists `manifestCid`, in id order (unreadable records skipped). */
export async function findMagusRecording(records: NetworkRecords, manifestCid: CID): Promise<bigint[]> {
  const magusDir = join(records.dir, "magus");
  const found: bigint[] = [];
  for (const maguId of await recordIds(magusDir)) {
    const files = await readRecordAt(join(magusDir, `${maguId}.json`), maguId).catch(() => undefined);
    if (files?.some((f) => f.manifestCid.equals(manifestCid))) found.push(maguId);
  }
  return found;
}

/** Where else in the client directory a file with `manifestCid` is recorded. */
export interface RecordElsewhere {
  maguId: bigint;
  /** The network whose record lists it; undefined for an old-layout record (network unknown). */
  network?: StoredNetwork;
  path: string;
}

/** The record files in `magusDir` by Magu id, in id order ([] when there is no such directory). */
async function recordIds(magusDir: string): Promise<bigint[]> {
  return (await readdir(magusDir).catch(() => [] as string[]))
    .map((n) => /^(\d+)\.json$/.exec(n)?.[1])
    .filter((x): x is string => x !== undefined)
    .map(BigInt)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The other networks client directory `root` keeps a part for (every one but `exceptDir`; unreadable ones skipped). */
async function otherNetworks(root: string, exceptDir: string): Promise<Array<{ dir: string; network: StoredNetwork }>> {
  const others: Array<{ dir: string; network: StoredNetwork }> = [];
  for (const name of await readdir(join(root, "networks")).catch(() => [] as string[])) {
    const dir = join(root, "networks", name);
    if (dir === exceptDir) continue;
    const network = await readNetworkFile(join(dir, NETWORK_FILE));
    if (network !== undefined && network !== "unreadable") others.push({ dir, network });
  }
  return others;
}

/**
 * The records of other networks (and of the old layout) that list `manifestCid`: what explains a
 * get against the wrong network. Unreadable files are skipped.
 */
export async function findRecordsElsewhere(records: NetworkRecords, manifestCid: CID): Promise<RecordElsewhere[]> {
  const found: RecordElsewhere[] = [];
  const scan = async (magusDir: string, network: StoredNetwork | undefined): Promise<void> => {
    for (const maguId of await recordIds(magusDir)) {
      const path = join(magusDir, `${maguId}.json`);
      const files = await readRecordAt(path, maguId).catch(() => undefined);
      if (files?.some((f) => f.manifestCid.equals(manifestCid))) found.push({ maguId, network, path });
    }
  };
  for (const other of await otherNetworks(records.root, records.dir)) await scan(join(other.dir, "magus"), other.network);
  await scan(join(records.root, "magus"), undefined);
  return found;
}

/** What a client directory holds for a network (read only: nothing is created). */
export interface ClientDirSummary {
  /** `<root>/networks/<key>`, whether or not it exists yet. */
  networkDir: string;
  /** Magus this network's records list. */
  magus: bigint[];
  /** Magus of old-layout records not yet adopted by any network. */
  legacyMagus: bigint[];
  /** Other networks the directory keeps records for. */
  otherNetworks: StoredNetwork[];
  /** Spare Magus of this network (paid, formed and empty, for the next streamed put of their shape; {@link SpareMagu}). */
  spareMagus: bigint[];
}

/** Summarises client directory `root` as seen from `network` (for `muri status`). */
export async function summarizeClientDir(root: string, network: NetworkIdentity): Promise<ClientDirSummary> {
  const networkDir = networkDirOf(root, network);
  return {
    networkDir,
    magus: await recordIds(join(networkDir, "magus")),
    legacyMagus: await recordIds(join(root, "magus")),
    otherNetworks: (await otherNetworks(root, networkDir)).map((o) => o.network),
    spareMagus: (await listSpareMagus({ dir: networkDir })).spares.map((x) => BigInt(x.maguId)),
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes this network's `magus/<id>.lock`; returns its release. Throws MaguBusyError while another live process holds it. */
export async function lockMaguRecord(records: NetworkRecords, maguId: bigint): Promise<() => void> {
  await mkdir(join(records.dir, "magus"), { recursive: true });
  const path = join(records.dir, "magus", `${maguId}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: "wx" });
      return () => {
        try {
          if (readFileSync(path, "utf8").trim() === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let owner = NaN;
    try {
      owner = Number.parseInt(readFileSync(path, "utf8"), 10);
    } catch {
      // removed meanwhile
    }
    if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
      throw new MaguBusyError(`another put into Magu ${maguId} is running from this client directory (pid ${owner}): wait for it to finish`);
    }
    if (owner === process.pid) throw new MaguBusyError(`a put into Magu ${maguId} is already running in this process`);
    try {
      unlinkSync(path); // stale: its process is gone
    } catch {
      // someone else removed it
    }
  }
  throw new MaguBusyError(`could not lock ${path}: another put into Magu ${maguId} is starting`);
}

// ------------------------------------------------------------ interrupted puts

/**
 * A put into a new Magu in progress, so `muri put FILE --resume` can finish it after a crash or
 * Ctrl-C without paying twice: the file (size and mtime, to refuse a changed file), the encryption
 * file id (the same id re-encodes the same bytes to the same shards), the put's options, and, as
 * they become known, the Magu it paid for and the manifest CID. Kept in `puts/<hash of the path>.json`
 * of the network's directory until the put is recorded.
 */
export interface PendingPut {
  path: string;
  size: number;
  mtimeMs: number;
  fileId: string;
  k: number;
  m: number;
  members: number;
  durationPeriods: string;
  price: string;
  maguId?: string;
  manifestCid?: string;
}

/** Where the pending put of `path` is kept. */
export function pendingPutFile(records: NetworkRecords, path: string): string {
  return pendingPutPath(records, path);
}

function pendingPutPath(records: NetworkRecords, path: string): string {
  return join(records.dir, "puts", `${createHash("sha256").update(path).digest("hex").slice(0, 24)}.json`);
}

/** Writes (replaces) the pending put of `put.path`. */
export async function writePendingPut(records: NetworkRecords, put: PendingPut): Promise<void> {
  await mkdir(join(records.dir, "puts"), { recursive: true });
  await writeAtomically(pendingPutPath(records, put.path), put);
}

/** The pending put of `path`, if one was interrupted (undefined otherwise). */
export async function readPendingPut(records: NetworkRecords, path: string): Promise<PendingPut | undefined> {
  const file = pendingPutPath(records, path);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const put = JSON.parse(text) as PendingPut;
    if (put.path !== path || !/^[0-9a-f]+$/.test(put.fileId)) throw new Error("fields do not match");
    return put;
  } catch (err) {
    throw new MaguRecordError(`the pending put record ${file} is unreadable (${(err as Error).message}): move it aside to start the put afresh`);
  }
}

/** Forgets the pending put of `path` (it was recorded, or abandoned). */
export async function clearPendingPut(records: NetworkRecords, path: string): Promise<void> {
  await unlink(pendingPutPath(records, path)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
}

// ------------------------------------------------------------ spare Magus

/**
 * A Magu a streamed put paid for and formed but could not fill, its stream having been cut short
 * (an HTTP upload whose Magu was created as the body started). It holds nothing, and the next
 * streamed put of the same shape (`k`, `m`, `members`, periods, price and shard count, i.e. the same
 * Magu that put would pay for) fills it instead of paying again: a client retrying a dropped upload
 * pays once. Kept in `spares/<maguId>.json` of the network's directory until a put takes it.
 */
export interface SpareMagu {
  maguId: string;
  k: number;
  m: number;
  members: number;
  durationPeriods: string;
  price: string;
  shards: number;
}

/** The shape a put asks for: a spare is taken only when all of it matches. */
export type SpareShape = Omit<SpareMagu, "maguId">;

function sparesDir(records: Pick<NetworkRecords, "dir">): string {
  return join(records.dir, "spares");
}

/** Keeps `spare` for a later put of its shape. */
export async function addSpareMagu(records: NetworkRecords, spare: SpareMagu): Promise<void> {
  if (!/^[1-9][0-9]*$/.test(spare.maguId)) throw new Error(`spare Magu id "${spare.maguId}" is not a Magu id`);
  await mkdir(sparesDir(records), { recursive: true });
  await writeAtomically(join(sparesDir(records), `${spare.maguId}.json`), spare);
}

/** The spares kept, lowest id first; files that do not read as a spare are listed in `unreadable`. */
export async function listSpareMagus(records: Pick<NetworkRecords, "dir">): Promise<{ spares: SpareMagu[]; unreadable: string[] }> {
  let names: string[];
  try {
    names = await readdir(sparesDir(records));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { spares: [], unreadable: [] };
    throw err;
  }
  const spares: SpareMagu[] = [];
  const unreadable: string[] = [];
  for (const name of names.filter((n) => n.endsWith(".json"))) {
    const file = join(sparesDir(records), name);
    try {
      const s = JSON.parse(await readFile(file, "utf8")) as SpareMagu;
      const shaped =
        `${s.maguId}.json` === name &&
        [s.k, s.m, s.members, s.shards].every((n) => Number.isSafeInteger(n) && n >= 0) &&
        /^[0-9]+$/.test(s.durationPeriods) &&
        /^[0-9]+$/.test(s.price);
      if (!shaped) throw new Error("fields do not match");
      spares.push(s);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue; // taken meanwhile
      unreadable.push(file);
    }
  }
  spares.sort((a, b) => (BigInt(a.maguId) < BigInt(b.maguId) ? -1 : 1));
  return { spares, unreadable };
}

/**
 * Takes the lowest spare of `shape` off the list: removing its file is what takes it, so two puts,
 * in one process or two, never take the same one. Undefined when none matches.
 */
export async function takeSpareMagu(records: NetworkRecords, shape: SpareShape): Promise<SpareMagu | undefined> {
  const { spares } = await listSpareMagus(records);
  const same = (s: SpareMagu): boolean =>
    s.k === shape.k && s.m === shape.m && s.members === shape.members && s.durationPeriods === shape.durationPeriods && s.price === shape.price && s.shards === shape.shards;
  for (const spare of spares.filter(same)) {
    try {
      await unlink(join(sparesDir(records), `${spare.maguId}.json`));
      return spare;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  return undefined;
}
