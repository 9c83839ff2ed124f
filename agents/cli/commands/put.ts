/**
 * `muri put FILE`: encrypts and erasure-codes a file into a new blob Magu (agents/roles/client/client.ts:
 * create, form, commit, push to the members) and prints what `muri get` needs: the Magu id and the
 * manifest CID. `muri put FILE --magu ID` appends the file to an existing blob Magu the key owns
 * (`putInto`: its k, m, members, term and price are the Magu's).
 */
import { statSync } from "node:fs";
import { resolve } from "node:path";
import { CLIENT_DEFAULTS, type PutOptions } from "../../roles/client/client.js";
import type { Command } from "../command.js";
import { CLIENT_DIR_HELP, clientDir, startClient } from "../devnet/storage-client.js";
import { humanBytes, startProgress } from "../devnet/progress.js";
import { UsageError } from "../errors.js";
import { formatMuri, parseInteger, parseMuri } from "../values.js";

/** Client log messages of a put into a new Magu (encoding and forming overlap). */
function newMaguPhases(): (msg: string) => string | undefined {
  let encoded = false;
  let formed = false;
  return (msg) => {
    if (msg === "encoded") encoded = true;
    else if (msg === "magu formed") formed = true;
    else return undefined;
    if (encoded && formed) return "committing and pushing shards to the members";
    return encoded ? "forming the Magu" : "encrypting and encoding (Magu formed)";
  };
}
/** Client log messages of a put into an existing Magu -> what the progress line says next. */
const APPEND_PHASES: Record<string, string> = {
  "append checked": "encrypting and encoding",
  encoded: "committing the new root",
  "data committed": "pushing shards to the members",
};
/** Options a Magu fixes: refused beside --magu. */
const NEW_MAGU_OPTIONS = ["data-shards", "parity-shards", "members", "periods", "price"] as const;

export const putCommand: Command = {
  path: ["put"],
  summary: "store a file in a new blob Magu (or append it to one: --magu ID); prints the Magu id and manifest CID",
  usage: "muri put FILE [--data-shards K --parity-shards M] [--members N] [--periods P] [--price X] | muri put FILE --magu ID | muri put FILE --resume",
  help: [
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
    "client-dir": { type: "string" },
  },
  positionals: ["FILE"],
  signs: true,
  prepare(args) {
    const file = resolve(args.positionals[0]!);
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new UsageError(`FILE: ${file} is not a regular file`);
      size = st.size;
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`FILE: ${file} does not exist or cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
    }
    if (size === 0) throw new UsageError(`FILE: ${file} is empty`);
    const maguArg = args.string("magu");
    const into = maguArg === undefined ? undefined : parseInteger(maguArg, "--magu", { min: 1n });
    const resume = args.flag("resume");
    if (resume) {
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
    const options: PutOptions = { k, m, members, resume };
    const periods = args.string("periods");
    if (periods !== undefined) options.durationPeriods = parseInteger(periods, "--periods", { max: (1n << 64n) - 1n });
    const price = args.string("price");
    if (price !== undefined) options.pricePerFragmentPeriod = parseMuri(price, "--price");
    const dir = clientDir(args);

    return async (ctx) => {
      const progress = startProgress(`put ${humanBytes(size)}`);
      progress.update(into === undefined ? "encrypting and encoding" : `checking Magu ${into}`);
      // The client reports its phases through its logger; the progress line follows them.
      const phases = into === undefined ? newMaguPhases() : (msg: string) => APPEND_PHASES[msg];
      const phase = (msg: string) => {
        const next = phases(msg);
        if (next !== undefined) progress.update(next);
      };
      const logger = { debug: phase, info: phase, warn: () => undefined, error: () => undefined };
      let client;
      try {
        client = await startClient(args, ctx, dir, logger);
      } catch (err) {
        progress.done();
        throw err;
      }
      try {
        const result = into === undefined ? await client.put(file, options) : await client.putInto(into, file);
        const manifest = result.manifestCid.toString();
        return {
          json: {
            file,
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
            `stored ${file} (${humanBytes(result.fileSize)}) in Magu ${result.maguId}: ${result.shards} shards on ${result.members.length} members` +
              (result.offset > 0 ? ` (fragments ${result.offset}..${result.fragmentCount - 1})` : ""),
            `manifest ${manifest}`,
            `get it back: muri get ${manifest} -o FILE (from another client directory: add --magu ${result.maguId})`,
          ],
        };
      } finally {
        progress.done();
        await client.stop();
      }
    };
  },
};
