/**
 * What every route of the HTTP API (http-api.ts, http-vectors.ts) answers with: RFC 9457 problems
 * (`application/problem+json`: type, title, status, detail, code, instance, and `field` when one
 * parameter is at fault), JSON bodies (bigints as decimal strings), and the checks of query
 * parameters and JSON request bodies, each refusal naming the field and what to give.
 */
import { statfs } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";

/** An RFC 9457 problem: what went wrong, for whom to fix what. */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly field?: string,
  ) {
    super(detail);
  }
}

const TITLES: Record<number, string> = {
  400: "Bad request",
  401: "Unauthorized",
  402: "Payment required",
  403: "Forbidden",
  404: "Not found",
  405: "Method not allowed",
  409: "Conflict",
  413: "Content too large",
  415: "Unsupported media type",
  416: "Range not satisfiable",
  507: "Insufficient storage",
  500: "Internal error",
  502: "Bad gateway",
  503: "Service unavailable",
  504: "Gateway timeout",
};

/** HTTP status of an error code of the clients (the rest are 500). */
const STATUS_OF: Record<string, number> = {
  ERR_MANIFEST_NOT_FOUND: 404,
  ERR_MAGU_UNKNOWN: 404,
  ERR_MAGU_RECORD: 404,
  ERR_OTHER_NETWORK: 404,
  ERR_AMBIGUOUS_MANIFEST: 409,
  ERR_MAGU_NOT_OWNER: 403,
  ERR_ACCESS_DENIED: 403,
  ERR_NOT_YOUR_FILE: 403,
  ERR_MANIFEST_AUTH: 403,
  ERR_MANIFEST_SEAL: 403,
  ERR_MAGU_KIND: 409,
  ERR_MAGU_NOT_ACTIVE: 409,
  ERR_MAGU_FULL: 413,
  ERR_DISK_FULL: 507,
  ERR_MAGU_BUSY: 409,
  ERR_SOURCE: 400,
  ERR_ENCODE_FAILED: 400,
  ERR_BAD_TAR: 400,
  ERR_DIRECTORY_INVALID: 400,
  ERR_NOT_A_DIRECTORY: 409,
  ERR_PATH_NOT_FOUND: 404,
  ERR_NOT_AVAILABLE: 503,
  ERR_TOO_MANY_OPERATIONS: 503,
  // vector Magus
  ERR_VECTOR_FILE: 400,
  ERR_BAD_QUERY: 400,
  ERR_BAD_PAYLOADS: 400,
  ERR_BAD_IDS: 400,
  ERR_VECTOR_SCALE: 400,
  ERR_ZERO_VECTOR: 400,
  ERR_VECTOR_DELETED: 409,
  ERR_SEARCH_PAYMENT: 402,
  ERR_READ_PAYMENT: 402,
  ERR_INSUFFICIENT_MURI: 402,
  ERR_SEARCH_FAILED: 502,
  ERR_TIMEOUT: 504,
};

