/**
 * The storage client: put a file into a fresh blob Magu and get it back.
 *
 * put(path):
 * 1. encode (encrypt + erasure-code, data/pipeline.ts) into memory (at most `memoryStagingBytes` of
 *    shards waiting for their push, all puts of the client together, 1 GiB by default; a pushed
 *    shard frees its room) and beyond that a staging fragment store in the client directory; the
 *    shard count F, CIDs and fragment roots come out of it. The source is a file's path or a
 *    {@link PutStream} of known size (an HTTP body: not resumable, its Magu created only once the
 *    whole stream has arrived unless `formEarly`; a stream cut short after its Magu was formed
 *    leaves that Magu as a spare, client-record.ts `SpareMagu`, which the next stream of the same
 *    shape fills instead of paying for another);
 * 2. at the same time (F follows from the file size): createMagu (members, k, m, maxFragments = F,
 *    duration, price; escrow approved first), let two blocks pass (`hardhat_mine` when the RPC has
 *    it, else wait), formMagu; an encoding that fails after the Magu was formed says which Magu
 *    (empty, usable with putInto);
 * 3. once formed, open the Magu's first batch (batch.ts `open`: the owner lets this client's peer
 *    push before the root exists) and push each shard to the member placement names
 *    (`holderBlob`, dialing the multiaddrs registered in NodeRegistry) as the encoder stages it,
 *    so the pushes overlap the encoding;
 * 4. propose the batch (root over the fragment roots, F, the index document's CID), push the
 *    manifest and the Magu index document (magu-sync.ts) to every member, collect their
 *    acknowledgements and commitData with them; up to m members may be missing. The staged shards
 *    are deleted at the end (also when the put fails).
 * putInto(maguId, path): the same file path into an existing blob Magu the caller owns (checks first:
 * known, owned, blob, active and within its term, enough paid fragments left, and this directory's
 * record covers what is committed; then the earlier manifests are fetched from the members and must
 * fold to the on-chain root). The batch is opened before the encoding and the shards are pushed as
 * they are staged, as in put. The file's shards are appended: commitData(root over the old fragment
 * roots then the new ones, old count + F); the members get every manifest and a version-2 index
 * document listing them in commit order; shard f of the file is Magu fragment offset + f.
 * Every put records the file (manifest, offset, shards) in the record of its Magu, which the client
 * directory keeps per network (`<dir>/networks/<network>/magus/<id>.json`, client-record.ts): at
 * start the client reads the network's identity from the chain (chain id, MaguRegistry, hash of the
 * deployment block) and uses only that network's records and staging store. An old-layout record
 * (`<dir>/magus/<id>.json`) is adopted the first time a put or get needs the Magu, if it proves to
 * be this network's: it covers the committed count and its manifests fold to the root on chain;
 * otherwise it is left alone and the error that follows says so.
 * get({maguId, manifestCid}, out): the manifest from the first member that has it, then every
 * stripe from its holders; a holder that fails once is skipped for the rest of the get, and a
 * stripe missing up to m shards is rebuilt from parity. The file is written to `out.tmp` and
 * renamed into place once it decoded and authenticated completely.
 *
 * putDirectory(path): the tree packed into one file (folder.ts; docs/ENCODING.md § Directories) and
 * put as above, new Magu or appended, with the directory content code sealed beside its size;
 * `compress` on any put compresses first (a file through a temporary compressed copy). get of a
 * directory restores the tree (or, with `path`, one entry of it, decoding only the fragments that
 * hold it); list reads only the trailer and the directory nodes.
 *
 * The 32-byte secret that keys the encryption is `<dir>/secret.key` (created on first use, mode
 * 0600); it never leaves the client.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { lstat, mkdir, realpath, rename, rm, stat, statfs } from "node:fs/promises";
import { createKeyFile, readKeyFile } from "../../store/key-file.js";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { PeerId } from "@libp2p/interface";
import { CID } from "multiformats/cid";
import { parseEventLogs, type Address, type Hex } from "viem";
import {
  createChainClients,
  describeError,
  describeNetwork,
  formInWindow,
  getMuriContracts,
  maguRegistryAbi,
  readNetworkIdentity,
  settledRequestBlock,
  verifyChain,
  type Deployment,
  type Formation,
  type MuriContracts,
  type MuriPublicClient,
  type MuriWalletClient,
  type SigningChainClients,
} from "../../chain/index.js";
import { decodeManifest, type Manifest } from "../../data/manifest.js";
import { maguRoot } from "../../data/merkle.js";
import { CONTENT_DIRECTORY, CONTENT_RAW, FileKey, fileKeyOf, newFileId, type KeySource } from "../../data/crypto.js";
import { chooseCompression, compressionOfContent, contentOf, decompressor, SAMPLE_BYTES, type CompressionChoice } from "../../data/compression.js";
import type { TreeEntry } from "../../data/directory.js";
import { decodeFile, decodeRange, encodeFile, openManifest, type EncodeResult, type OpenedManifest, type ShardFetcher } from "../../data/pipeline.js";
import { holderBlob } from "../../data/placement.js";
import { RemoteRefusedError, type P2PNode } from "../../p2p/index.js";
import { openFragmentStore, silentLogger, type FragmentStore, type Logger } from "../../store/index.js";
import { FRAGMENT_SIZE } from "../../data/constants.js";
import { ENCRYPTION_OVERHEAD } from "../../data/crypto.js";
import { layoutFor } from "../../data/manifest.js";
import { encodeMaguIndexDocument, encodeMaguIndexList } from "../shared/magu-sync.js";
import {
  adoptLegacyRecord,
  appendMaguRecord,
  clearPendingPut,
  findMagusRecording,
  findRecordsElsewhere,
  lockMaguRecord,
  openNetworkRecords,
  readLegacyRecord,
  readMaguRecord,
  pendingPutFile,
  readPendingPut,
  writePendingPut,
  addSpareMagu,
  takeSpareMagu,
  type NetworkRecords,
  type SpareShape,
  type RecordedFile,
} from "./client-record.js";
import { createClientNode, pushToValidators, registeredPeer } from "../shared/peers.js";
import { ClientAccess, createClientAccess, isAccessRefusal, isReadPaymentRefusal } from "./access.js";
import { compressFile, packDirectory, prepareTarget, readHead, readPackTree, restoreTree, sequentialEntries, subtree, writeEntry, type PackStats } from "./folder.js";
import { BatchDelivery, BatchUnavailableError, type BatchDeps, type BatchResult, type MissingMember, type SlotMember } from "./batch.js";
import { ShardQueue, drainQueue } from "./shard-queue.js";
import { ProgressTracker, type ProgressListener } from "./progress.js";
import type { VectorClientErrorCode } from "./vector-client.js";
import { CLIENT_DEFAULTS } from "./defaults.js";

export { CLIENT_DEFAULTS };

const RECEIPT_TIMEOUT_MS = 60_000;
/** MaguRegistry `Kind.Blob`, `Status.None` / `Status.Active`, and the status names. */
const KIND_BLOB = 0;
const STATUS_NONE = 0;
const STATUS_ACTIVE = 2;
const STATUS_NAMES = ["none", "requested", "active", "ended", "cancelled"];
const ZERO_ADDRESS = /^0x0{40}$/i;
const STAGING_QUOTA_BYTES = 2 ** 40;
const SECRET_BYTES = 32;

/** What a {@link StorageClientError} reports. */
export type StorageClientErrorCode =
  /** get: the Magu charges for reads and the members refused this client's payment (no deposit, price above its max). */
  | "ERR_READ_PAYMENT"
  | "ERR_TX_FAILED"
  | "ERR_PUSH_FAILED"
  /** put --resume: no interrupted put of that file here, or the file changed since. */
  | "ERR_NOTHING_TO_RESUME"
  /** put: an earlier put of the file paid for a Magu and was interrupted (finish it with resume). */
  | "ERR_PUT_INTERRUPTED"
  | "ERR_FILE_CHANGED"
  /** Too many members did not take a batch (more than m): nothing was committed. */
  | "ERR_NOT_AVAILABLE"
  | "ERR_MANIFEST_NOT_FOUND"
  | "ERR_CLIENT_NOT_STARTED"
  | "ERR_BLOCK_WAIT"
  /** put: the file could not be encoded after its Magu was created (the error names the Magu). */
  | "ERR_ENCODE_FAILED"
  /** putInto: no Magu with that id. */
  | "ERR_MAGU_UNKNOWN"
  /** putInto: the Magu belongs to another account. */
  | "ERR_MAGU_NOT_OWNER"
  /** putInto: a vector Magu. */
  | "ERR_MAGU_KIND"
  /** putInto: not active, or its term is over. */
  | "ERR_MAGU_NOT_ACTIVE"
  /** putInto: fewer paid fragments left than the file needs. */
  | "ERR_MAGU_FULL"
  /** put: staging another shard on disk would leave less free space than ClientInit.stagingDiskReserveBytes. */
  | "ERR_DISK_FULL"
  /** putInto / get: this client directory's record does not match the Magu. */
  | "ERR_MAGU_RECORD"
  /** get: the file is recorded on another network than the one the command uses (the error names both). */
  | "ERR_OTHER_NETWORK"
  /** locate: more than one Magu's record lists the manifest (the caller must name the Magu). */
  | "ERR_AMBIGUOUS_MANIFEST"
  /** get --path / list: the reference is a file, not a directory. */
  | "ERR_NOT_A_DIRECTORY"
  /** get --path: no entry of the directory has that path (or it is a symlink). */
  | "ERR_PATH_NOT_FOUND"
  /** get: the output is in the way (a directory where a file goes). */
  | "ERR_OUTPUT_EXISTS"
  /** fileKey: the manifest does not open with this client's secret (another client stored it). */
  | "ERR_NOT_YOUR_FILE"
  /** get with a shared key: the manifest is another file than the key opens. */
  | "ERR_SHARE_MISMATCH"
  /** put of a stream: it gave more or fewer bytes than its size said (or was cut), or an option a stream cannot take. */
  | "ERR_SOURCE";

/** A client operation that failed; `code` names the condition, `context` says where. */
export class StorageClientError extends Error {
  readonly code: string;
  readonly context: Record<string, unknown>;
  constructor(code: StorageClientErrorCode | VectorClientErrorCode, message: string, context: Record<string, unknown>, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "StorageClientError";
    this.code = code;
    this.context = context;
  }
}

