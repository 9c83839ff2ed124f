/**
 * `muri serve`: the client's HTTP API (agents/roles/client/http-api.ts, and http-vectors.ts for
 * vector Magus) in the foreground, over the client directory's keys and record, until SIGINT/SIGTERM. It listens on 127.0.0.1 unless told
 * otherwise; anywhere else it requires its bearer token, kept in `<client-dir>/api-token` (created
 * on first use, readable by the owner only).
 */
import { existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { createKeyFile, readKeyFile } from "../../store/key-file.js";
import { CLIENT_DEFAULTS } from "../../roles/client/defaults.js";
import { DEFAULT_CACHE_BYTES, DEFAULT_DISK_RESERVE_BYTES, DEFAULT_MAX_BODY_BYTES, isLoopback, startHttpApi } from "../../roles/client/http-api.js";
import { createVectorClient } from "../../roles/client/vector-client.js";
import type { CommandArgs } from "../command.js";
import { connect, resolveTarget } from "../context.js";
import { CLIENT_DIR_HELP, clientDir, startClient } from "../devnet/storage-client.js";
import { stopSignals, type LocalCommand } from "../devnet/local-command.js";
import { ExitCode, UsageError } from "../errors.js";
import { GRANT_HELP, grantTokens } from "../grants.js";
import { cliMaguChain } from "./magu.js";
import { parseBytes, parseInteger } from "../values.js";

/** `--listen HOST:PORT` (or PORT alone, on 127.0.0.1). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:\s]+):)?([0-9]{1,5})$/.exec(value.trim());
  if (m === null) throw new UsageError(`--listen: "${value}" is not HOST:PORT or PORT (e.g. 127.0.0.1:8788)`);
  const port = Number(parseInteger(m[2]!, "--listen port", { min: 0n, max: 65535n }));
  return { host: (m[1] ?? "127.0.0.1").replace(/^\[|\]$/g, ""), port };
}

interface ServeOptions {
  host: string;
  port: number;
  cors: string | undefined;
  maxBodyBytes: number;
  diskReserveBytes: number;
  cacheBytes: number;
}

/**
 * A size option's value as a byte count this process can hold in a number (at most 2^53 - 1);
 * `fallback` when it is not given. `zero`: a size of 0 (in any unit) is a value of its own
 * (`--cache 0` keeps nothing), where `parseBytes` refuses it.
 */
export function sizeOptionValue(value: string | undefined, name: string, fallback: number, opts: { zero?: boolean } = {}): number {
  if (value === undefined) return fallback;
  if (opts.zero === true && /^0+(?:\.0+)?\s*(?:b|kb|mb|gb|tb|kib|mib|gib|tib)?$/i.test(value.trim())) return 0;
  const bytes = parseBytes(value, `--${name}`);
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError(`--${name}: ${value} is larger than ${Number.MAX_SAFE_INTEGER} bytes`);
  return Number(bytes);
}

function parseOptions(args: CommandArgs): ServeOptions {
  const cors = args.string("cors");
  if (cors !== undefined && !/^https?:\/\/[^/\s]+$/.test(cors)) throw new UsageError(`--cors: "${cors}" is not an origin (scheme://host[:port], e.g. http://localhost:5173)`);
  return {
    ...parseListen(args.string("listen") ?? "127.0.0.1:8788"),
    cors,
    maxBodyBytes: sizeOptionValue(args.string("max-body"), "max-body", DEFAULT_MAX_BODY_BYTES),
    diskReserveBytes: sizeOptionValue(args.string("disk-reserve"), "disk-reserve", DEFAULT_DISK_RESERVE_BYTES),
    cacheBytes: sizeOptionValue(args.string("cache"), "cache", DEFAULT_CACHE_BYTES, { zero: true }),
  };
}

/** The API token in `dir/api-token`, created (32 random bytes, hex) when missing. */
async function apiToken(dir: string): Promise<{ token: string; path: string }> {
  const path = join(dir, "api-token");
  if (!existsSync(path)) await createKeyFile(path, Buffer.from(randomBytes(32).toString("hex"), "utf8"));
  return { token: (await readKeyFile(path)).toString("utf8").trim(), path };
}

export const serveCommand: LocalCommand = {
  path: ["serve"],
  summary: "run the client's HTTP API (store and read files, create, fill and search vector Magus over HTTP; OpenAPI at /v1/api)",
  usage: "muri serve [--listen HOST:PORT] [--auth] [--public-reads] [--cors ORIGIN] [--max-body SIZE] [--disk-reserve SIZE] [--cache SIZE]",
  help: [
    "  --listen HOST:PORT   where to listen (default 127.0.0.1:8788; port 0 picks a free one). A non-loopback host needs the token",
    "  --auth               require the bearer token on loopback too (always required elsewhere); it is kept in CLIENT_DIR/api-token",
    "  --public-reads       serve GET/HEAD of files without the token (writes still need it)",
    "  --cors ORIGIN        let web pages from ORIGIN call the API (off by default)",
    "  --max-body SIZE      the largest body a put (file or directory) or a vector file takes (default 64GiB; larger ones get a 413)",
    "  --disk-reserve SIZE  free disk space a body spooled, unpacked or staged here must leave (default 1GiB; a 507 beyond)",
    "  --cache SIZE         decrypted files kept in CLIENT_DIR/http/cache for later reads, least recently read dropped first (default 512MiB;",
    "                       a larger file is streamed without a copy; 0 keeps none)",
    GRANT_HELP,
    CLIENT_DIR_HELP,
  ],
  options: {
    listen: { type: "string" },
    auth: { type: "boolean" },
    "public-reads": { type: "boolean" },
    cors: { type: "string" },
    "max-body": { type: "string" },
    "disk-reserve": { type: "string" },
    cache: { type: "string" },
    grant: { type: "string" },
    "client-dir": { type: "string" },
  },
  signs: true,
  prepare(args) {
    parseOptions(args);
    return async () => {
      throw new Error('"muri serve" runs without a chain context');
    };
  },
  async runLocal(args: CommandArgs, json: boolean) {
    const { host, port, cors, maxBodyBytes, diskReserveBytes, cacheBytes } = parseOptions(args);
    const dir = clientDir(args);
    const needsToken = args.flag("auth") || !isLoopback(host);
    const token = needsToken ? await apiToken(dir) : undefined;
    const target = await resolveTarget(args);
    const ctx = await connect(target, { signs: true, json });
    const signals = stopSignals("serve");
    // A body streamed into a put stages its shards beyond the memory budget on disk: under the same reserve.
    const client = await startClient(args, ctx, dir, undefined, [], undefined, { memoryBytes: CLIENT_DEFAULTS.serveStagingBytes, diskReserveBytes });
    // The vector routes: the same key and directory (startClient refused a missing key already).
    const vectors = createVectorClient({ dir, deployment: ctx.deployment, rpcUrl: ctx.rpcUrl, privateKey: target.key!, grants: grantTokens(args) });
    try {
      await vectors.start();
      const api = await startHttpApi(client, { host, port, dir, token: token?.token, publicReads: args.flag("public-reads"), corsOrigin: cors, maxBodyBytes, diskReserveBytes, cacheBytes }, { vectors, magus: cliMaguChain(ctx) });
      try {
        if (json) process.stdout.write(JSON.stringify({ event: "ready", url: api.url, account: client.address, tokenFile: token?.path ?? null }) + "\n");
        else {
          process.stdout.write(
            [
              `muri serve: ${api.url} for ${client.address} on chain ${ctx.deployment.chainId}`,
              `  OpenAPI document: ${api.url}/v1/api`,
              token === undefined ? "  no token: loopback only" : `  bearer token in ${token.path}${args.flag("public-reads") ? " (reads need none)" : ""}`,
              "Ctrl-C stops it.",
            ].join("\n") + "\n",
          );
        }
        await signals.stopped;
      } finally {
        await api.close();
      }
    } finally {
      await vectors.stop();
      await client.stop();
      signals.dispose();
    }
    return ExitCode.ok;
  },
};
