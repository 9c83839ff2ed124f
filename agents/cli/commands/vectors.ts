/**
 * `muri vectors add --magu ID FILE`: reads and checks a vector file (.fvecs, .npy float32/float64,
 * .jsonl, .csv), packs the vectors into fragments, commits them to the vector Magu and pushes them
 * to the members placement names (roles/client/vector-client.ts). Nothing is committed or sent unless the
 * whole file is valid and fits the Magu's quantization scale 2^e (picked by its first batch, the
 * largest that holds every value of it; printed, and `scaleExp` in --json). A cosine Magu's vectors
 * are scaled to unit length first and its scale is always 2^14. A Hamming Magu's file is binary
 * vectors (.npy of uint8 packed bits, .bits lines of 0/1, .jsonl arrays of 0/1), stored as they
 * are: no scale (`scaleExp` null). A vector may carry a payload, a JSON object of at most 4096 bytes
 * (a .jsonl object line's `payload`, or line i of `--payloads FILE` for row i of any format),
 * stored right after its record and returned, proven, with each hit.
 *
 * `muri vectors delete --magu ID (--ids 1,2,3 | --ids-file FILE)`: deletes vectors by id, as a batch
 * of tombstone records committed like any other (roles/client/vector-client.ts `delete`); members
 * stop returning the ids, and a deleted id is retired.
 *
 * `muri search --magu ID (--vector JSON | --query FILE) -k K [--ef N | --exact] [--no-verify] [--onchain --fee X]`:
 * the top-k of a vector Magu, off-chain (one holder per fragment, merged; every hit's Merkle proof
 * checked against the root on chain unless --no-verify, members whose hits do not prove listed as
 * rejected) or as an on-chain task.
 * Results are in rank order; `distance` is the canonical distance divided by 2^(2e) at the Magu's
 * scale 2^e (squared L2, or the negated inner product, in the units of the original floats; for a
 * cosine Magu the negated cosine similarity of the unit vectors; for a Hamming Magu the number of
 * differing bits, an integer, and the query is bits: `--vector` a JSON array of 0/1 or a string of
 * 0/1 characters, `--query` a one-row binary vector file),
 * `canonical` the exact integer; `scaleExp` (--json) is e (null for Hamming); `payload` the hit's
 * payload (null when it has none; not shown with --no-verify, which fetches no proof).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { generatePrivateKey } from "viem/accounts";
import { createVectorClient, VECTOR_CLIENT_DEFAULTS, type VectorClient } from "../../roles/client/vector-client.js";
import { readBitFile, readPayloadFile, readVectorFile, type BitVectorFile, type VectorFile } from "../../data/vector-files.js";
import { MAX_PAYLOAD_BYTES, MAX_VECTOR_ID, unpackBits } from "../../data/vectors.js";
import type { Command, CommandArgs } from "../command.js";
import type { CliContext } from "../context.js";
import { resolveTarget } from "../context.js";
import { CLIENT_DIR_HELP, clientDir } from "../devnet/storage-client.js";
import { startProgress } from "../devnet/progress.js";
import { UsageError } from "../errors.js";
import { GRANT_HELP, grantTokens } from "../grants.js";
import { formatMuri, parseInteger, parseMuri } from "../values.js";

/** A canonical distance in the units of the floats: canonical / 2^(2e); a Hamming distance (bits) as it is. */
function floatDistance(canonical: bigint, scaleExp: number | null, hamming: boolean): number {
  return hamming ? Number(canonical) : Number(canonical) / 2 ** (2 * (scaleExp ?? 14));
}

/** A distance for the text output: an integer (Hamming) as it is, else 6 significant digits. */
function showDistance(distance: number, hamming: boolean): string {
  return hamming ? String(distance) : distance.toPrecision(6);
}
const FORMATS = ["fvecs", "npy", "jsonl", "csv"] as const;