export interface ClientInit {
  /** Client directory: secret key, libp2p key, and per network the Magu records and staging store. */
  dir: string;
  deployment: Deployment;
  rpcUrl?: string;
  /** The client account's key (pays escrow and gas). */
  privateKey: Hex;
  /** Grant tokens for private Magus this client does not own (`muri magu grant` output). */
  grants?: readonly string[];
  /** The most this client pays per fragment read of a priced Magu, in wei (default: the chain's quote at first read). */
  maxReadPrice?: bigint;
  /** See CLIENT_DEFAULTS.memoryStagingBytes (0: always stage on disk). */
  memoryStagingBytes?: number;
  /**
   * Free disk space a put's shards staged on disk must leave on the staging store's file system
   * (`muri serve --disk-reserve`): the shard that would pass it fails the put with ERR_DISK_FULL
   * before it is written. None: only the disk itself stops the staging store (DiskFullError).
   */
  stagingDiskReserveBytes?: number;
  /**
   * Push each shard as soon as it is encoded (default true). False pushes only once the whole
   * file is encoded: the sequential baseline bench/helia.ts measures the overlap against.
   */
  pushWhileEncoding?: boolean;
}

export interface ClientComponents {
  logger?: Logger;
}

export interface PutOptions {
  k?: number;
  m?: number;
  members?: number;
  durationPeriods?: bigint;
  pricePerFragmentPeriod?: bigint;
  /**
   * Finish an interrupted put of this path (client-record.ts `PendingPut`): the same Magu (nothing
   * paid twice), the same encryption file id and the options the put was started with.
   */
  resume?: boolean;
  /**
   * Compress before encryption (data/compression.ts): `auto` keeps compression only where a
   * sample shrinks by 10 % or more; a directory decides per file. Default none.
   */
  compress?: CompressionChoice;
  /** Hears the put's progress (progress.ts): bytes encoded, fragments pushed, acknowledgements. */
  onProgress?: ProgressListener;
}

/** Options of {@link StorageClient.get}. */
export interface GetOptions {
  /** A directory: fetch only this entry (a file, or a subdirectory's tree) to the output. */
  path?: string;
  /** A directory: write into a non-empty output directory, replacing files of the same paths. */
  force?: boolean;
  /** The file's own key, shared by its owner (`muri share`), instead of this client's secret. */
  fileKey?: FileKey;
}

/** What {@link StorageClient.putDirectory} stored besides the {@link PutResult}. */
export interface PutDirectoryResult extends PutResult {
  directory: PackStats;
}

/** Where a stored file lives. */
export interface FileRef {
  maguId: bigint;
  manifestCid: CID;
}

export interface PutResult extends FileRef {
  /** Bytes encrypted and stored: the file's size, or its compressed size, or a directory's pack size. */
  fileSize: number;
  /** The compression a file was stored with, if any. */
  compression?: string;
  shards: number;
  /** Magu fragment index of the file's first shard (0 for a new Magu). */
  offset: number;
  /** Fragments committed to the Magu after this put. */
  fragmentCount: number;
  members: Address[];
  /** Members that did not acknowledge the batch (down, unreachable, refused): they fetch it later. */
  missing: MissingMember[];
}

export interface GetResult {
  /** Bytes written: the file's size (decompressed), or the sum of a directory's files. */
  fileSize: number;
  /** What the reference is (the content code sealed in its manifest). */
  kind: "file" | "directory";
  /** A directory: files, directories and symlinks written. */
  entries?: { files: number; directories: number; symlinks: number };
  /** Shards fetched and used. */
  fetched: number;
  /** Shard fetches that failed (holder down, or skipped after a failure). */
  failed: number;
  /** Members skipped after a failure. */
  unreachable: Address[];
}

/** A stored file's Magu, members and stripes (`GET /v1/blobs/{cid}/status`). */
export interface BlobStatus {
  maguId: bigint;
  manifestCid: string;
  fileSize: number;
  k: number;
  m: number;
  members: Array<{ slot: number; address: Address; reachable: boolean }>;
  /** Per stripe: its shards on reachable members, and whether that is at least k (the file can be read). */
  stripes: Array<{ stripe: number; available: number; readable: boolean }>;
}

/** {@link StorageClient.openRanges}: a stored file's size and a reader of its byte ranges. */
export interface RangeReader {
  fileSize: number;
  /** Stored as it is (not compressed, not a directory pack): its byte ranges are the file's. */
  raw: boolean;
  /** A directory pack (`list` and `get` with a path read it). */
  directory: boolean;
  /** Bytes [offset, offset + length) of the stored bytes, fetching only the fragments holding them. */
  read(offset: number, length: number): AsyncIterable<Buffer>;
  /** All the stored bytes in order, the next stripes fetched while one is decrypted (as `get` reads). */
  all(): AsyncIterable<Buffer>;
  /** Shards fetched (and failed) so far. */
  stats(): Pick<GetResult, "fetched" | "failed" | "unreachable">;
}

/**
 * Bytes to put that arrive as a stream (an HTTP request body) instead of from a file: `size` is
 * known before the first byte (the Magu's size follows from it) and the stream must give exactly
 * that many. Such a put cannot be resumed or compressed, and a new Magu for it is created only once
 * every byte has arrived: a stream cut short costs nothing and leaves nothing committed.
 */
export interface PutStream {
  /** Names the upload in logs and errors. */
  readonly name: string;
  readonly size: number;
  readonly bytes: AsyncIterable<Uint8Array>;
  /**
   * Create the new Magu as the stream starts, as for a file, not once it has all arrived: the
   * formation and the pushes overlap the upload, but a stream cut short leaves the Magu created,
   * paid and empty. It is kept as a spare that the next stream of the same shape fills (the error,
   * `ERR_ENCODE_FAILED`, names it; it can also be put into by its id).
   */
  readonly formEarly?: boolean;
}

/** What a put stores: a file's path, or a {@link PutStream}. */
export type PutSource = string | PutStream;

export interface StorageClient {
  start(): Promise<void>;
  stop(): Promise<void>;
  put(source: PutSource, options?: PutOptions): Promise<PutResult>;
  /** Appends a file to an existing blob Magu the caller owns (see the module comment). */
  putInto(maguId: bigint, source: PutSource, options?: Pick<PutOptions, "compress" | "onProgress">): Promise<PutResult>;
  /** Fetches a file or directory; `fileKey` (a share's, `muri share`) opens one another client stored. */
  get(ref: FileRef, outPath: string, options?: GetOptions): Promise<GetResult>;
  /** A stored file's size from its manifest (no shard fetched). */
  stat(ref: FileRef): Promise<{ fileSize: number; manifest: Manifest }>;
  /** The Magu holding a file, its members' reachability and every stripe's health. */
  status(ref: FileRef): Promise<BlobStatus>;
  /** The key of a file this client stored, for `muri share` (ERR_NOT_YOUR_FILE otherwise). */
  fileKey(ref: FileRef): Promise<{ fileKey: FileKey; manifest: Manifest }>;
  /** A stored file opened for byte-range reads that fetch only the fragments holding the range. */
  openRanges(ref: FileRef): Promise<RangeReader>;
  /** Stores the directory tree at `path` as one pack (folder.ts) in a new blob Magu, or appended to `into`. */
  putDirectory(path: string, options?: PutOptions, into?: bigint): Promise<PutDirectoryResult>;
  /** The entries of a stored directory (paths, kinds, sizes, modes), fetching only its trailer and nodes. */
  list(ref: FileRef): Promise<TreeEntry[]>;
  /** The Magu this network's records list `manifestCid` in (`muri get CID` without --magu). */
  locate(manifestCid: CID): Promise<bigint>;
  /** What this client prepaid for reads of `maguId` so far (a Magu with a read price; else zeros). */
  readsPaid(maguId: bigint): { fragments: bigint; wei: bigint };
  readonly address: Address;
}

/**
 * Reads a put's source once: its bytes, how many were read so far, and `complete`, which resolves
 * once a stream gave exactly its size (rejects when it gave more, fewer, or failed).
 */
function readSource(from: PutSource): { bytes: AsyncIterable<Uint8Array>; read: () => number; complete: Promise<void> } {
  if (typeof from === "string") {
    const stream = createReadStream(from);
    return { bytes: stream, read: () => stream.bytesRead, complete: Promise.resolve() };
  }
  const source = from;
  let read = 0;
  let settle!: (err?: unknown) => void;
  const complete = new Promise<void>((resolve, reject) => (settle = (err) => (err === undefined ? resolve() : reject(err as Error))));
  complete.catch(() => undefined); // a failed stream fails the encoding too, which reports it
  const short = (): StorageClientError =>
    new StorageClientError("ERR_SOURCE", `${source.name} stopped after ${read} of its ${source.size} bytes: nothing was stored; send it again`, { name: source.name, size: source.size, read });
  async function* exactly(): AsyncGenerator<Uint8Array> {
    let done = false;
    try {
      for await (const chunk of source.bytes) {
        read += chunk.length;
        if (read > source.size) throw new StorageClientError("ERR_SOURCE", `${source.name} gave more than the ${source.size} bytes it announced: nothing was stored`, { name: source.name, size: source.size });
        yield chunk;
      }
      if (read !== source.size) throw short();
      done = true;
      settle();
    } catch (err) {
      settle(err);
      throw err;
    } finally {
      if (!done) settle(short());
    }
  }
  return { bytes: exactly(), read: () => read, complete };
}

export function createClient(init: ClientInit, components: ClientComponents = {}): StorageClient {
  return new Client(init, components);
}

/**
 * Loads the 32-byte secret at `path`, creating it (mode 0600, fsynced with its directory: the only
 * key to the data must survive a power cut) when missing. A secret others can read is refused.
 */
