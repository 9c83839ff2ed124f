/**
 * `muri put FILE`: encrypts and erasure-codes a file into a new blob Magu (agents/roles/client/client.ts:
 * create, form, commit, push to the members) and prints what `muri get` needs: the Magu id and the
 * manifest CID. `muri put FILE --magu ID` appends the file to an existing blob Magu the key owns
 * (`putInto`: its k, m, members, term and price are the Magu's). `muri put DIR` stores a directory
 * tree as one pack (client/folder.ts) the same way; `--compress[=auto|zstd|gzip]` compresses first.
 */
import { readdirSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { COMPRESSION_CHOICES, ZSTD_AVAILABLE, type CompressionChoice } from "../../data/compression.js";
import { CLIENT_DEFAULTS, type PutOptions, type PutResult } from "../../roles/client/client.js";
import { FolderError, scanDirectory } from "../../roles/client/folder.js";
import { describeProgress, type TransferProgress } from "../../roles/client/progress.js";
import { silentLogger } from "../../store/logger.js";
import type { Command } from "../command.js";
import { CLIENT_DIR_HELP, clientDir, startClient } from "../devnet/storage-client.js";
import { humanBytes, startProgress } from "../devnet/progress.js";
import { UsageError } from "../errors.js";
import { formatMuri, parseInteger, parseMuri } from "../values.js";

/** Options a Magu fixes: refused beside --magu. */
const NEW_MAGU_OPTIONS = ["data-shards", "parity-shards", "members", "periods", "price"] as const;

export const putCommand: Command = {
  path: ["put"],
  summary: "store a file or a directory in a new blob Magu (or append it to one: --magu ID); prints the Magu id and manifest CID",
  usage: "muri put FILE|DIR [--compress[=auto|zstd|gzip]] [--data-shards K --parity-shards M] [--members N] [--periods P] [--price X] | muri put FILE|DIR --magu ID | muri put FILE --resume",
  help: [
    "  DIR                  a directory: its tree (files, subdirectories, modes, symlinks that stay inside it) as one pack; muri ls lists it",
    `  --compress[=ALG]     compress before encryption: auto (the default of a bare --compress: only what a sample shows shrinks by 10% or more), zstd${ZSTD_AVAILABLE ? "" : " (not in this Node)"}, gzip, none (the default)`,
    "  --magu ID            append to this existing blob Magu (owned by the key, active, with enough paid fragments left)",
    "  --resume             finish a put of FILE that was interrupted (crash, Ctrl-C): same Magu, nothing paid twice",
    `  --data-shards K      data shards per stripe (default ${CLIENT_DEFAULTS.k})`,
    `  --parity-shards M    parity shards per stripe: any M of K+M may be lost (default ${CLIENT_DEFAULTS.m})`,
    "  --members N          nodes in the Magu (default K+M)",
    `  --periods P          storage duration in periods (default ${CLIENT_DEFAULTS.durationPeriods})`,
    `  --price X            MURI per fragment per period (default ${formatMuri(CLIENT_DEFAULTS.pricePerFragmentPeriod)})`,
    CLIENT_DIR_HELP,
  ],
  options: {
    "data-shards": { type: "string" },
    "parity-shards": { type: "string" },
    members: { type: "string" },
    periods: { type: "string" },
    price: { type: "string" },
    magu: { type: "string" },
    resume: { type: "boolean" },
    compress: { type: "string", bare: "auto" },
    "client-dir": { type: "string" },
  },
  positionals: ["FILE|DIR"],
  signs: true,
  prepare(args) {
    const file = resolve(args.positionals[0]!);
    let size: number;
    let isDir = false;
    try {
      const st = statSync(file);
      isDir = st.isDirectory();
      if (!st.isFile() && !isDir) throw new UsageError(`FILE|DIR: ${file} is neither a regular file nor a directory`);
      if (isDir) readdirSync(file);
      size = st.size;
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`FILE|DIR: ${file} does not exist or cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
    }
    if (size === 0 && !isDir) throw new UsageError(`FILE: ${file} is empty`);
    const compressArg = args.string("compress");
    if (compressArg !== undefined && !(COMPRESSION_CHOICES as readonly string[]).includes(compressArg)) {
      throw new UsageError(`--compress: "${compressArg}" is not one of ${COMPRESSION_CHOICES.join(", ")} (a bare --compress is auto)`);
    }
    if (compressArg === "zstd" && !ZSTD_AVAILABLE) throw new UsageError(`--compress: zstd is not in this Node's zlib (${process.version}; it needs Node >= 22.15): use --compress=gzip`);
    const compress = compressArg as CompressionChoice | undefined;
    const maguArg = args.string("magu");
    const into = maguArg === undefined ? undefined : parseInteger(maguArg, "--magu", { min: 1n });
    const resume = args.flag("resume");
    if (resume) {
      if (isDir) throw new UsageError("--resume: finishes an interrupted put of a FILE; a directory's put is not resumable (its Magu, if one was paid for, takes it with --magu ID)");
      if (compress !== undefined && compress !== "none") throw new UsageError("--resume: a compressed put is not resumable; drop --compress (or --resume, to put it afresh)");
      if (into !== undefined) throw new UsageError("--resume: finishes a put into a new Magu; drop --magu (an append that failed left the chain untouched: run it again)");
      const fixed = NEW_MAGU_OPTIONS.filter((o) => args.string(o) !== undefined);
      if (fixed.length > 0) throw new UsageError(`--${fixed[0]}: a resumed put keeps the options it started with; drop --${fixed.join(", --")}`);
    }
    if (into !== undefined) {
      const fixed = NEW_MAGU_OPTIONS.filter((o) => args.string(o) !== undefined);
      if (fixed.length > 0) throw new UsageError(`--${fixed[0]}: Magu ${into} fixes it; drop --${fixed.join(", --")} when putting into an existing Magu with --magu`);
    }
    const k = Number(parseInteger(args.string("data-shards") ?? String(CLIENT_DEFAULTS.k), "--data-shards", { min: 1n, max: 128n }));
    const m = Number(parseInteger(args.string("parity-shards") ?? String(CLIENT_DEFAULTS.m), "--parity-shards", { min: 0n, max: 128n }));
    const members = Number(parseInteger(args.string("members") ?? String(k + m), "--members", { min: 1n, max: 256n }));
    if (members < k + m) throw new UsageError(`--members: a stripe of K+M = ${k + m} shards needs at least ${k + m} members, got ${members}`);
    const options: PutOptions = { k, m, members, resume, ...(compress !== undefined ? { compress } : {}) };
    const periods = args.string("periods");
    if (periods !== undefined) options.durationPeriods = parseInteger(periods, "--periods", { max: (1n << 64n) - 1n });
    const price = args.string("price");
    if (price !== undefined) options.pricePerFragmentPeriod = parseMuri(price, "--price");
    const dir = clientDir(args);

    return async (ctx) => {
      // A tree that cannot be stored (special files, symlinks leaving it, unreadable entries) is
      // refused before anything is paid.
      let tree: Awaited<ReturnType<typeof scanDirectory>> | undefined;
      if (isDir) {
        try {
          tree = await scanDirectory(file);
        } catch (err) {
          if (err instanceof FolderError) throw new UsageError(`DIR: ${err.message}`);
          throw err;
        }
        size = tree.bytes;
      }
      const progress = startProgress(`put ${isDir ? `${tree!.files} files, ` : ""}${humanBytes(size)}`);
      progress.update(into === undefined ? "encrypting and encoding" : `checking Magu ${into}`);
      // The client's progress events (progress.ts): the same ones GET /v1/operations/{id} reports.
      const onProgress = (p: Readonly<TransferProgress>): void => progress.update(describeProgress(p, humanBytes));
      let client;
      try {
        client = await startClient(args, ctx, dir, silentLogger);
      } catch (err) {
        progress.done();
        throw err;
      }
      try {
        const result: PutResult & { directory?: Awaited<ReturnType<typeof scanDirectory>> & { packSize: number; stored: number; compressed: number } } = isDir
          ? await client.putDirectory(file, { ...options, onProgress }, into)
          : into === undefined
            ? await client.put(file, { ...options, onProgress })
            : await client.putInto(into, file, { onProgress, ...(compress !== undefined ? { compress } : {}) });
        const manifest = result.manifestCid.toString();
        const d = result.directory;
        const what = d !== undefined ? `directory ${file} (${d.files} files, ${d.directories} subdirectories${d.symlinks > 0 ? `, ${d.symlinks} symlinks` : ""}, ${humanBytes(d.bytes)}${d.compressed > 0 ? `, ${d.compressed} files compressed` : ""}; packed into ${humanBytes(result.fileSize)})` : `${file} (${humanBytes(result.fileSize)}${result.compression !== undefined ? ` ${result.compression}-compressed` : ""})`;
        return {
          json: {
            file,
            ...(d !== undefined ? { directory: { files: d.files, directories: d.directories, symlinks: d.symlinks, bytes: d.bytes, stored: d.stored, compressed: d.compressed, packSize: d.packSize } } : {}),
            ...(result.compression !== undefined ? { compression: result.compression } : {}),
            maguId: result.maguId,
            manifestCid: manifest,
            fileSize: result.fileSize,
            shards: result.shards,
            offset: result.offset,
            fragmentCount: result.fragmentCount,
            members: result.members,
            ...(into === undefined ? { dataShards: k, parityShards: m } : {}),
          },
          text: [
            `stored ${what} in Magu ${result.maguId}: ${result.shards} shards on ${result.members.length} members` +
              (result.offset > 0 ? ` (fragments ${result.offset}..${result.fragmentCount - 1})` : ""),
            `manifest ${manifest}`,
            d !== undefined
              ? `list it: muri ls ${manifest}; get it back: muri get ${manifest} -o DIR, one file: muri get ${manifest} --path PATH -o FILE (from another client directory: add --magu ${result.maguId})`
              : `get it back: muri get ${manifest} -o FILE (from another client directory: add --magu ${result.maguId})`,
          ],
        };
      } finally {
        progress.done();
        await client.stop();
      }
    };
  },
};