async function startVectorClient(args: CommandArgs, ctx: CliContext, dir: string, needsKey: boolean): Promise<VectorClient> {
  const target = await resolveTarget(args);
  if (target.key === undefined && needsKey) {
    throw new UsageError("--key is required: pass --key HEX, set MURI_KEY, or use a --devnet with a clientKey");
  }
  // An off-chain search sends no transaction: without a key, a throwaway one only names the client.
  const client = createVectorClient({ dir, deployment: ctx.deployment, rpcUrl: ctx.rpcUrl, privateKey: target.key ?? generatePrivateKey(), grants: grantTokens(args) });
  await client.start();
  return client;
}

function existingFile(value: string, option: string): string {
  const file = resolve(value);
  if (!existsSync(file)) throw new UsageError(`${option}: ${file} does not exist`);
  if (!statSync(file).isFile()) throw new UsageError(`${option}: ${file} is not a regular file`);
  return file;
}

export const vectorsAddCommand: Command = {
  path: ["vectors", "add"],
  summary: "add vectors from a file to a vector Magu (committed on chain, pushed to the members)",
  usage: "muri vectors add --magu ID FILE [--payloads FILE.jsonl] [--fragment-size BYTES]",
  help: [
    "  --magu ID            the vector Magu (owned by the key, active)",
    `  FILE                 .fvecs, .npy (float32/float64, 2-D), .jsonl ([..] or {"id":N,"vector":[..],"payload":{..}} per line) or .csv (optional header, "id" column)`,
    "                       ids are the row numbers (0-based, continuing after earlier batches) unless the file gives them",
    "                       the first batch of a Magu fixes its quantization scale 2^e (the largest at which every value fits",
    "                       int16); later batches must fit it (a value out of range fails before anything is sent)",
    "                       a cosine Magu: each vector is scaled to unit length first (an all-zero row is refused), scale 2^14",
    "                       a hamming Magu (binary vectors of D bits): .npy of uint8, shape (n, ceil(D/8)), bits packed MSB first",
    "                       (numpy.packbits(bits, axis=1); padding bits zero), .bits (one line of D characters 0/1 per vector)",
    "                       or .jsonl (arrays of D numbers 0/1, or {\"id\":N,\"vector\":[..]}); no quantization, no scale",
    `  --payloads FILE      one payload per vector, line i for row i: a JSON object (at most ${MAX_PAYLOAD_BYTES} bytes as JSON) or null;`,
    "                       overrides the .jsonl lines' \"payload\"; each hit of `muri search` returns its vector's payload, proven",
    `  --fragment-size B    bytes per fragment, whole records (default ${VECTOR_CLIENT_DEFAULTS.fragmentSize})`,
    CLIENT_DIR_HELP,
  ],
  options: { magu: { type: "string" }, payloads: { type: "string" }, "fragment-size": { type: "string" }, "client-dir": { type: "string" } },
  positionals: ["FILE"],
  signs: true,
  prepare(args) {
    const file = existingFile(args.positionals[0]!, "FILE");
    const payloadArg = args.string("payloads");
    const payloadFile = payloadArg === undefined ? undefined : existingFile(payloadArg, "--payloads");
    const maguId = parseInteger(args.required("magu", "the vector Magu to add to"), "--magu", { min: 1n });
    const sizeArg = args.string("fragment-size");
    const fragmentSize = sizeArg === undefined ? undefined : Number(parseInteger(sizeArg, "--fragment-size", { min: 1024n, max: 1048576n }));
    const dir = clientDir(args);
    return async (ctx) => {
      const progress = startProgress("vectors add");
      progress.update("reading and checking the file");
      const client = await startVectorClient(args, ctx, dir, true);
      try {
        let payloads: Array<Uint8Array | null> | undefined;
        let input: string | VectorFile | BitVectorFile = file;
        if (payloadFile !== undefined) {
          // The vectors are read first: the payload file must have one line per vector.
          const { dim, metric } = await client.vectorParams(maguId);
          input = metric === "hamming" ? await readBitFile(file, dim) : await client.readFile(file, dim);
          payloads = await readPayloadFile(payloadFile, input.count);
        }
        const result = await client.add(maguId, input, { fragmentSize, payloads });
        progress.done();
        return {
          json: {
            maguId: result.maguId,
            file,
            vectors: result.vectors,
            firstRow: result.firstRow,
            fragments: result.fragments,
            fragmentCount: result.fragmentCount,
            manifestCid: result.manifestCid.toString(),
            scaleExp: result.scaleExp,
          },
          text: [
            `added ${result.vectors} vectors to Magu ${result.maguId} in ${result.fragments} fragments (now ${result.fragmentCount})`,
            `first row id ${result.firstRow}; ${result.scaleExp === null ? "binary vectors (no quantization)" : `quantization scale 2^${result.scaleExp}`}; vector index document ${result.manifestCid}`,
          ],
        };
      } finally {
        progress.done();
        await client.stop();
      }
    };
  },
};