export async function loadOrCreateSecret(path: string): Promise<Buffer> {
  try {
    const bytes = await readKeyFile(path);
    if (bytes.length !== SECRET_BYTES) throw new Error(`secret key ${path} is ${bytes.length} bytes, expected ${SECRET_BYTES}`);
    return bytes;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const secret = randomBytes(SECRET_BYTES);
  await createKeyFile(path, secret);
  return secret;
}

/** Shards (Magu fragments) of a file of `fileSize` bytes: whole stripes of k + m 1 MiB shards. */
export function shardCountOf(fileSize: number, k: number, m: number): number {
  return layoutFor(fileSize, FRAGMENT_SIZE - ENCRYPTION_OVERHEAD, k).stripes * (k + m);
}

/** A manifest fetched from a member: its CID, decoded form and bytes. */
interface Fetched {
  cid: CID;
  manifest: Manifest;
  bytes: Uint8Array;
}

/** What a Magu's committed data is on chain. */
interface MaguData {
  root: Hex;
  fragmentCount: number;
}

/**
 * `fetch` with the last 64 shards it fetched kept: reading a directory's entries one range at a
 * time asks for the fragment that holds many small files again and again.
 */
function cachingFetcher(fetch: ShardFetcher): ShardFetcher {
  const kept = new Map<string, Promise<Uint8Array | undefined>>();
  return (cid, where) => {
    const key = cid.toString();
    let got = kept.get(key);
    if (got === undefined) {
      got = fetch(cid, where);
      kept.set(key, got);
      if (kept.size > 64) kept.delete(kept.keys().next().value!);
    }
    return got;
  };
}

/** The fragment roots of `files`' manifests, in order. */
function rootsOf(files: readonly Fetched[]): Buffer[] {
  return files.flatMap((f) => f.manifest.roots.map((r) => Buffer.from(r, "hex")));
}

/** The Magu root over `roots`, 0x-hex. */
function hexRoot(roots: readonly Buffer[]): Hex {
  return `0x${maguRoot([...roots]).toString("hex")}`;
}

/** Whether the fragment roots of `files`, concatenated, fold to `root`. */
function foldsTo(files: readonly Fetched[], root: Hex): boolean {
  return hexRoot(rootsOf(files)).toLowerCase() === root.toLowerCase();
}

/** Bytes of encoded shards a client's puts keep in memory at once (shared by its concurrent puts). */
export interface StagingBudget {
  readonly limit: number;
  used: number;
}

/**
 * Where a put's encoded shards wait for their push: in memory while the client's
 * {@link StagingBudget} has room (a pushed shard gives its room back), else in the client's staging
 * store (written without a second hash, read back with one, so what is pushed is what the encoder
 * made). Memory stays bounded whatever the file's size or how far the encoder runs ahead of the pushes.
 */
export class ShardStage {
  private readonly memory = new Map<string, Uint8Array>();
  private readonly staged: CID[] = [];
  /** `reserve`: the free space to leave under `dir` when a shard goes to the store (checked before each such write). */
  constructor(
    private readonly store: FragmentStore,
    private readonly budget: StagingBudget,
    private readonly reserve?: { dir: string; bytes: number },
  ) {}

  async put(cid: CID, bytes: Uint8Array): Promise<void> {
    if (this.budget.used + bytes.length <= this.budget.limit) {
      this.memory.set(cid.toString(), bytes);
      this.budget.used += bytes.length;
      return;
    }
    if (this.reserve !== undefined) await this.leavesReserve(bytes.length);
    await this.store.put(cid, bytes, { verify: false });
    this.staged.push(cid);
  }

  /** Throws ERR_DISK_FULL when writing `needed` more bytes would leave less than the reserve free. */
  private async leavesReserve(needed: number): Promise<void> {
    const { dir, bytes: reserve } = this.reserve!;
    const fs = await statfs(dir);
    const free = fs.bavail * fs.bsize;
    if (free - needed < reserve) {
      throw new StorageClientError(
        "ERR_DISK_FULL",
        `staging this put's shards does not fit on this machine's disk: ${free} bytes free under ${dir}, the next shard needs ${needed}, and ${reserve} must stay free (muri serve --disk-reserve): free space or put a smaller file; nothing of this put was committed`,
        { dir, freeBytes: free, neededBytes: needed, reserveBytes: reserve },
      );
    }
  }

  get(cid: CID): Promise<Uint8Array> {
    const bytes = this.memory.get(cid.toString());
    return bytes !== undefined ? Promise.resolve(bytes) : this.store.get(cid);
  }

  /** The shard was pushed (or its holder given up on): its memory is room for the shards to come. */
  release(cid: CID): void {
    const key = cid.toString();
    const bytes = this.memory.get(key);
    if (bytes === undefined) return;
    this.memory.delete(key);
    this.budget.used -= bytes.length;
  }

  async clear(): Promise<void> {
    for (const bytes of this.memory.values()) this.budget.used -= bytes.length;
    this.memory.clear();
    for (const cid of this.staged.splice(0)) await this.store.delete(cid).catch(() => false);
  }
}

type WriteContracts = MuriContracts<{ public: MuriPublicClient; wallet: MuriWalletClient }>;

interface Member {
  address: Address;
  peerId: PeerId;
}

class Client implements StorageClient {
  private readonly log: Logger;
  private readonly clients: SigningChainClients;
  private readonly contracts: WriteContracts;
  private p2p: P2PNode | undefined;
  private access: ClientAccess | undefined;
  private staging: FragmentStore | undefined;
  private readonly stagingBudget: StagingBudget;
  /** Per Magu, the end of the last put into it queued in this process. */
  private readonly appending = new Map<string, Promise<void>>();
  private secret: Buffer | undefined;
  private network: NetworkRecords | undefined;

  constructor(
    private readonly init: ClientInit,
    components: ClientComponents,
  ) {
    this.log = components.logger ?? silentLogger;
    this.clients = createChainClients({ rpcUrl: init.rpcUrl ?? init.deployment.rpcUrl, chainId: init.deployment.chainId, privateKey: init.privateKey });
    this.contracts = getMuriContracts(init.deployment.contracts, this.clients);
    this.stagingBudget = { limit: init.memoryStagingBytes ?? CLIENT_DEFAULTS.memoryStagingBytes, used: 0 };
  }

  get address(): Address {
    return this.clients.account.address;
  }

  async start(): Promise<void> {
    if (this.p2p !== undefined) return;
    await mkdir(this.init.dir, { recursive: true });
    await verifyChain(this.clients.publicClient, this.init.deployment.chainId, this.clients.rpcUrl);
    const identity = await readNetworkIdentity(this.clients.publicClient, this.init.deployment, this.clients.rpcUrl);
    this.network = await openNetworkRecords(this.init.dir, identity, { rpcUrl: this.clients.rpcUrl });
    this.secret = await loadOrCreateSecret(join(this.init.dir, "secret.key"));
    this.staging = await openFragmentStore({ dir: join(this.network.dir, "staging"), quotaBytes: STAGING_QUOTA_BYTES, logger: this.log });
    const p2p = await createClientNode(this.init.dir);
    try {
      await p2p.start();
    } catch (err) {
      await this.staging.close();
      throw err;
    }
    this.p2p = p2p;
    this.access = createClientAccess(this.init, this.clients, { contracts: this.contracts, p2p });
  }

  async stop(): Promise<void> {
    const p2p = this.p2p;
    this.p2p = undefined;
    await p2p?.stop();
    await this.staging?.close();
    this.staging = undefined;
  }

  private running(): { p2p: P2PNode; staging: FragmentStore; secret: Buffer; records: NetworkRecords } {
    if (this.p2p === undefined || this.staging === undefined || this.secret === undefined || this.network === undefined) {
      throw new StorageClientError("ERR_CLIENT_NOT_STARTED", "client not started: call start() first", {});
    }
    return { p2p: this.p2p, staging: this.staging, secret: this.secret, records: this.network };
  }

  private async send(what: string, hash: Promise<Hex>): Promise<bigint> {
    let receipt;
    try {
      receipt = await this.clients.publicClient.waitForTransactionReceipt({ hash: await hash, pollingInterval: 100, timeout: RECEIPT_TIMEOUT_MS });
    } catch (err) {
      throw new StorageClientError("ERR_TX_FAILED", `${what} failed: ${describeError(err)}`, { what }, err);
    }
    if (receipt.status !== "success") throw new StorageClientError("ERR_TX_FAILED", `${what} reverted (tx ${receipt.transactionHash})`, { what, tx: receipt.transactionHash });
    this.log.debug("tx mined", { what, block: receipt.blockNumber });
    return receipt.blockNumber;
  }

  /** The members by slot: vacant slots and members that cannot be looked up are left out (and why). */
  private async slotMembers(addresses: readonly Address[]): Promise<{ slots: Array<SlotMember | undefined>; unreachable: Map<number, { address: Address; error: string }> }> {
    const { p2p } = this.running();
    const unreachable = new Map<number, { address: Address; error: string }>();
    const slots = await Promise.all(
      addresses.map(async (address, slot) => {
        if (ZERO_ADDRESS.test(address)) return undefined;
        try {
          return { address, peerId: await registeredPeer(this.contracts, p2p, address) };
        } catch (err) {
          unreachable.set(slot, { address, error: `registered address unusable: ${(err as Error).message}` });
          return undefined;
        }
      }),
    );
    return { slots, unreachable };
  }

  /** What batch.ts needs from this client. */
  private batchDeps(): BatchDeps {
    return {
      libp2p: this.running().p2p.libp2p,
      clients: this.clients,
      deployment: this.init.deployment,
      commit: (args) => this.send("commitData", this.contracts.maguRegistry.write.commitData(args)),
      log: this.log,
      requestTimeoutMs: CLIENT_DEFAULTS.transferTimeoutMs,
    };
  }

  /** Finishes a batch (batch.ts); one too few members took becomes ERR_NOT_AVAILABLE. */
  private async finishBatch(delivery: BatchDelivery, content: Parameters<BatchDelivery["finish"]>[0], push: Parameters<BatchDelivery["finish"]>[1], progress: ProgressTracker): Promise<BatchResult> {
    try {
      return await delivery.finish(content, push, progress);
    } catch (err) {
      if (err instanceof BatchUnavailableError) {
        throw new StorageClientError("ERR_NOT_AVAILABLE", err.message, { maguId: err.maguId, missing: err.missing }, err);
      }
      throw err;
    }
  }

  /** Registered peer id and multiaddrs of each member, added to the peer store. */
  private async members(addresses: readonly Address[]): Promise<Member[]> {
    const { p2p } = this.running();
    return Promise.all(addresses.map(async (address) => ({ address, peerId: await registeredPeer(this.contracts, p2p, address) })));
  }

  async put(source: PutSource, options: PutOptions = {}): Promise<PutResult> {
    return this.withCompression(source, options.compress, (from, content) => this.putPath(from, options, content));
  }

  async putInto(maguId: bigint, source: PutSource, options: Pick<PutOptions, "compress" | "onProgress"> = {}): Promise<PutResult> {
    return this.withCompression(source, options.compress, (from, content) => this.putIntoPath(maguId, from, content, options.onProgress));
  }

  async putDirectory(path: string, options: PutOptions = {}, into?: bigint): Promise<PutDirectoryResult> {
    const pack = await this.tempFile("dir");
    try {
      const directory = await packDirectory(resolve(path), pack, options.compress ?? "none");
      this.log.info("packed", { path, files: directory.files, bytes: directory.bytes, packSize: directory.packSize });
      const result = into === undefined ? await this.putPath(pack, options, CONTENT_DIRECTORY) : await this.putIntoPath(into, pack, CONTENT_DIRECTORY, options.onProgress);
      return { ...result, directory };
    } finally {
      await this.dropTemp(pack);
    }
  }

  /**
   * Runs `put` on `path` as it is, or, when `compress` chooses a compression for it (a sample of
   * its first bytes decides `auto`), on a compressed copy in the client directory (streamed: no
   * whole-file buffer), sealed with the content code that says how to decompress it.
   */
  private async withCompression(path: PutSource, compress: CompressionChoice | undefined, put: (source: PutSource, content: number) => Promise<PutResult>): Promise<PutResult> {
    if (compress === undefined || compress === "none") return put(path, CONTENT_RAW);
    if (typeof path !== "string") {
      throw new StorageClientError("ERR_SOURCE", `${path.name}: a stream is stored as it is (its compressed size is not known before it is read): compress it first, or put it from a file`, { name: path.name });
    }
    const { compression } = chooseCompression(compress, await readHead(path, SAMPLE_BYTES));
    if (compression === undefined) return put(path, CONTENT_RAW);
    const copy = await this.tempFile("zip");
    try {
      const { size, stored } = await compressFile(path, copy, compression);
      this.log.info("compressed", { path, compression, size, stored });
      return { ...(await put(copy, contentOf(compression))), compression };
    } finally {
      await this.dropTemp(copy);
    }
  }

  /** A fresh path for a pack or a compressed copy, under this network's part of the client directory. */
  private async tempFile(kind: string): Promise<string> {
    const dir = join(this.running().records.dir, "packs");
    await mkdir(dir, { recursive: true });
    return join(dir, `${kind}-${randomBytes(8).toString("hex")}.tmp`);
  }

  /** Deletes a temporary upload source and its pending-put record (such a put is not resumable). */
  private async dropTemp(path: string): Promise<void> {
    await rm(path, { force: true });
    await clearPendingPut(this.running().records, path).catch(() => undefined);
  }

  private async putPath(source: PutSource, options: PutOptions, content: number): Promise<PutResult> {
    const { p2p, staging, secret, records } = this.running();
    const started = performance.now();
    // A stream is not resumable: no pending-put record, and its Magu is created once it has all
    // arrived (unless `formEarly`), or is a spare an earlier cut stream left (`takeSpare`).
    const resumable = typeof source === "string";
    const path = typeof source === "string" ? source : source.name;
    const st = typeof source === "string" ? await stat(source) : { size: source.size, mtimeMs: Date.now() };
    const fileSize = st.size;
    if (!resumable && options.resume === true) throw new StorageClientError("ERR_SOURCE", `${path}: a stream cannot be resumed; send it again`, { name: path });
    // An interrupted put is finished with what it started with; a new one is recorded as pending
    // until its file is in the Magu's record (client-record.ts, `PendingPut`).
    let pending = resumable ? await readPendingPut(records, path) : undefined;
    if (options.resume === true) {
      if (pending === undefined) {
        throw new StorageClientError("ERR_NOTHING_TO_RESUME", `no interrupted put of ${path} in ${this.init.dir} on ${describeNetwork(records.network)}: put it without --resume`, { path });
      }
      if (pending.size !== fileSize || pending.mtimeMs !== st.mtimeMs) {
        throw new StorageClientError(
          "ERR_FILE_CHANGED",
          `${path} changed since its put was interrupted (size ${pending.size} -> ${fileSize}, mtime ${pending.mtimeMs} -> ${st.mtimeMs}): put it without --resume` +
            (pending.maguId !== undefined ? ` (Magu ${pending.maguId}, paid for by the interrupted put, takes it with --magu ${pending.maguId})` : ""),
          { path, maguId: pending.maguId },
        );
      }
    } else {
      // A new put would pay a second escrow: say how to finish the paid one, or how to drop it.
      if (pending?.maguId !== undefined) {
        throw new StorageClientError(
          "ERR_PUT_INTERRUPTED",
          `a put of ${path} was interrupted after it paid for Magu ${pending.maguId}: finish it with --resume ` +
            `(or delete ${pendingPutFile(records, path)} to start afresh and pay again)`,
          { path, maguId: pending.maguId },
        );
      }
      pending = {
        path,
        size: fileSize,
        mtimeMs: st.mtimeMs,
        fileId: newFileId().toString("hex"),
        k: options.k ?? CLIENT_DEFAULTS.k,
        m: options.m ?? CLIENT_DEFAULTS.m,
        members: options.members ?? CLIENT_DEFAULTS.members,
        durationPeriods: String(options.durationPeriods ?? CLIENT_DEFAULTS.durationPeriods),
        price: String(options.pricePerFragmentPeriod ?? CLIENT_DEFAULTS.pricePerFragmentPeriod),
      };
      if (resumable) await writePendingPut(records, pending);
    }
    const remember = async (): Promise<void> => {
      if (resumable) await writePendingPut(records, put);
    };
    const put = pending;
    const { k, m, members: nMembers } = put;
    const durationPeriods = BigInt(put.durationPeriods);
    const price = BigInt(put.price);

    // 1. Encode into the staging store while 2. the Magu is created and formed: its size (the
    //    shard count) follows from the file size, so the chain work need not wait for the encoding.
    const expected = shardCountOf(fileSize, k, m);
    // A stream fills a spare Magu of its shape, one an earlier cut stream paid for, before paying again.
    const shape: SpareShape = { k, m, members: nMembers, durationPeriods: put.durationPeriods, price: put.price, shards: expected };
    if (!resumable && put.maguId === undefined) put.maguId = (await this.takeSpare(shape))?.toString();
    const progress = new ProgressTracker(options.onProgress, { phase: "encrypting and encoding", bytesTotal: fileSize, fragmentsTotal: expected });
    let encodedAll = false;
    let formed = false;
    const input = readSource(source);
    const forming =
      put.maguId !== undefined
        ? this.formPaid(BigInt(put.maguId))
        : (typeof source === "string" || source.formEarly === true ? Promise.resolve() : input.complete).then(() =>
            this.createAndForm({ k, m, members: nMembers, durationPeriods, price, count: expected }, async (maguId) => {
              put.maguId = maguId.toString();
              await remember();
            }),
          );
    forming
      .then(() => {
        formed = true;
        progress.set({ phase: encodedAll ? "pushing shards to the members" : "encrypting and encoding (Magu formed)" });
      })
      .catch(() => undefined); // awaited below, after the encoding
    const stage = this.stageFor(staging);
    // 3. Once it is formed, open the Magu's first batch and push each shard to its holder as the
    //    encoder stages it (batch.ts `open`): the pushes overlap the encoding.
    const queue = new ShardQueue<{ index: number; cid: CID }>();
    const { handOver, held } = this.handOverTo(queue);
    const streaming = forming.then(async ({ maguId, members: memberAddresses }) => {
      const onChain = await this.contracts.maguRegistry.read.maguInfo([maguId]);
      if (onChain.fragmentCount > 0) return { onChain }; // a resumed put that was committed already
      const { slots, unreachable } = await this.slotMembers(memberAddresses);
      const delivery = new BatchDelivery({ maguId, batch: 0, slots, unreachable, tolerated: m }, this.batchDeps());
      await delivery.open(expected, p2p.libp2p.peerId);
      const pushed = drainQueue(queue, CLIENT_DEFAULTS.pushConcurrency, (item) => this.pushShard(stage, delivery, slots, holderBlob(maguId, item.index, nMembers, k, m), item, progress));
      return { onChain, slots, delivery, pushed };
    });
    streaming.catch(() => queue.abort()); // awaited below
    try {
      let encoded: EncodeResult;
      try {
        encoded = await encodeFile(input.bytes, { secret, k, m, content, fileId: Buffer.from(put.fileId, "hex") }, async (shards) => {
          for (const s of shards) {
            await stage.put(s.cid, s.bytes);
            handOver({ index: s.index, cid: s.cid });
          }
          progress.set({ bytesEncoded: input.read() });
        });
        encodedAll = true;
        for (const item of held.splice(0)) queue.add(item);
        if (encoded.manifest.shards.length !== expected) throw new Error(`${path} encoded to ${encoded.manifest.shards.length} shards, ${expected} expected from its size (did it change while being read?)`);
        // Same file id, same bytes, same shards: a different manifest means the file changed, and
        // nothing more of this encoding leaves the process (its keys and nonces were used before).
        if (put.manifestCid !== undefined && put.manifestCid !== encoded.manifestCid.toString()) {
          throw new StorageClientError("ERR_FILE_CHANGED", `${path} no longer encodes to the interrupted put's manifest ${put.manifestCid}: its content changed; put it without --resume`, { path });
        }
      } catch (err) {
        queue.abort();
        const formed = await forming.catch(() => undefined);
        if (formed === undefined) throw err;
        // A stream cannot be put again from here: its Magu is kept for the next stream of its shape.
        if (!resumable) {
          await addSpareMagu(records, { maguId: formed.maguId.toString(), ...shape });
          const kept =
            `Magu ${formed.maguId}, formed for it meanwhile, holds no data and is kept as a spare: ` +
            `the next streamed put of the same size and options fills it instead of paying again (or put into it with --magu ${formed.maguId})`;
          if (err instanceof StorageClientError && err.code !== "ERR_SOURCE") throw new StorageClientError(err.code as StorageClientErrorCode, `${err.message}; ${kept}`, { ...err.context, maguId: formed.maguId, spare: true }, err);
          throw new StorageClientError("ERR_ENCODE_FAILED", `encoding ${path} failed (${(err as Error).message}); ${kept}`, { path, maguId: formed.maguId, spare: true }, err);
        }
        if (err instanceof StorageClientError && err.code !== "ERR_SOURCE") throw err;
        throw new StorageClientError(
          "ERR_ENCODE_FAILED",
          `encoding ${path} failed (${(err as Error).message}); Magu ${formed.maguId}, created for it meanwhile, holds no data: put the file into it with --magu ${formed.maguId}`,
          { path, maguId: formed.maguId },
          err,
        );
      }
      queue.end();
      const { manifest, manifestBytes, manifestCid } = encoded;
      const count = manifest.shards.length;
      this.log.info("encoded", { path, fileSize, shards: count, ms: Math.round(performance.now() - started) });
      progress.set({ bytesEncoded: fileSize, phase: formed ? "pushing shards to the members" : "forming the Magu" });
      const { maguId, members: memberAddresses } = await forming;
      if (put.manifestCid === undefined) {
        put.manifestCid = manifestCid.toString();
        await remember();
      }
      const done = async (missing: MissingMember[]): Promise<PutResult> => {
        await appendMaguRecord(records, maguId, { manifestCid, shards: count, fileSize }, 0);
        if (resumable) await clearPendingPut(records, path);
        this.log.info("put complete", { magu: maguId.toString(), manifest: manifestCid.toString(), ms: Math.round(performance.now() - started) });
        progress.set({ phase: "done" });
        return { maguId, manifestCid, fileSize, shards: count, offset: 0, fragmentCount: count, members: memberAddresses, missing };
      };
      const { onChain, slots, delivery, pushed } = await streaming;
      // Interrupted after its commit: only the record was missing.
      if (delivery === undefined) {
        const root = `0x${maguRoot(manifest.roots.map((r) => Buffer.from(r, "hex"))).toString("hex")}`;
        if (onChain.fragmentCount !== count || onChain.root.toLowerCase() !== root) {
          throw new StorageClientError("ERR_MAGU_RECORD", `Magu ${maguId} holds other data (${onChain.fragmentCount} fragments, root ${onChain.root}) than ${path}: put it without --resume`, { maguId, path });
        }
        this.log.info("resumed put was already committed; recording it", { magu: maguId.toString() });
        return done([]);
      }

      // 4. Propose, acknowledge, commit (batch.ts): the manifest and the index document to every
      //    member once the shards are all pushed; up to m members may be missing.
      const index = encodeMaguIndexDocument({ maguId, manifestCid });
      const batch = await this.finishBatch(delivery, { committedRoots: [], newRoots: manifest.roots.map((r) => Buffer.from(r, "hex")), indexCid: index.cid }, async (alive, fail) => {
        await Promise.all([
          pushed,
          ...[...alive].map(async (slot) => {
            try {
              await this.pushTo(slots[slot]!, manifestCid, manifestBytes, "manifest");
              await this.pushTo(slots[slot]!, index.cid, index.bytes, "index document");
            } catch (err) {
              fail(slot, err);
            }
          }),
        ]);
      }, progress);
      await this.tellValidators([{ cid: manifestCid, bytes: manifestBytes }, index]);
      return done(batch.missing);
    } finally {
      queue.abort();
      // Wait for the pushes in flight (their failure is already reported, or the put's own error is).
      await (await streaming.catch(() => undefined))?.pushed?.catch(() => undefined);
      await stage.clear();
    }
  }

  /** How the encoder hands staged shards to the pushes: at once, or (`held`) after the encoding. */
  private handOverTo(queue: ShardQueue<{ index: number; cid: CID }>): { handOver: (item: { index: number; cid: CID }) => void; held: Array<{ index: number; cid: CID }> } {
    const held: Array<{ index: number; cid: CID }> = [];
    const handOver = this.init.pushWhileEncoding === false ? (item: { index: number; cid: CID }) => void held.push(item) : (item: { index: number; cid: CID }) => queue.add(item);
    return { handOver, held };
  }

  /** Pushes one staged shard to the member of `slot` (unless the batch gave it up), then frees its room in the stage. */
  private async pushShard(stage: ShardStage, delivery: BatchDelivery, slots: ReadonlyArray<SlotMember | undefined>, slot: number, item: { index: number; cid: CID }, progress: ProgressTracker): Promise<void> {
    try {
      if (!delivery.alive.has(slot)) return;
      await this.pushTo(slots[slot]!, item.cid, await stage.get(item.cid), `shard ${item.index}`).then(
        () => progress.add("fragmentsPushed"),
        (err: unknown) => delivery.fail(slot, err),
      );
    } finally {
      stage.release(item.cid);
    }
  }

  private stageFor(staging: FragmentStore): ShardStage {
    const reserve = this.init.stagingDiskReserveBytes;
    return new ShardStage(staging, this.stagingBudget, reserve === undefined ? undefined : { dir: join(this.running().records.dir, "staging"), bytes: reserve });
  }

  /** How this client forms `maguId`: its own sends and waits (a re-request approves a new deposit). */
  private formation(maguId: bigint): Formation {
    return {
      read: this.contracts,
      head: () => this.clients.publicClient.getBlockNumber({ cacheTime: 0 }),
      waitForBlock: (block) => this.waitForBlock(block),
      form: async () => void (await this.send("formMagu", this.contracts.maguRegistry.write.formMagu([maguId]))),
      approveDeposit: async () => {
        const { formationDeposit } = await this.contracts.maguRegistry.read.config();
        await this.send("approve formation deposit", this.contracts.token.write.approve([this.init.deployment.contracts.maguRegistry, formationDeposit]));
      },
    };
  }

  /**
   * A spare Magu of `shape` this account still owns, active, empty and within its term (client-record.ts
   * `SpareMagu`); spares no longer so are dropped from the list with a warning.
   */
  private async takeSpare(shape: SpareShape): Promise<bigint | undefined> {
    const { records } = this.running();
    for (;;) {
      const spare = await takeSpareMagu(records, shape);
      if (spare === undefined) return undefined;
      const maguId = BigInt(spare.maguId);
      let info: Awaited<ReturnType<typeof this.contracts.maguRegistry.read.maguInfo>>;
      let period: bigint;
      try {
        [info, period] = await Promise.all([this.contracts.maguRegistry.read.maguInfo([maguId]), this.contracts.maguRegistry.read.currentPeriod()]);
      } catch (err) {
        await addSpareMagu(records, spare); // not judged: kept for the next put
        throw err;
      }
      const why =
        info.owner.toLowerCase() !== this.address.toLowerCase() ? `owned by ${info.owner}`
        : info.status !== STATUS_ACTIVE ? `${STATUS_NAMES[info.status] ?? info.status}`
        : info.fragmentCount !== 0 ? `holding ${info.fragmentCount} fragments`
        : period >= info.endPeriod ? `past its term (period ${info.endPeriod})`
        : undefined;
      if (why === undefined) {
        this.log.info("filling a spare Magu", { magu: spare.maguId, shards: shape.shards });
        return maguId;
      }
      this.log.warn("spare Magu dropped from the list", { magu: spare.maguId, why });
    }
  }

  /** A resumed put's Magu, paid for already: formed if the interrupted put had not formed it yet. */
  private async formPaid(maguId: bigint): Promise<{ maguId: bigint; members: Address[] }> {
    await formInWindow(this.formation(maguId), maguId);
    const info = await this.contracts.maguRegistry.read.maguInfo([maguId]);
    if (info.status !== STATUS_ACTIVE) {
      throw new StorageClientError("ERR_MAGU_NOT_ACTIVE", `Magu ${maguId} of the interrupted put is ${STATUS_NAMES[info.status] ?? info.status}: put the file without --resume`, { maguId });
    }
    this.log.info("magu formed", { magu: maguId.toString(), members: info.members, resumed: true });
    return { maguId, members: [...info.members] };
  }

  /** Approves the escrow, creates a blob Magu for `count` fragments (`onCreated` hears its id) and forms it. */
  private async createAndForm(
    p: { k: number; m: number; members: number; durationPeriods: bigint; price: bigint; count: number },
    onCreated?: (maguId: bigint) => Promise<void>,
  ): Promise<{ maguId: bigint; members: Address[] }> {
    const registry = this.init.deployment.contracts.maguRegistry;
    const escrow = p.price * BigInt(p.count) * p.durationPeriods;
    const { formationDeposit } = await this.contracts.maguRegistry.read.config();
    await this.send("approve escrow", this.contracts.token.write.approve([registry, escrow + formationDeposit]));
    // A request sees only stake changes made an epoch before it: wait for recent ones to settle.
    await this.waitForBlock(await settledRequestBlock(this.contracts));
    const createHash = await this.contracts.maguRegistry.write.createMagu([
      {
        kind: 0,
        metric: 0,
        dimension: 0,
        members: p.members,
        replication: 0,
        dataShards: p.k,
        parityShards: p.m,
        maxFragments: p.count,
        durationPeriods: p.durationPeriods,
        pricePerFragmentPeriod: p.price,
      },
    ]);
    const createReceipt = await this.clients.publicClient.waitForTransactionReceipt({ hash: createHash, pollingInterval: 100, timeout: RECEIPT_TIMEOUT_MS });
    if (createReceipt.status !== "success") throw new StorageClientError("ERR_TX_FAILED", `createMagu reverted (tx ${createHash})`, { what: "createMagu", tx: createHash });
    const requested = parseEventLogs({ abi: maguRegistryAbi, logs: createReceipt.logs, eventName: "MaguRequested" })[0];
    if (requested === undefined) throw new StorageClientError("ERR_TX_FAILED", "createMagu emitted no MaguRequested", { what: "createMagu", tx: createHash });
    const maguId = requested.args.magu;
    await onCreated?.(maguId);
    await formInWindow(this.formation(maguId), maguId);
    const info = await this.contracts.maguRegistry.read.maguInfo([maguId]);
    if (info.status !== STATUS_ACTIVE) {
      throw new StorageClientError("ERR_MAGU_NOT_ACTIVE", `Magu ${maguId} was not formed in 3 selection windows (status ${STATUS_NAMES[info.status] ?? info.status}); its escrow stays until the owner cancels it (MaguRegistry.cancelMagu): put again`, { maguId });
    }
    const members = [...info.members];
    this.log.info("magu formed", { magu: maguId.toString(), members });
    return { maguId, members };
  }

  /**
   * Where the file of `manifest` starts in the Magu: from this network's record of the Magu, else 0
   * when the manifest covers the whole Magu (a one-file Magu put from another directory).
   */
  private async offsetOf(ref: FileRef, manifest: Manifest, data: MaguData, members: readonly Member[]): Promise<number> {
    const { files, rejected } = await this.recordOf(ref.maguId, data, members, ref.manifestCid);
    const recorded = files.find((f) => f.manifestCid.equals(ref.manifestCid));
    if (recorded !== undefined && recorded.shards === manifest.shards.length && recorded.offset + recorded.shards <= data.fragmentCount) return recorded.offset;
    if (manifest.shards.length === data.fragmentCount) return 0;
    throw (
      (await this.otherNetworkError(ref)) ??
      new StorageClientError(
        "ERR_MAGU_RECORD",
        `this client directory (${this.init.dir}) has no record of manifest ${ref.manifestCid} in Magu ${ref.maguId} on ${describeNetwork(this.running().records.network)}, ` +
          `which holds ${data.fragmentCount} fragments (the file has ${manifest.shards.length})` +
          (rejected !== undefined ? `; ${rejected}` : ": get it with the client directory that put it"),
        { maguId: ref.maguId, manifestCid: ref.manifestCid.toString() },
      )
    );
  }

  /**
   * This network's record of `maguId`. Without one, an old-layout record (client-record.ts) is
   * adopted if it proves to be this network's Magu: it covers the committed fragment count, and its
   * manifests, fetched from the members, have the recorded shard counts and fold to the root on
   * chain. One that does not prove is left where it is, unused; `rejected` says why. With `wanted`,
   * an old record that does not list that manifest is not examined (it cannot help).
   */
  private async recordOf(maguId: bigint, data: MaguData, members: readonly Member[], wanted?: CID): Promise<{ files: RecordedFile[]; rejected?: string }> {
    const { records } = this.running();
    const files = await readMaguRecord(records, maguId);
    if (files.length > 0) return { files };
    const legacy = await readLegacyRecord(this.init.dir, maguId);
    if (legacy === undefined || (wanted !== undefined && !legacy.files.some((f) => f.manifestCid.equals(wanted)))) return { files };
    const count = legacy.files.reduce((n, f) => n + f.shards, 0);
    let reason: string | undefined;
    if (count !== data.fragmentCount) {
      reason = `it records ${count} fragments, the Magu holds ${data.fragmentCount}`;
    } else {
      try {
        const earlier = await this.fetchRecorded(maguId, legacy.files, members);
        if (!foldsTo(earlier, data.root)) reason = `its files do not fold to the Magu's root ${data.root}`;
      } catch (err) {
        reason = (err as Error).message;
      }
    }
    if (reason !== undefined) {
      this.log.warn("old-layout record is not this network's", { magu: maguId.toString(), path: legacy.path, reason });
      return {
        files,
        rejected:
          `the old-layout record ${legacy.path} is not this network's Magu ${maguId} (${reason}), so it was left unused: ` +
          `run the command against the network that wrote it (which adopts it), or move it aside (mv ${legacy.path} ${legacy.path}.unused)`,
      };
    }
    if (await adoptLegacyRecord(records, maguId)) this.log.info("old-layout record adopted", { magu: maguId.toString(), from: legacy.path, to: records.dir });
    return { files: await readMaguRecord(records, maguId) };
  }

  /**
   * ERR_OTHER_NETWORK when another network's record in this client directory (or an old-layout
   * record) lists the manifest of `ref`: the get targets the wrong network. Undefined otherwise.
   */
  private async otherNetworkError(ref: FileRef): Promise<StorageClientError | undefined> {
    const { records } = this.running();
    const found = await findRecordsElsewhere(records, ref.manifestCid);
    const other = found.find((f) => f.network !== undefined) ?? found[0];
    if (other === undefined) return undefined;
    const here = describeNetwork(records.network);
    const where =
      other.network !== undefined
        ? `was put into Magu ${other.maguId} on ${describeNetwork(other.network)}${other.network.rpcUrl !== undefined ? ` (reached at ${other.network.rpcUrl})` : ""}`
        : `is listed by the old-layout record ${other.path} (Magu ${other.maguId}), which is not this network's`;
    return new StorageClientError(
      "ERR_OTHER_NETWORK",
      `manifest ${ref.manifestCid} ${where}, but this command uses ${here}: run muri get against the network it was put on (its --rpc and --deployment, or --devnet)`,
      { maguId: ref.maguId, manifestCid: ref.manifestCid.toString(), otherMaguId: other.maguId, otherNetwork: other.network, network: records.network },
    );
  }

  /** The manifests of the recorded `files` from the members; each must have the recorded shard count. */
  private async fetchRecorded(maguId: bigint, files: readonly RecordedFile[], members: readonly Member[]): Promise<Fetched[]> {
    const earlier: Fetched[] = [];
    for (const file of files) {
      const got = await this.fetchManifest(members, file.manifestCid, maguId);
      if (got.manifest.shards.length !== file.shards) {
        throw new StorageClientError("ERR_MAGU_RECORD", `manifest ${file.manifestCid} has ${got.manifest.shards.length} shards, the record says ${file.shards}`, { maguId });
      }
      earlier.push({ cid: file.manifestCid, ...got });
    }
    return earlier;
  }

  /** The manifest `cid` from the first of `members` that serves it. */
  private async fetchManifest(members: readonly Member[], cid: CID, maguId: bigint): Promise<{ manifest: Manifest; bytes: Uint8Array }> {
    const { p2p } = this.running();
    await this.access!.ensureAll(members.map((x) => x.peerId), maguId);
    let unpaid: string | undefined;
    for (const member of members) {
      try {
        const bytes = await this.access!.read(member.peerId, maguId, () => p2p.fetchFragment(member.peerId, cid, { timeoutMs: CLIENT_DEFAULTS.manifestTimeoutMs }), member.address);
        return { manifest: decodeManifest(bytes, cid), bytes };
      } catch (err) {
        if (isReadPaymentRefusal(err)) unpaid ??= (err as Error).message;
        this.log.debug("manifest fetch failed", { member: member.address, error: (err as Error).message });
      }
    }
    if (unpaid !== undefined) throw new StorageClientError("ERR_READ_PAYMENT", unpaid, { maguId, manifestCid: cid.toString() });
    throw new StorageClientError("ERR_MANIFEST_NOT_FOUND", `manifest ${cid} not found at any of the ${members.length} members of Magu ${maguId}`, { maguId, manifestCid: cid.toString() });
  }

  /** The manifests and index document to the validators, so they can audit the Magu (best effort). */
  private async tellValidators(documents: ReadonlyArray<{ cid: CID; bytes: Uint8Array }>): Promise<void> {
    await pushToValidators(this.contracts, this.running().p2p, documents, {
      timeoutMs: CLIENT_DEFAULTS.manifestTimeoutMs,
      onError: (validator, err) => this.log.warn("validator did not take the Magu documents", { validator, error: (err as Error).message }),
    });
  }

  /** Pushes `bytes` to `member`, retrying; the last failure throws ERR_PUSH_FAILED. */
  private async pushTo(member: Member, cid: CID, bytes: Uint8Array, what: string): Promise<void> {
    const { p2p } = this.running();
    for (let attempt = 1; ; attempt++) {
      try {
        // This client made these bytes (the encoder's output, its own documents): no second hash.
        await p2p.pushFragment(member.peerId, cid, bytes, { timeoutMs: CLIENT_DEFAULTS.transferTimeoutMs, verified: true });
        return;
      } catch (err) {
        if (attempt >= CLIENT_DEFAULTS.pushAttempts) throw new StorageClientError("ERR_PUSH_FAILED", `push of ${what} to ${member.address} failed: ${(err as Error).message}`, { what, member: member.address, cid: cid.toString() }, err);
        await sleep(200 * attempt);
      }
    }
  }

  /**
   * Puts into one Magu from this process run one after the other (each appends to what the one
   * before committed); the record's lock file keeps other processes out (ERR_MAGU_BUSY).
   */
  private async putIntoPath(maguId: bigint, source: PutSource, content: number, onProgress?: ProgressListener): Promise<PutResult> {
    const key = maguId.toString();
    const before = this.appending.get(key) ?? Promise.resolve();
    const mine = before.then(() => this.appendInto(maguId, source, content, onProgress));
    const turn = mine.then(
      () => undefined,
      () => undefined,
    );
    this.appending.set(key, turn);
    try {
      return await mine;
    } finally {
      if (this.appending.get(key) === turn) this.appending.delete(key);
    }
  }

  private async appendInto(maguId: bigint, source: PutSource, content: number, onProgress?: ProgressListener): Promise<PutResult> {
    const path = typeof source === "string" ? source : source.name;
    const { p2p, staging, secret, records } = this.running();
    const started = performance.now();
    const release = await lockMaguRecord(records, maguId);
    let stage: ShardStage | undefined;
    const queue = new ShardQueue<{ index: number; cid: CID }>();
    let pushed: Promise<void> | undefined;
    const progress = new ProgressTracker(onProgress, { phase: `checking Magu ${maguId}` });
    try {
      // 1. Everything that can refuse the put, before anything is encoded, pushed or sent.
      const registry = this.contracts.maguRegistry;
      const fail = (code: StorageClientErrorCode, message: string): never => {
        throw new StorageClientError(code, message, { maguId });
      };
      const info = await registry.read.maguInfo([maguId]);
      if (info.status === STATUS_NONE) {
        const count = await registry.read.maguCount();
        fail("ERR_MAGU_UNKNOWN", `no Magu ${maguId}: ${count === 0n ? "none exists yet" : `ids run from 1 to ${count}`}`);
      }
      if (info.owner.toLowerCase() !== this.address.toLowerCase()) fail("ERR_MAGU_NOT_OWNER", `Magu ${maguId} belongs to ${info.owner}, not to ${this.address}: only its owner can put files into it`);
      if (info.params.kind !== KIND_BLOB) fail("ERR_MAGU_KIND", `Magu ${maguId} is a vector Magu: files go into blob Magus (muri magu create --kind blob)`);
      if (info.status !== STATUS_ACTIVE) {
        fail("ERR_MAGU_NOT_ACTIVE", `Magu ${maguId} is ${STATUS_NAMES[info.status] ?? info.status}, not active: ${info.status === 1 ? "it has no members yet (formMagu)" : "no data can be added"}`);
      }
      const period = await registry.read.currentPeriod();
      if (period >= info.endPeriod) fail("ERR_MAGU_NOT_ACTIVE", `Magu ${maguId}'s term ended at period ${info.endPeriod} (now ${period}): no data can be added`);
      const k = info.params.dataShards;
      const m = info.params.parityShards;
      const fileSize = typeof source === "string" ? (await stat(source)).size : source.size;
      const needed = shardCountOf(fileSize, k, m);
      const left = info.params.maxFragments - info.fragmentCount;
      if (needed > left) {
        fail("ERR_MAGU_FULL", `Magu ${maguId} has ${left} of its ${info.params.maxFragments} paid fragments left; this file needs ${needed} (k=${k}, m=${m}, 1 MiB shards): put it into a larger Magu`);
      }
      const slots = info.params.members;
      const present = info.members.filter((a) => !ZERO_ADDRESS.test(a));
      const { slots: slotList, unreachable } = await this.slotMembers(info.members);
      const members = slotList.filter((x): x is SlotMember => x !== undefined);
      const network = describeNetwork(records.network);
      const { files: recorded, rejected } = await this.recordOf(maguId, info, members);
      const recordedCount = recorded.reduce((n, f) => n + f.shards, 0);
      if (recordedCount !== info.fragmentCount) {
        fail(
          "ERR_MAGU_RECORD",
          `this client directory (${this.init.dir}) records ${recordedCount} of the ${info.fragmentCount} fragments committed to Magu ${maguId} on ${network}: ` +
            (rejected ?? `put into it from the client directory that put its earlier files (${records.dir}/magus/${maguId}.json)`),
        );
      }
      const earlier = await this.fetchRecorded(maguId, recorded, members);
      const oldRoots = rootsOf(earlier);
      if (oldRoots.length > 0 && !foldsTo(earlier, info.root)) {
        fail("ERR_MAGU_RECORD", `the recorded files of Magu ${maguId} fold to ${hexRoot(oldRoots)}, the chain has ${info.root}: this client directory's record is not the Magu's on ${network}`);
      }
      this.log.info("append checked", { magu: maguId.toString(), fragments: info.fragmentCount, needed, left });
      progress.set({ phase: "encrypting and encoding", bytesTotal: fileSize, fragmentsTotal: needed });

      // 2. Open the batch, then encode into memory or the staging store, each shard pushed to the
      //    holder placement names for Magu fragment offset + index as soon as it is staged.
      const offset = info.fragmentCount;
      const staged = (stage = this.stageFor(staging));
      const delivery = new BatchDelivery({ maguId, batch: info.batches, slots: slotList, unreachable, tolerated: m }, this.batchDeps());
      await delivery.open(offset + needed, p2p.libp2p.peerId);
      pushed = drainQueue(queue, CLIENT_DEFAULTS.pushConcurrency, (item) => this.pushShard(staged, delivery, slotList, holderBlob(maguId, offset + item.index, slots, k, m), item, progress));
      const { handOver, held } = this.handOverTo(queue);
      const input = readSource(source);
      const { manifest, manifestBytes, manifestCid } = await encodeFile(input.bytes, { secret, k, m, content }, async (shards) => {
        for (const s of shards) {
          await staged.put(s.cid, s.bytes);
          handOver({ index: s.index, cid: s.cid });
        }
        progress.set({ bytesEncoded: input.read() });
      });
      for (const item of held.splice(0)) queue.add(item);
      const count = manifest.shards.length;
      if (count !== needed) fail("ERR_MAGU_FULL", `the file encoded to ${count} shards, ${needed} expected (did it change while being read?)`);
      queue.end();
      const total = offset + count;
      const root = hexRoot([...oldRoots, ...manifest.roots.map((r) => Buffer.from(r, "hex"))]);
      this.log.info("encoded", { path, fileSize, shards: count, offset, ms: Math.round(performance.now() - started) });
      progress.set({ bytesEncoded: fileSize, phase: "pushing shards to the members" });

      // 3. Propose, acknowledge, commit (batch.ts): every manifest (a replacement may lack an
      //    earlier one) and the index listing them all to every member, once the shards are
      //    pushed; up to m members may be missing.
      const index = encodeMaguIndexList({ maguId, manifestCids: [...earlier.map((e) => e.cid), manifestCid] });
      const shardsPushed = pushed;
      const batch = await this.finishBatch(
        delivery,
        { committedRoots: oldRoots, newRoots: manifest.roots.map((r) => Buffer.from(r, "hex")), indexCid: index.cid },
        async (alive, failSlot) => {
          await Promise.all([
            shardsPushed,
            ...[...alive].map(async (slot) => {
              try {
                for (const f of earlier) await this.pushTo(slotList[slot]!, f.cid, f.bytes, "manifest");
                await this.pushTo(slotList[slot]!, manifestCid, manifestBytes, "manifest");
                await this.pushTo(slotList[slot]!, index.cid, index.bytes, "index document");
              } catch (err) {
                failSlot(slot, err);
              }
            }),
          ]);
        },
        progress,
      );
      await appendMaguRecord(records, maguId, { manifestCid, shards: count, fileSize }, offset);
      this.log.info("data committed", { magu: maguId.toString(), fragments: total, root });
      await this.tellValidators([...earlier, { cid: manifestCid, bytes: manifestBytes }, index]);
      this.log.info("put complete", { magu: maguId.toString(), manifest: manifestCid.toString(), offset, ms: Math.round(performance.now() - started) });
      progress.set({ phase: "done" });
      return { maguId, manifestCid, fileSize, shards: count, offset, fragmentCount: total, members: present, missing: batch.missing };
    } finally {
      queue.abort();
      await pushed?.catch(() => undefined);
      await stage?.clear();
      release();
    }
  }

  /** Waits until the chain is past `block`: asks a dev chain to mine, else polls. */
  private async waitForBlock(block: bigint): Promise<void> {
    const pc = this.clients.publicClient;
    const head = await pc.getBlockNumber({ cacheTime: 0 });
    if (head < block) {
      try {
        await pc.request({ method: "hardhat_mine" as never, params: [`0x${(block - head).toString(16)}`] as never });
      } catch {
        // not a Hardhat chain: wait for blocks below
      }
    }
    const deadline = Date.now() + CLIENT_DEFAULTS.formWaitMs;
    while ((await pc.getBlockNumber({ cacheTime: 0 })) < block) {
      if (Date.now() > deadline) throw new StorageClientError("ERR_BLOCK_WAIT", `block ${block} not reached within ${CLIENT_DEFAULTS.formWaitMs} ms`, { block });
      await sleep(500);
    }
  }

  /**
   * The Magu holding `manifestCid`, from this network's records: what `muri get CID` uses when no
   * Magu is given. Fails when no record lists it (naming the network that does, if another one
   * does) or when more than one does (the caller must say which).
   */
  readsPaid(maguId: bigint): { fragments: bigint; wei: bigint } {
    return this.access?.readsPaid.get(maguId) ?? { fragments: 0n, wei: 0n };
  }

  async locate(manifestCid: CID): Promise<bigint> {
    const { records } = this.running();
    const found = await findMagusRecording(records, manifestCid);
    if (found.length === 1) return found[0]!;
    if (found.length > 1) {
      throw new StorageClientError("ERR_AMBIGUOUS_MANIFEST", `manifest ${manifestCid} is recorded in Magus ${found.join(", ")} on ${describeNetwork(records.network)}: say which with --magu ID`, {
        manifestCid: manifestCid.toString(),
        magus: found,
      });
    }
    throw (
      (await this.otherNetworkError({ maguId: 0n, manifestCid })) ??
      new StorageClientError(
        "ERR_MAGU_RECORD",
        `this client directory (${this.init.dir}) has no record of manifest ${manifestCid} on ${describeNetwork(records.network)}: pass the Magu with --magu ID (muri put printed it), or use the client directory that put it`,
        { manifestCid: manifestCid.toString() },
      )
    );
  }

  /**
   * The manifest of `ref` from the first member that serves it, opened with the secret, and a
   * fetcher over the holders placement names (a holder that fails once is skipped for the rest of
   * this reader; a busy one is asked again), counting what it fetched and what failed.
   */
  private async openReader(ref: FileRef, keys: KeySource): Promise<{ manifest: Manifest; opened: OpenedManifest; keys: KeySource; fetcher: ShardFetcher; stats: () => Pick<GetResult, "fetched" | "failed" | "unreachable"> }> {
    const { p2p } = this.running();
    const info = await this.contracts.maguRegistry.read.maguInfo([ref.maguId]);
    const slots = info.params.members;
    const k = info.params.dataShards;
    const m = info.params.parityShards;
    const present = info.members.filter((a) => !/^0x0{40}$/i.test(a));
    const members = await this.members(present);
    const bySlot = new Map<number, Member>();
    info.members.forEach((a, slot) => {
      const member = members.find((x) => x.address === a);
      if (member !== undefined) bySlot.set(slot, member);
    });
    const down = new Set<Address>();
    // A private Magu: this client's grant (or, as its owner, a session grant) to every member first.
    await this.access!.ensureAll(members.map((x) => x.peerId), ref.maguId);

    let manifest: Manifest | undefined;
    let denied: string | undefined;
    let unpaid: string | undefined;
    for (const member of members) {
      try {
        const bytes = await this.access!.read(member.peerId, ref.maguId, () => p2p.fetchFragment(member.peerId, ref.manifestCid, { timeoutMs: CLIENT_DEFAULTS.manifestTimeoutMs }), member.address);
        manifest = decodeManifest(bytes, ref.manifestCid);
        break;
      } catch (err) {
        down.add(member.address);
        if (isReadPaymentRefusal(err)) unpaid ??= (err as Error).message;
        else if (isAccessRefusal(err)) denied ??= (err as Error).message;
        this.log.debug("manifest fetch failed", { member: member.address, error: (err as Error).message });
      }
    }
    if (manifest === undefined && unpaid !== undefined) {
      throw new StorageClientError("ERR_READ_PAYMENT", unpaid, { maguId: ref.maguId, manifestCid: ref.manifestCid.toString() });
    }
    if (manifest === undefined && denied !== undefined) {
      throw new StorageClientError("ERR_ACCESS_DENIED", denied, { maguId: ref.maguId, manifestCid: ref.manifestCid.toString() });
    }
    if (manifest === undefined) {
      throw (
        (await this.otherNetworkError(ref)) ??
        new StorageClientError("ERR_MANIFEST_NOT_FOUND", `manifest ${ref.manifestCid} not found at any of the ${members.length} members of Magu ${ref.maguId}`, { maguId: ref.maguId, manifestCid: ref.manifestCid.toString() })
      );
    }
    if (keys instanceof FileKey && manifest.encryption.fileId !== keys.fileId.toString("hex")) {
      throw new StorageClientError("ERR_SHARE_MISMATCH", `the shared key is for file ${keys.fileId.toString("hex")}, but manifest ${ref.manifestCid} is file ${manifest.encryption.fileId}: the share names another file`, { manifestCid: ref.manifestCid.toString() });
    }

    const offset = await this.offsetOf(ref, manifest, info, members);
    let fetched = 0;
    let failed = 0;
    const fetcher: ShardFetcher = async (cid, where) => {
      const member = bySlot.get(holderBlob(ref.maguId, offset + where.index, slots, k, m));
      if (member === undefined || down.has(member.address)) {
        failed++;
        return undefined;
      }
      try {
        // A busy holder (all its slots, or this client's share, in use) is asked again shortly,
        // not written off.
        for (let attempt = 1; ; attempt++) {
          try {
            const bytes = await this.access!.read(member.peerId, ref.maguId, () => p2p.fetchFragment(member.peerId, cid, { timeoutMs: CLIENT_DEFAULTS.transferTimeoutMs }), member.address, offset + where.index);
            fetched++;
            return bytes;
          } catch (err) {
            const busy = err instanceof RemoteRefusedError && err.context.reason.startsWith("busy");
            if (!busy || attempt >= CLIENT_DEFAULTS.busyRetries) throw err;
            await sleep(50 * attempt);
          }
        }
      } catch (err) {
        failed++;
        // A fragment priced above this client's maximum (or a deposit short) ends the read with
        // what to do, rather than a count of missing shards.
        if (isReadPaymentRefusal(err)) throw new StorageClientError("ERR_READ_PAYMENT", (err as Error).message, { maguId: ref.maguId, fragment: offset + where.index });
        if (!down.has(member.address)) this.log.warn("holder unreachable, skipping it", { member: member.address, error: (err as Error).message });
        down.add(member.address);
        return undefined;
      }
    };
    return { manifest, opened: openManifest(manifest, keys), keys, fetcher, stats: () => ({ fetched, failed, unreachable: [...down] }) };
  }

  /**
   * The key of one file this client stored (`muri share` wraps it for another account): its
   * manifest fetched from the Magu's members and opened with this client's secret first, so the
   * CID of a file it did not store is refused (ERR_NOT_YOUR_FILE), never given a key that opens nothing.
   */
  async fileKey(ref: FileRef): Promise<{ fileKey: FileKey; manifest: Manifest }> {
    const { secret } = this.running();
    const { manifest } = await this.manifestOf(ref);
    try {
      openManifest(manifest, secret);
    } catch (err) {
      throw new StorageClientError("ERR_NOT_YOUR_FILE", `manifest ${ref.manifestCid} does not open with this client's secret (${(err as Error).message}): only the client directory that stored a file can share it`, { manifestCid: ref.manifestCid.toString() });
    }
    return { fileKey: fileKeyOf(secret, Buffer.from(manifest.encryption.fileId, "hex")), manifest };
  }

  /** `ref`'s Magu, its present members (with their slots) and the file's manifest from the first that serves it. */
  private async manifestOf(ref: FileRef) {
    const info = await this.contracts.maguRegistry.read.maguInfo([ref.maguId]);
    const present = info.members.map((address, slot) => ({ address, slot })).filter((x) => !/^0x0{40}$/i.test(x.address));
    const members = await this.members(present.map((x) => x.address));
    const { manifest } = await this.fetchManifest(members, ref.manifestCid, ref.maguId);
    return { info, present, members, manifest };
  }

  /** A stored file's size, from its manifest alone (no shard fetched); ERR_MANIFEST_NOT_FOUND, or the manifest's open error. */
  async stat(ref: FileRef): Promise<{ fileSize: number; manifest: Manifest }> {
    const { manifest } = await this.manifestOf(ref);
    return { fileSize: openManifest(manifest, this.running().secret).fileSize, manifest };
  }

  /**
   * The Magu holding `ref`, its members (reachable: it served the file's manifest within
   * `statusTimeoutMs`, CID-checked) and, per stripe, the shards on reachable members against the k
   * a read needs.
   */
  async status(ref: FileRef): Promise<BlobStatus> {
    const { p2p, secret } = this.running();
    const { info, present, members, manifest } = await this.manifestOf(ref);
    const fileSize = openManifest(manifest, secret).fileSize;
    const reachable = await Promise.all(
      members.map(async (member) => {
        try {
          await this.access!.read(member.peerId, ref.maguId, () => p2p.fetchFragment(member.peerId, ref.manifestCid, { timeoutMs: CLIENT_DEFAULTS.statusTimeoutMs }), member.address);
          return true;
        } catch {
          return false;
        }
      }),
    );
    const up = new Set(present.filter((_, i) => reachable[i]).map((x) => x.slot));
    const offset = await this.offsetOf(ref, manifest, info, members);
    const { k, m, stripes } = manifest.erasure;
    return {
      maguId: ref.maguId,
      manifestCid: ref.manifestCid.toString(),
      fileSize,
      k,
      m,
      members: present.map((x, i) => ({ slot: x.slot, address: x.address, reachable: reachable[i]! })),
      stripes: Array.from({ length: stripes }, (_, stripe) => {
        let available = 0;
        for (let j = 0; j < k + m; j++) if (up.has(holderBlob(ref.maguId, offset + stripe * (k + m) + j, info.params.members, info.params.dataShards, info.params.parityShards))) available++;
        return { stripe, available, readable: available >= k };
      }),
    };
  }

  async get(ref: FileRef, outPath: string, options: GetOptions = {}): Promise<GetResult> {
    const { secret } = this.running();
    const reader = await this.openReader(ref, options.fileKey ?? secret);
    const { manifest, opened, fetcher } = reader;
    if (opened.content === CONTENT_DIRECTORY) return this.getDirectory(ref, reader, outPath, options);
    if (options.path !== undefined) {
      throw new StorageClientError("ERR_NOT_A_DIRECTORY", `${ref.manifestCid} is a file, not a directory: drop --path to get it`, { manifestCid: ref.manifestCid.toString(), path: options.path });
    }
    if ((await lstat(outPath).catch(() => undefined))?.isDirectory() === true) {
      throw new StorageClientError("ERR_OUTPUT_EXISTS", `${outPath} is a directory, and ${ref.manifestCid} is a file: name the file to write with -o`, { output: outPath });
    }
    const compression = compressionOfContent(opened.content);
    const tmp = `${outPath}.${process.pid}.tmp`;
    try {
      // Every shard comes from fetchFragment, which hashed it against its CID as it arrived.
      const plain = Readable.from(decodeFile(manifest, fetcher, { secret: reader.keys, verified: true }));
      if (compression === undefined) await pipeline(plain, createWriteStream(tmp));
      else await pipeline(plain, decompressor(compression), createWriteStream(tmp));
      await rename(tmp, outPath);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    // The size is sealed in the manifest: only the file's key opens it (decodeFile did already).
    const fileSize = compression === undefined ? opened.fileSize : (await stat(outPath)).size;
    return { fileSize, kind: "file", ...reader.stats() };
  }

  /** `get` of a directory: the whole tree into `outPath`, or one entry of it (`options.path`). */
  private async getDirectory(ref: FileRef, reader: Awaited<ReturnType<Client["openReader"]>>, outPath: string, options: GetOptions): Promise<GetResult> {
    const { manifest, opened, keys: secret } = reader;
    const fetcher = cachingFetcher(reader.fetcher);
    const range = (offset: number, length: number) => decodeRange(manifest, fetcher, { secret, verified: true, offset, length });
    const tree = await readPackTree(opened.fileSize, range);
    const force = options.force === true;
    const done = (bytes: number, entries: GetResult["entries"]): GetResult => ({ fileSize: bytes, kind: "directory", entries, ...reader.stats() });
    if (options.path === undefined) {
      await prepareTarget(outPath, force);
      // One sequential read of the whole pack, each file cut out of it in order.
      const pack = decodeFile(manifest, reader.fetcher, { secret, verified: true });
      const stats = await restoreTree(tree, await realpath(outPath), sequentialEntries(pack), force);
      return done(stats.bytes, stats);
    }
    const sub = subtree(tree, options.path);
    if (sub === undefined || sub.entry.kind === "symlink") {
      throw new StorageClientError(
        "ERR_PATH_NOT_FOUND",
        sub === undefined ? `directory ${ref.manifestCid} has no entry ${options.path} (muri ls ${ref.manifestCid} lists them)` : `${options.path} is a symlink to ${(sub.entry as { target: string }).target}: get its target`,
        { manifestCid: ref.manifestCid.toString(), path: options.path },
      );
    }
    const fromRanges = (e: TreeEntry & { kind: "file" }) => range(e.offset, e.length);
    if (sub.entry.kind === "file") {
      await writeEntry(sub.entry, fromRanges(sub.entry), outPath, force);
      return done(sub.entry.size, { files: 1, directories: 0, symlinks: 0 });
    }
    await prepareTarget(outPath, force);
    const stats = await restoreTree(sub.entries, await realpath(outPath), fromRanges, force);
    return done(stats.bytes, stats);
  }

  async openRanges(ref: FileRef): Promise<RangeReader> {
    const { secret } = this.running();
    const reader = await this.openReader(ref, secret);
    const { manifest, opened } = reader;
    const fetcher = cachingFetcher(reader.fetcher);
    return {
      fileSize: opened.fileSize,
      raw: opened.content === CONTENT_RAW,
      directory: opened.content === CONTENT_DIRECTORY,
      read: (offset, length) => decodeRange(manifest, fetcher, { secret, verified: true, offset, length }),
      all: () => decodeFile(manifest, reader.fetcher, { secret, verified: true }),
      stats: reader.stats,
    };
  }

  async list(ref: FileRef): Promise<TreeEntry[]> {
    const { secret } = this.running();
    const { manifest, opened, fetcher } = await this.openReader(ref, secret);
    if (opened.content !== CONTENT_DIRECTORY) {
      throw new StorageClientError("ERR_NOT_A_DIRECTORY", `${ref.manifestCid} is a file, not a directory: muri get ${ref.manifestCid} -o FILE fetches it`, { manifestCid: ref.manifestCid.toString() });
    }
    const cached = cachingFetcher(fetcher);
    return readPackTree(opened.fileSize, (offset, length) => decodeRange(manifest, cached, { secret, verified: true, offset, length }));
  }
}