/** An optional integer query parameter in [min, max], or a 400 naming it. */
export function intParam(url: URL, name: string, min: bigint, max: bigint): bigint | undefined {
  const value = url.searchParams.get(name);
  if (value === null) return undefined;
  if (!/^[0-9]{1,78}$/.test(value) || BigInt(value) < min || BigInt(value) > max) {
    throw new Problem(400, "ERR_BAD_PARAMETER", `query parameter ${name}: "${value}" is not an integer in [${min}, ${max}]`, name);
  }
  return BigInt(value);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** The body of `problem` as RFC 9457 JSON. */
export function problemBody(problem: Problem, instance: string): Record<string, unknown> {
  return {
    type: `https://muridata.org/problems/${problem.code.toLowerCase().replace(/^err_/, "").replaceAll("_", "-")}`,
    title: TITLES[problem.status] ?? "Error",
    status: problem.status,
    detail: problem.detail,
    code: problem.code,
    instance,
    ...(problem.field === undefined ? {} : { field: problem.field }),
  };
}

export function sendProblem(res: ServerResponse, problem: Problem, instance: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(problemBody(problem, instance));
  res.writeHead(problem.status, { "content-type": "application/problem+json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Any error as a problem: errors with a known code by it, anything else a 500 without its stack. */
export function asProblem(err: unknown): Problem {
  if (err instanceof Problem) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === "string" && e.code.startsWith("ERR_") ? e.code : "ERR_INTERNAL";
  return new Problem(STATUS_OF[code] ?? 500, code, typeof e.message === "string" ? e.message : String(err));
}

/**
 * The request body as JSON: 415 unless it is `application/json`, 413 beyond `maxBytes`, 400 naming
 * the position when it does not parse.
 */
export async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") {
    throw new Problem(415, "ERR_CONTENT_TYPE", `Content-Type "${type || "(none)"}": send the body as application/json`, "Content-Type");
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new Problem(413, "ERR_BODY_TOO_LARGE", `the JSON body is larger than ${maxBytes} bytes: send fewer rows per request (or a .npy/.fvecs body)`, "body");
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Problem(400, "ERR_BAD_JSON", `the body is not valid JSON: ${(err as Error).message}`, "body");
  }
}

/** `value` as a plain JSON object, or a 400 naming `field`. */
export function jsonObject(value: unknown, field: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Problem(400, "ERR_BAD_PARAMETER", `${field}: expected a JSON object, got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`, field);
  }
  return value as Record<string, unknown>;
}

/** An optional integer field of a JSON body (a JSON number, or a decimal string beyond 2^53) in [min, max]. */
export function jsonInteger(body: Record<string, unknown>, field: string, min: bigint, max: bigint, path = field): bigint | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  const ok = (typeof value === "number" && Number.isSafeInteger(value)) || (typeof value === "string" && /^[0-9]{1,78}$/.test(value));
  const n = ok ? BigInt(value as number | string) : undefined;
  if (n === undefined || n < min || n > max) {
    throw new Problem(400, "ERR_BAD_PARAMETER", `${path}: ${JSON.stringify(value)} is not an integer in [${min}, ${max}] (beyond 2^53 give a decimal string)`, path);
  }
  return n;
}

/** An optional boolean field of a JSON body. */
export function jsonBoolean(body: Record<string, unknown>, field: string): boolean | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw new Problem(400, "ERR_BAD_PARAMETER", `${field}: ${JSON.stringify(value)} is not true or false`, field);
  return value;
}

/** The largest body a put takes by default (`muri serve --max-body`). */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 ** 3;
/** Free space a body written to disk leaves by default (`muri serve --disk-reserve`). */
export const DEFAULT_DISK_RESERVE_BYTES = 1024 ** 3;
/** A body written to disk checks the file system's free space every this many bytes (and first). */
const DISK_CHECK_BYTES = 8 * 1024 * 1024;

/** The bounds of {@link boundedBody}. */
export interface BodyLimits {
  maxBytes: number;
  /** Checked for free space while the body is written there (none: not written to disk). */
  diskDir?: string;
  /** Free space to leave in `diskDir` (default {@link DEFAULT_DISK_RESERVE_BYTES}). */
  reserveBytes?: number;
}

/**
 * `body` passed through, refused once it exceeds `maxBytes` (413) or, when `diskDir` is given, once
 * writing on would leave less than `reserveBytes` free on that directory's file system (507).
 */
export async function* boundedBody(body: AsyncIterable<Uint8Array>, limits: BodyLimits): AsyncGenerator<Uint8Array> {
  let total = 0;
  let unchecked = Number.POSITIVE_INFINITY;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > limits.maxBytes) {
      throw new Problem(413, "ERR_BODY_TOO_LARGE", `the body is over ${limits.maxBytes} bytes, the most this API takes (muri serve --max-body): nothing was stored`, "body");
    }
    if (limits.diskDir !== undefined) {
      unchecked += chunk.length;
      if (unchecked >= DISK_CHECK_BYTES) {
        unchecked = 0;
        const fs = await statfs(limits.diskDir);
        const free = fs.bavail * fs.bsize;
        const reserve = limits.reserveBytes ?? DEFAULT_DISK_RESERVE_BYTES;
        if (free - DISK_CHECK_BYTES < reserve) {
          throw new Problem(
            507,
            "ERR_DISK_FULL",
            `the body does not fit on this machine's disk: ${free} bytes free under ${limits.diskDir}, and ${reserve} must stay free (muri serve --disk-reserve); send it with a Content-Length to stream it without spooling, or free space: nothing was stored`,
            "body",
          );
        }
      }
    }
    yield chunk;
  }
}