/** Parses `--ids 1,2,3` and the lines of `--ids-file` (one id per line, blank lines skipped) into vector ids. */
function parseIds(list: string | undefined, fileText: string | undefined, fileName: string | undefined): bigint[] {
  const ids: bigint[] = [];
  const take = (raw: string, where: string): void => {
    const t = raw.trim();
    if (t.length === 0) return;
    if (!/^(0|[1-9][0-9]{0,19})$/.test(t)) throw new UsageError(`${where}: ${JSON.stringify(t)} is not a vector id (a non-negative decimal integer)`);
    const id = BigInt(t);
    if (id > MAX_VECTOR_ID) throw new UsageError(`${where}: ${t} is not a vector id (at most ${MAX_VECTOR_ID}: the top 256 uint64 values are reserved)`);
    ids.push(id);
  };
  if (list !== undefined) list.split(",").forEach((t, i) => take(t, `--ids item ${i + 1}`));
  if (fileText !== undefined) fileText.split(/\r?\n/).forEach((t, i) => take(t, `--ids-file ${fileName} line ${i + 1}`));
  if (ids.length === 0) throw new UsageError("give the ids to delete: --ids 1,2,3 and/or --ids-file FILE (one id per line)");
  return ids;
}

export const vectorsDeleteCommand: Command = {
  path: ["vectors", "delete"],
  summary: "delete vectors of a vector Magu by id (a tombstone batch committed on chain; members stop returning them)",
  usage: "muri vectors delete --magu ID (--ids 1,2,3 | --ids-file FILE)",
  help: [
    "  --magu ID            the vector Magu (owned by the key, active)",
    "  --ids LIST           ids to delete, comma separated",
    "  --ids-file FILE      ids to delete, one per line (with --ids: both)",
    "                       the ids are committed as tombstone records; members stop returning them at once (off-chain and in",
    "                       on-chain tasks), a member that returns one is rejected by the client and can be disputed on chain.",
    "                       A deleted id is retired: a later `muri vectors add` may not reuse it. Ids deleted before are skipped.",
    CLIENT_DIR_HELP,
  ],
  options: { magu: { type: "string" }, ids: { type: "string" }, "ids-file": { type: "string" }, "client-dir": { type: "string" } },
  signs: true,
  prepare(args) {
    const maguId = parseInteger(args.required("magu", "the vector Magu to delete from"), "--magu", { min: 1n });
    const idsFileArg = args.string("ids-file");
    const idsFile = idsFileArg === undefined ? undefined : existingFile(idsFileArg, "--ids-file");
    const ids = parseIds(args.string("ids"), idsFile === undefined ? undefined : readFileSync(idsFile, "utf8"), idsFile);
    const dir = clientDir(args);
    return async (ctx) => {
      const client = await startVectorClient(args, ctx, dir, true);
      try {
        const result = await client.delete(maguId, ids);
        return {
          json: { maguId: result.maguId, deleted: result.deleted, alreadyDeleted: result.alreadyDeleted, fragments: result.fragments, fragmentCount: result.fragmentCount, manifestCid: result.manifestCid.toString() },
          text: [
            result.deleted === 0
              ? `nothing to delete: all ${result.alreadyDeleted} ids were deleted from Magu ${result.maguId} before`
              : `deleted ${result.deleted} ids from Magu ${result.maguId} in ${result.fragments} tombstone fragments (now ${result.fragmentCount})${result.alreadyDeleted > 0 ? `; ${result.alreadyDeleted} were deleted before` : ""}`,
          ],
        };
      } finally {
        await client.stop();
      }
    };
  },
};

/** A `--vector` of 0/1 characters (a Hamming query; spaces and underscores ignored), else undefined. */
function parseBitString(text: string): number[] | undefined {
  const t = text.trim().replace(/[ _]/g, "");
  if (!/^[01]+$/.test(t)) return undefined;
  return Array.from(t, (c) => (c === "1" ? 1 : 0));
}

function parseVectorJson(text: string): number[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`--vector: not JSON; give an array of numbers such as '[0.1, -0.2, 0.3]'`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw new UsageError("--vector: must be a non-empty JSON array of numbers");
  parsed.forEach((x, i) => {
    if (typeof x !== "number" || !Number.isFinite(x)) throw new UsageError(`--vector: component ${i} is ${JSON.stringify(x)}, not a finite number`);
  });
  return parsed as number[];
}

export const searchCommand: Command = {
  path: ["search"],
  summary: "top-k search of a vector Magu, off-chain over libp2p or as an on-chain task (--onchain)",
  usage: "muri search --magu ID (--vector JSON | --query FILE) -k K [--ef N | --exact] [--no-verify] [--onchain [--fee MURI]]",
  help: [
    "  --magu ID            the vector Magu",
    "  --vector JSON        the query as a JSON array of numbers (hamming: of D numbers 0/1, or a string of D characters 0/1)",
    `  --query FILE         the query as a one-row vector file (${FORMATS.join(", ")}; hamming: .npy uint8 packed bits, .bits, .jsonl)`,
    "  -k K                 results wanted (default 10)",
    "  --ef N               HNSW search effort on the nodes (higher: better recall, slower; default: the nodes')",
    "  --exact              brute force on the nodes: the exact top-k",
    "  --no-verify          skip checking each hit's Merkle proof against the Magu's root on chain (faster; a lying member goes unnoticed)",
    "  --onchain            submit a SearchMarket task and wait for its finalized answer (exact on the nodes)",
    "  --fee MURI           fee of the on-chain task, split among the members that answered (default 1)",
    GRANT_HELP,
  ],
  options: {
    magu: { type: "string" },
    vector: { type: "string" },
    query: { type: "string" },
    k: { type: "string", short: "k" },
    ef: { type: "string" },
    exact: { type: "boolean" },
    "no-verify": { type: "boolean" },
    onchain: { type: "boolean" },
    fee: { type: "string" },
    grant: { type: "string" },
    "client-dir": { type: "string" },
  },
  signs: false,
  prepare(args) {
    const maguId = parseInteger(args.required("magu", "the vector Magu to search"), "--magu", { min: 1n });
    const vectorArg = args.string("vector");
    const queryArg = args.string("query");
    if ((vectorArg === undefined) === (queryArg === undefined)) throw new UsageError("give exactly one of --vector JSON and --query FILE");
    const k = Number(parseInteger(args.string("k") ?? "10", "-k", { min: 1n, max: 1000n }));
    const efArg = args.string("ef");
    const ef = efArg === undefined ? undefined : Number(parseInteger(efArg, "--ef", { min: 1n, max: 100000n }));
    const exact = args.flag("exact");
    const onchain = args.flag("onchain");
    if (exact && ef !== undefined) throw new UsageError("--exact and --ef exclude each other");
    const verify = !args.flag("no-verify");
    if (onchain && !verify) throw new UsageError("--no-verify only applies to off-chain searches (an on-chain answer is checked by disputes)");
    if (!onchain && args.string("fee") !== undefined) throw new UsageError("--fee only applies with --onchain");
    const fee = parseMuri(args.string("fee") ?? "1", "--fee", true);
    const queryFile = queryArg === undefined ? undefined : existingFile(queryArg, "--query");
    const bitString = vectorArg === undefined ? undefined : parseBitString(vectorArg);
    const vector = vectorArg === undefined ? undefined : (bitString ?? parseVectorJson(vectorArg));
    const dir = clientDir(args);
    return async (ctx) => {
      const client = await startVectorClient(args, ctx, dir, onchain);
      try {
        const { dim, metric } = await client.vectorParams(maguId);
        const hamming = metric === "hamming";
        let query: ArrayLike<number>;
        if (queryFile !== undefined && hamming) {
          const file = await readBitFile(queryFile, dim);
          if (file.count !== 1) throw new UsageError(`--query: ${queryFile} holds ${file.count} vectors; give a file with exactly one`);
          query = unpackBits(file.bits, dim);
        } else if (queryFile !== undefined) {
          const file = await readVectorFile(queryFile);
          if (file.count !== 1) throw new UsageError(`--query: ${queryFile} holds ${file.count} vectors; give a file with exactly one`);
          query = file.vectors;
        } else {
          if (bitString !== undefined && !hamming) {
            throw new UsageError(`--vector: a string of 0/1 characters is a binary query, but Magu ${maguId} uses the ${metric} metric: give a JSON array of numbers`);
          }
          query = vector!;
        }
        if (onchain) {
          const answer = await client.searchOnChain(maguId, query, k, fee);
          const results = answer.result.map((h) => ({ id: h.id.toString(), distance: floatDistance(h.distance, answer.scaleExp, hamming), canonical: h.distance.toString(), fragment: h.fragment, position: h.position }));
          return {
            json: { maguId, k, onchain: true, task: answer.task, scaleExp: answer.scaleExp, results, submitBlock: answer.submitBlock, finalizedBlock: answer.block, credits: answer.credits, payPerCredit: answer.payPerCredit, refund: answer.refund, ms: Math.round(answer.ms) },
            text: [
              `task ${answer.task}: ${results.length} results, finalized in block ${answer.block} (${answer.block - answer.submitBlock} blocks, ${(answer.ms / 1000).toFixed(1)} s), ${answer.credits} credits of ${formatMuri(answer.payPerCredit)} MURI`,
              ...results.map((r, i) => `${String(i + 1).padStart(4)}  id ${r.id}  distance ${showDistance(r.distance, hamming)}`),
            ],
          };
        }
        const result = await client.search(maguId, query, k, { ef, exact, verify });
        const results = result.hits.map((h) => ({
          id: h.id.toString(),
          distance: floatDistance(h.distance, result.scaleExp, hamming),
          canonical: h.distance.toString(),
          fragment: h.fragment,
          position: h.position,
          ...(h.payload !== undefined ? { payload: h.payload } : {}),
        }));
        const complete = result.uncovered.length === 0;
        return {
          json: {
            maguId,
            k,
            onchain: false,
            scaleExp: result.scaleExp,
            results,
            verified: result.verified,
            rejected: result.rejected,
            unproven: result.unproven,
            asked: result.asked,
            failed: result.failed,
            complete,
            uncovered: result.uncovered,
            ms: Math.round(result.ms * 10) / 10,
          },
          text: [
            `${results.length} results${result.verified ? ", each proven against the Magu's root on chain," : " (not verified)"} from ${result.asked - result.failed} of ${result.asked} members in ${result.ms.toFixed(1)} ms${complete ? "" : `; fragments ${result.uncovered.join(",")} unanswered`}`,
            ...result.rejected.map((r) => `  rejected ${r.member}: ${r.reason}`),
            ...results.map((r, i) => `${String(i + 1).padStart(4)}  id ${r.id}  distance ${showDistance(r.distance, hamming)}${r.payload != null ? `  ${JSON.stringify(r.payload)}` : ""}`),
          ],
        };
      } finally {
        await client.stop();
      }
    };
  },
};
