/**
 * Reading float vectors from the files people keep them in: `.fvecs`, NumPy `.npy`, JSON lines and
 * CSV. A file parses whole or throws a {@link VectorFileError} naming the file, where (row, line,
 * column, byte offset), what was wrong and what to do; nothing is returned partially.
 *
 * | format | layout | ids |
 * | --- | --- | --- |
 * | `.fvecs` | per row: int32 LE dim, then dim × float32 LE; every row the same dim | none |
 * | `.npy` | NumPy format v1/v2/v3, dtype `<f4` (or `<f8`, converted), 2-D, C order | none |
 * | `.jsonl` | one vector per line: `[0.1, ...]`, or `{"id": 7, "vector": [...], "payload": {...}}` (id a non-negative integer or a decimal string; payload optional, a JSON object); blank lines skipped; every line the same form; other keys ignored | object form |
 * | `.csv` | rows of numbers, comma separated; an optional header row (a first row with a non-numeric cell); a header column named `id` gives the ids | `id` column |
 *
 * Values must be finite (NaN and ±Infinity are refused; float64 input is rounded to float32 and
 * must stay finite). Ids, when the file gives them, are unique uint64; otherwise `ids` is null and
 * the caller numbers rows. A payload is a JSON object of at most MAX_PAYLOAD_BYTES (4096) bytes as
 * JSON text; `payloads` is null when no row has one. {@link readPayloadFile} reads payloads for a
 * file without them (.npy, .fvecs): one JSON object (or `null`) per line, line i for row i.
 * Quantization to int16 at the Magu's scale is the caller's step (vectors.ts).
 *
 * Binary vectors (a Hamming Magu of `dim` bits) are read by {@link readBitFile} into packed bits:
 *
 * | format | layout | ids |
 * | --- | --- | --- |
 * | `.npy` | dtype `|u1` (uint8), 2-D (count, ceil(dim / 8)), C order: each row the packed bits, MSB first (`numpy.packbits(bits, axis=1)`), padding bits zero | none |
 * | `.bits` | one vector per line: exactly `dim` characters `0`/`1` (spaces and underscores between them ignored); blank lines skipped | none |
 * | `.jsonl` | one vector per line: `[0, 1, ...]`, or `{"id": 7, "vector": [...], "payload": {...}}`, every component 0 or 1 | object form |
 */
import { createReadStream } from "node:fs";
import { open, writeFile, type FileHandle } from "node:fs/promises";
import { endianness } from "node:os";
import { extname } from "node:path";
import { createInterface } from "node:readline";
import { InvalidParameterError, VectorFileError, type VectorFileProblem } from "./errors.js";
import { MAX_PAYLOAD_BYTES } from "./vectors.js";

export type VectorFileFormat = "fvecs" | "npy" | "jsonl" | "csv";

/** File extensions (lower case) and the format each stands for. */
export const VECTOR_FILE_EXTENSIONS: Readonly<Record<string, VectorFileFormat>> = {
  ".fvecs": "fvecs",
  ".npy": "npy",
  ".jsonl": "jsonl",
  ".ndjson": "jsonl",
  ".csv": "csv",
};
const FORMATS: readonly VectorFileFormat[] = ["fvecs", "npy", "jsonl", "csv"];

export interface VectorFile {
  readonly format: VectorFileFormat;
  readonly dim: number;
  readonly count: number;
  /** Row-major count × dim. */
  readonly vectors: Float32Array;
  /** The file's ids (unique uint64), or null when it gives none (the caller numbers rows). */
  readonly ids: bigint[] | null;
  /** Each row's payload (UTF-8 JSON text of an object) or null; null when no row has one. */
  readonly payloads?: Array<Uint8Array | null> | null;
  readonly path: string;
}

export interface ReadVectorFileOptions {
  /** The dimension the vectors must have (the Magu's); a file of another dimension is refused. */
  dim?: number;
  /** Overrides the format the extension names. */
  format?: VectorFileFormat;
}

const UINT64_MAX = (1n << 64n) - 1n;
/** Bytes read per call from binary files. */
const CHUNK_BYTES = 4 << 20;
const LITTLE_ENDIAN_HOST = endianness() === "LE";

/** Reads a whole vector file (format from the extension unless `opts.format` says). */
export async function readVectorFile(path: string, opts: ReadVectorFileOptions = {}): Promise<VectorFile> {
  if (opts.dim !== undefined && (!Number.isSafeInteger(opts.dim) || opts.dim < 1)) {
    throw new InvalidParameterError("dim", opts.dim, "must be a positive integer");
  }
  let format = opts.format;
  if (format !== undefined) {
    if (!FORMATS.includes(format)) throw new InvalidParameterError("format", format, `must be one of ${FORMATS.join(", ")}`);
  } else {
    const ext = extname(path).toLowerCase();
    format = VECTOR_FILE_EXTENSIONS[ext];
    if (format === undefined) {
      throw new VectorFileError(
        path,
        "extension",
        {},
        `unknown extension "${ext}"`,
        `use one of ${Object.keys(VECTOR_FILE_EXTENSIONS).join(", ")}, or pass the format explicitly (fvecs, npy, jsonl, csv)`,
      );
    }
  }
  switch (format) {
    case "fvecs":
      return withFile(path, (fh, size) => readFvecs(path, fh, size, opts.dim));
    case "npy":
      return withFile(path, (fh, size) => readNpy(path, fh, size, opts.dim));
    case "jsonl":
      return readJsonl(path, opts.dim);
    case "csv":
      return readCsv(path, opts.dim);
  }
}

async function withFile<T>(path: string, body: (fh: FileHandle, size: number) => Promise<T>): Promise<T> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    if (size === 0) throw emptyError(path);
    return await body(fh, size);
  } finally {
    await fh.close();
  }
}

/** The `payload` of a JSONL object line: its JSON text, or null when absent or null. */
function linePayload(path: string, obj: Record<string, unknown>, where: { row: number; line: number }): Uint8Array | null {
  if (!("payload" in obj) || obj.payload === null) return null;
  const value = obj.payload;
  if (typeof value !== "object" || Array.isArray(value)) {
    fail(path, "payload", where, `"payload" is ${Array.isArray(value) ? "an array" : `a ${typeof value}`}, not a JSON object`, 'write "payload": {"key": value, ...} (or leave it out)');
  }
  const bytes = Buffer.from(JSON.stringify(value), "utf8");
  if (bytes.length > MAX_PAYLOAD_BYTES) {
    fail(path, "payload", where, `the payload is ${bytes.length} bytes of JSON, above the ${MAX_PAYLOAD_BYTES}-byte limit`, "keep payloads small (an id, a title, a URL): store larger data elsewhere and put its address in the payload");
  }
  return bytes;
}

/**
 * Reads a payload file for `count` vectors: one JSON object, or `null` for none, per line (blank
 * lines skipped), line i for row i.
 */
export async function readPayloadFile(path: string, count: number): Promise<Array<Uint8Array | null>> {
  const out: Array<Uint8Array | null> = [];
  let lineNo = 0;
  for await (const raw of lines(path)) {
    lineNo++;
    const text = raw.trim();
    if (text.length === 0) continue;
    const where = { row: out.length, line: lineNo };
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      fail(path, "syntax", where, `not valid JSON: ${(e as Error).message}`, "write one JSON object (or null) per line, line i for vector row i");
    }
    if (out.length >= count) fail(path, "payload", where, `more payloads than the ${count} vectors`, "give one line per vector, in the vectors' order");
    out.push(linePayload(path, { payload: value }, where));
  }
  if (out.length !== count) fail(path, "payload", { row: out.length }, `${out.length} payloads for ${count} vectors`, "give one line (a JSON object, or null) per vector, in the vectors' order");
  return out;
}

function emptyError(path: string): VectorFileError {
  return new VectorFileError(path, "empty", {}, "the file holds no vectors", "give a file with at least one vector");
}

function fail(path: string, kind: VectorFileProblem, where: { row?: number; line?: number; column?: number; offset?: number }, problem: string, fix: string): never {
  throw new VectorFileError(path, kind, where, problem, fix);
}

function checkDimension(path: string, dim: number, want: number | undefined, where: { row?: number; line?: number; offset?: number }): void {
  if (want !== undefined && dim !== want) {
    fail(path, "dimension", where, `vectors have ${dim} components, expected ${want}`, `give vectors of dimension ${want} (the Magu's), or a Magu of dimension ${dim}`);
  }
}

function valueError(path: string, value: number, where: { row: number; column: number; line?: number; offset?: number }, source = value): never {
  const what = Number.isNaN(source) ? "is NaN" : !Number.isFinite(source) ? `is ${source}` : `(${source}) is outside the float32 range`;
  fail(path, "value", where, `value ${what}`, "every component must be a finite number: fix or drop that row");
}

// ---------------------------------------------------------------------------------------------
// .fvecs

async function readFvecs(path: string, fh: FileHandle, size: number, want: number | undefined): Promise<VectorFile> {
  if (size < 4) fail(path, "truncated", { row: 0, offset: 0 }, `${size} bytes cannot hold a row header (4 bytes)`, "the file is truncated or not .fvecs");
  const head = Buffer.alloc(4);
  await readExactly(fh, head, 0);
  const dim = head.readInt32LE(0);
  const rowBytes = 4 + 4 * dim;
  if (dim < 1) fail(path, "header", { row: 0, offset: 0 }, `row 0 declares dimension ${dim}`, "the file is not .fvecs (each row starts with its int32 LE dimension)");
  if (rowBytes > size) {
    fail(path, "truncated", { row: 0, offset: 0 }, `row 0 declares dimension ${dim} (${rowBytes} bytes a row) but the file has ${size} bytes`, "the file is truncated or not .fvecs");
  }
  checkDimension(path, dim, want, { row: 0, offset: 0 });
  const count = Math.floor(size / rowBytes);
  const out = new Float32Array(count * dim);
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / rowBytes));
  const buf = Buffer.allocUnsafe(rowsPerChunk * rowBytes);
  for (let row = 0; row < count; row += rowsPerChunk) {
    const rows = Math.min(rowsPerChunk, count - row);
    await readExactly(fh, buf.subarray(0, rows * rowBytes), row * rowBytes);
    for (let r = 0; r < rows; r++) {
      const o = r * rowBytes;
      const rowDim = buf.readInt32LE(o);
      if (rowDim !== dim) {
        fail(path, "ragged", { row: row + r, offset: (row + r) * rowBytes }, `row ${row + r} declares dimension ${rowDim}, row 0 declares ${dim}`, "every row of an .fvecs file must have the same dimension");
      }
      const base = (row + r) * dim;
      for (let c = 0; c < dim; c++) {
        const v = buf.readFloatLE(o + 4 + 4 * c);
        if (!Number.isFinite(v)) valueError(path, v, { row: row + r, column: c, offset: (row + r) * rowBytes + 4 + 4 * c });
        out[base + c] = v;
      }
    }
  }
  const rest = size - count * rowBytes;
  if (rest !== 0) {
    // A ragged row would have shown up above; here the last row is cut short.
    const rowDim = rest >= 4 ? await readInt32At(fh, count * rowBytes) : dim;
    if (rowDim !== dim) {
      fail(path, "ragged", { row: count, offset: count * rowBytes }, `row ${count} declares dimension ${rowDim}, row 0 declares ${dim}`, "every row of an .fvecs file must have the same dimension");
    }
    fail(path, "truncated", { row: count, offset: count * rowBytes }, `the file ends inside row ${count}: ${rest} of its ${rowBytes} bytes`, "the file is truncated: copy it again or drop the partial row");
  }
  return { format: "fvecs", dim, count, vectors: out, ids: null, path };
}

async function readInt32At(fh: FileHandle, position: number): Promise<number> {
  const b = Buffer.alloc(4);
  await readExactly(fh, b, position);
  return b.readInt32LE(0);
}

async function readExactly(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${position + done} (did the file shrink while being read?)`);
    done += bytesRead;
  }
}

// ---------------------------------------------------------------------------------------------
// .npy

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

/**
 * The preamble and header of a `.npy` file: the magic, a format version of 1-3, the header's length
 * and its dictionary; `prefix + headerLen` is where the data starts. `fix` ends every error.
 */
async function readNpyHeader(path: string, fh: FileHandle, size: number, fix: string): Promise<{ prefix: number; headerLen: number; descr: string; fortranOrder: boolean; shape: number[] }> {
  if (size < 10) fail(path, "truncated", { offset: 0 }, `${size} bytes cannot hold a .npy header`, fix);
  const pre = Buffer.alloc(12);
  await readExactly(fh, pre.subarray(0, Math.min(12, size)), 0);
  if (!pre.subarray(0, 6).equals(NPY_MAGIC)) fail(path, "header", { offset: 0 }, "no .npy magic (\\x93NUMPY)", `the file is not a NumPy array: ${fix}`);
  const major = pre[6]!;
  if (major < 1 || major > 3) fail(path, "header", { offset: 6 }, `.npy format version ${major}.${pre[7]} is not supported (1, 2 and 3 are)`, fix);
  const prefix = major === 1 ? 10 : 12;
  if (size < prefix) fail(path, "truncated", { offset: 0 }, `${size} bytes cannot hold a .npy v${major} header`, fix);
  const headerLen = major === 1 ? pre.readUInt16LE(8) : pre.readUInt32LE(8);
  if (prefix + headerLen > size) {
    fail(path, "truncated", { offset: prefix }, `the header announces ${headerLen} bytes but the file has ${size - prefix} after the preamble`, "the file is truncated: copy it again");
  }
  const headerBytes = Buffer.alloc(headerLen);
  await readExactly(fh, headerBytes, prefix);
  return { prefix, headerLen, ...parseNpyHeader(path, headerBytes.toString(major === 3 ? "utf8" : "latin1"), prefix) };
}

async function readNpy(path: string, fh: FileHandle, size: number, want: number | undefined): Promise<VectorFile> {
  const fix = "save the array with numpy.save(path, array.astype(numpy.float32))";
  const { prefix, headerLen, descr, fortranOrder, shape } = await readNpyHeader(path, fh, size, fix);
  if (descr !== "<f4" && descr !== "<f8") {
    const hint = descr === ">f4" || descr === ">f8" ? "it is big-endian: save array.astype('<f4')" : fix;
    fail(path, "dtype", { offset: prefix }, `dtype ${descr} is not supported (little-endian float32 '<f4' or float64 '<f8' are)`, hint);
  }
  if (fortranOrder) fail(path, "shape", { offset: prefix }, "the array is in Fortran (column-major) order", "save numpy.ascontiguousarray(array) instead");
  if (shape.length !== 2) fail(path, "shape", { offset: prefix }, `the array has shape (${shape.join(", ")}): ${shape.length}-D, expected 2-D (count, dim)`, "reshape it to (count, dim) before saving");
  const [count, dim] = shape as [number, number];
  if (count === 0) throw emptyError(path);
  if (dim === 0) fail(path, "shape", { offset: prefix }, `the array has shape (${count}, 0): vectors without components`, "save an array of shape (count, dim) with dim >= 1");
  checkDimension(path, dim, want, { offset: prefix });
  const item = descr === "<f4" ? 4 : 8;
  const start = prefix + headerLen;
  const rowBytes = dim * item;
  const dataBytes = count * rowBytes;
  if (!Number.isSafeInteger(dataBytes) || start + dataBytes > size) {
    const whole = Math.floor((size - start) / rowBytes);
    fail(path, "truncated", { row: whole, offset: start + whole * rowBytes }, `shape (${count}, ${dim}) needs ${dataBytes} data bytes but the file has ${size - start}`, "the file is truncated: copy it again");
  }
  if (start + dataBytes < size) {
    fail(path, "trailing", { offset: start + dataBytes }, `${size - start - dataBytes} bytes follow the (${count}, ${dim}) array`, `${fix} (one array per file)`);
  }
  const out = new Float32Array(count * dim);
  if (item === 4 && LITTLE_ENDIAN_HOST) {
    // Read straight into the result, then check every value.
    const target = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    for (let o = 0; o < dataBytes; o += CHUNK_BYTES) await readExactly(fh, target.subarray(o, Math.min(dataBytes, o + CHUNK_BYTES)), start + o);
    for (let i = 0; i < out.length; i++) {
      const v = out[i]!;
      if (v - v !== 0) valueError(path, v, { row: Math.floor(i / dim), column: i % dim, offset: start + 4 * i });
    }
  } else {
    const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / rowBytes));
    const buf = Buffer.allocUnsafe(rowsPerChunk * rowBytes);
    for (let row = 0; row < count; row += rowsPerChunk) {
      const rows = Math.min(rowsPerChunk, count - row);
      await readExactly(fh, buf.subarray(0, rows * rowBytes), start + row * rowBytes);
      const base = row * dim;
      for (let i = 0; i < rows * dim; i++) {
        const src = item === 4 ? buf.readFloatLE(4 * i) : buf.readDoubleLE(8 * i);
        const v = Math.fround(src);
        if (!Number.isFinite(v)) valueError(path, v, { row: row + Math.floor(i / dim), column: i % dim, offset: start + (base + i) * item }, src);
        out[base + i] = v;
      }
    }
  }
  return { format: "npy", dim, count, vectors: out, ids: null, path };
}

function parseNpyHeader(path: string, header: string, offset: number): { descr: string; fortranOrder: boolean; shape: number[] } {
  const bad = (what: string): never =>
    fail(path, "header", { offset }, `malformed .npy header (${what}): ${JSON.stringify(header.trim().slice(0, 120))}`, "save the array with numpy.save");
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1] ?? bad("no descr");
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1] ?? bad("no fortran_order");
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1] ?? bad("no shape");
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => (/^\d+L?$/.test(s) ? Number.parseInt(s, 10) : bad(`shape entry "${s}"`)));
  return { descr, fortranOrder: fortran === "True", shape };
}

// ---------------------------------------------------------------------------------------------
// Text formats

/** A Float32Array that grows by doubling. */
class FloatRows {
  data = new Float32Array(1 << 16);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  result(): Float32Array {
    return this.data.slice(0, this.length);
  }
}

async function* lines(path: string): AsyncGenerator<string, void, undefined> {
  const stream = createReadStream(path, { encoding: "utf8", highWaterMark: 1 << 20 });
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    let first = true;
    for await (const line of rl) {
      // A byte-order mark (spreadsheet exports) is not part of the first cell.
      yield first && line.startsWith("\uFEFF") ? line.slice(1) : line;
      first = false;
    }
  } finally {
    rl.close();
    stream.destroy();
  }
}

class IdSet {
  private readonly seen = new Map<bigint, number>();
  constructor(private readonly path: string) {}
  add(id: bigint, row: number, line: number): void {
    const first = this.seen.get(id);
    if (first !== undefined) fail(this.path, "duplicate-id", { row, line }, `id ${id} was already given at line ${first}`, "ids must be unique within a file: remove or renumber the duplicate");
    this.seen.set(id, line);
  }
}

function parseIdText(text: string): bigint | undefined {
  if (!/^\d{1,20}$/.test(text)) return undefined;
  const id = BigInt(text);
  return id <= UINT64_MAX ? id : undefined;
}

async function readJsonl(path: string, want: number | undefined): Promise<VectorFile> {
  const rows = new FloatRows();
  let form: "array" | "object" | undefined;
  let formLine = 0;
  let dim = 0;
  let count = 0;
  let lineNo = 0;
  const ids: bigint[] = [];
  const payloads: Array<Uint8Array | null> = [];
  const seen = new IdSet(path);
  for await (const raw of lines(path)) {
    lineNo++;
    const text = raw.trim();
    if (text.length === 0) continue;
    const where = { row: count, line: lineNo };
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      const hint = /\b(NaN|-?Infinity)\b/.test(text) ? " (NaN and Infinity are not JSON numbers: every component must be finite)" : "";
      fail(path, "syntax", where, `not valid JSON: ${(e as Error).message}${hint}`, "write one JSON array of numbers, or one {\"id\": ..., \"vector\": [...]} object, per line");
    }
    const lineForm = Array.isArray(value) ? "array" : value !== null && typeof value === "object" ? "object" : undefined;
    if (lineForm === undefined) fail(path, "syntax", where, `a JSON ${value === null ? "null" : typeof value}, expected an array of numbers or an {"id", "vector"} object`, "write one vector per line");
    if (form === undefined) {
      form = lineForm;
      formLine = lineNo;
    } else if (form !== lineForm) {
      fail(path, "syntax", where, `a JSON ${lineForm} but line ${formLine} is a JSON ${form}`, "every line must have the same form: all arrays, or all {\"id\", \"vector\"} objects");
    }
    let vector: unknown;
    if (lineForm === "object") {
      const obj = value as Record<string, unknown>;
      if (!("id" in obj) || !("vector" in obj)) fail(path, "syntax", where, `the object lacks ${"id" in obj ? '"vector"' : '"id"'}`, 'write {"id": <non-negative integer or decimal string>, "vector": [numbers]}');
      const rawId = obj.id;
      let id: bigint | undefined;
      if (typeof rawId === "number") {
        if (Number.isSafeInteger(rawId) && rawId >= 0) id = BigInt(rawId);
        else if (Number.isInteger(rawId) && rawId > 0) fail(path, "id", where, `id ${rawId} is above 2^53 and lost precision as a JSON number`, 'write large ids as decimal strings ("id": "18446744073709551615")');
      } else if (typeof rawId === "string") {
        id = parseIdText(rawId);
      }
      if (id === undefined) fail(path, "id", where, `id ${JSON.stringify(rawId)} is not a uint64`, "ids must be non-negative integers below 2^64 (as JSON numbers up to 2^53, or decimal strings)");
      seen.add(id, count, lineNo);
      ids.push(id);
      payloads.push(linePayload(path, obj, where));
      vector = obj.vector;
      if (!Array.isArray(vector)) fail(path, "syntax", where, '"vector" is not an array', 'write "vector": [numbers]');
    } else {
      vector = value;
    }
    const arr = vector as unknown[];
    if (count === 0) {
      dim = arr.length;
      if (dim === 0) fail(path, "dimension", where, "the vector is empty", "give vectors with at least one component");
      checkDimension(path, dim, want, where);
    } else if (arr.length !== dim) {
      fail(path, "ragged", where, `the vector has ${arr.length} components, the first (line ${formLine}) has ${dim}`, "every vector must have the same dimension");
    }
    for (let c = 0; c < dim; c++) {
      const x = arr[c];
      if (typeof x !== "number") fail(path, "syntax", { ...where, column: c }, `component ${c} is ${x === null ? "null" : Array.isArray(x) ? "an array" : typeof x === "object" ? "an object" : `a ${typeof x}`}, not a number`, "every component must be a JSON number");
      const v = Math.fround(x);
      if (!Number.isFinite(v)) valueError(path, v, { ...where, column: c }, x);
      rows.push(v);
    }
    count++;
  }
  if (count === 0) throw emptyError(path);
  return { format: "jsonl", dim, count, vectors: rows.result(), ids: form === "object" ? ids : null, payloads: payloads.some((p) => p !== null) ? payloads : null, path };
}

const NUMBER_CELL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const NON_FINITE_CELL = /^[+-]?(?:nan|inf|infinity)$/i;

function unquote(cell: string): string {
  const t = cell.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).replace(/""/g, '"').trim() : t;
}

async function readCsv(path: string, want: number | undefined): Promise<VectorFile> {
  const rows = new FloatRows();
  let columns = -1; // cells per row
  let idColumn = -1;
  let dim = 0;
  let count = 0;
  let lineNo = 0;
  let firstDataLine = 0;
  let header = false;
  const ids: bigint[] = [];
  const seen = new IdSet(path);
  for await (const raw of lines(path)) {
    lineNo++;
    if (raw.trim().length === 0) continue;
    const cells = raw.split(",").map(unquote);
    if (columns < 0) {
      columns = cells.length;
      if (cells.some((c) => !NUMBER_CELL.test(c) && !NON_FINITE_CELL.test(c))) {
        header = true;
        const names = cells.map((c) => c.toLowerCase());
        idColumn = names.indexOf("id");
        if (idColumn >= 0 && names.lastIndexOf("id") !== idColumn) fail(path, "header", { line: lineNo }, "two columns are named id", "name one column id (the ids), the others after the components");
        dim = columns - (idColumn >= 0 ? 1 : 0);
        if (dim === 0) fail(path, "header", { line: lineNo }, "the header names no vector column", "give one column per component (and optionally one named id)");
        checkDimension(path, dim, want, { line: lineNo });
        continue;
      }
      dim = columns;
    }
    const where = { row: count, line: lineNo };
    if (cells.length !== columns) {
      fail(path, "ragged", where, `the row has ${cells.length} cells, ${header ? "the header has" : `the first row (line ${firstDataLine}) has`} ${columns}`, "every row must have the same number of cells");
    }
    if (count === 0) {
      firstDataLine = lineNo;
      if (!header) checkDimension(path, dim, want, where);
    }
    for (let c = 0; c < columns; c++) {
      const cell = cells[c]!;
      if (c === idColumn) {
        const id = parseIdText(cell);
        if (id === undefined) fail(path, "id", { ...where, column: c }, `id "${cell}" is not a uint64`, "ids must be non-negative decimal integers below 2^64");
        seen.add(id, count, lineNo);
        ids.push(id);
        continue;
      }
      if (NON_FINITE_CELL.test(cell)) valueError(path, Number(cell.replace(/inf(inity)?/i, "Infinity").replace(/nan/i, "NaN")), { ...where, column: c });
      if (!NUMBER_CELL.test(cell)) fail(path, "syntax", { ...where, column: c }, cell.length === 0 ? "the cell is empty" : `"${cell}" is not a number`, "every cell must be a decimal number (a header is only allowed on the first row)");
      const x = Number(cell);
      const v = Math.fround(x);
      if (!Number.isFinite(v)) valueError(path, v, { ...where, column: c }, x);
      rows.push(v);
    }
    count++;
  }
  if (count === 0) throw emptyError(path);
  return { format: "csv", dim, count, vectors: rows.result(), ids: idColumn >= 0 ? ids : null, path };
}

// ---------------------------------------------------------------------------------------------
// Writers (tests, benchmarks, tools)

function checkRows(vectors: ArrayLike<number>, dim: number): number {
  if (!Number.isSafeInteger(dim) || dim < 1) throw new InvalidParameterError("dim", dim, "must be a positive integer");
  if (vectors.length % dim !== 0) throw new InvalidParameterError("vectors", `${vectors.length} values`, `not a whole number of ${dim}-component rows`);
  return vectors.length / dim;
}

/** Writes row-major `vectors` (count × dim) as `.fvecs`. */
export async function writeFvecs(path: string, vectors: ArrayLike<number>, dim: number): Promise<void> {
  const count = checkRows(vectors, dim);
  const rowBytes = 4 + 4 * dim;
  const buf = Buffer.allocUnsafe(count * rowBytes);
  for (let r = 0; r < count; r++) {
    buf.writeInt32LE(dim, r * rowBytes);
    for (let c = 0; c < dim; c++) buf.writeFloatLE(vectors[r * dim + c]!, r * rowBytes + 4 + 4 * c);
  }
  await writeFile(path, buf);
}

export interface WriteNpyOptions {
  /** Element type: float32 (default) or float64. */
  dtype?: "<f4" | "<f8";
  /** Format version (default 1; 2 and 3 have a 4-byte header length, 3 a UTF-8 header). */
  version?: 1 | 2 | 3;
}

/** Writes row-major `vectors` (count × dim) as a 2-D C-order `.npy` array. */
export async function writeNpy(path: string, vectors: ArrayLike<number>, dim: number, opts: WriteNpyOptions = {}): Promise<void> {
  const count = checkRows(vectors, dim);
  const dtype = opts.dtype ?? "<f4";
  const version = opts.version ?? 1;
  const prefix = version === 1 ? 10 : 12;
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': (${count}, ${dim}), }`;
  const total = Math.ceil((prefix + header.length + 1) / 64) * 64;
  header = header.padEnd(total - prefix - 1, " ") + "\n";
  const item = dtype === "<f4" ? 4 : 8;
  const buf = Buffer.alloc(total + count * dim * item);
  NPY_MAGIC.copy(buf, 0);
  buf[6] = version;
  buf[7] = 0;
  if (version === 1) buf.writeUInt16LE(header.length, 8);
  else buf.writeUInt32LE(header.length, 8);
  buf.write(header, prefix, version === 3 ? "utf8" : "latin1");
  for (let i = 0; i < count * dim; i++) {
    if (item === 4) buf.writeFloatLE(vectors[i]!, total + 4 * i);
    else buf.writeDoubleLE(vectors[i]!, total + 8 * i);
  }
  await writeFile(path, buf);
}

// ---------------------------------------------------------------------------------------------
// Binary vectors (Hamming Magus)

export type BitFileFormat = "npy" | "bits" | "jsonl";

/** File extensions (lower case) of binary vector files and the format each stands for. */
export const BIT_FILE_EXTENSIONS: Readonly<Record<string, BitFileFormat>> = {
  ".npy": "npy",
  ".bits": "bits",
  ".jsonl": "jsonl",
  ".ndjson": "jsonl",
};

/** A file of binary vectors, packed. */
export interface BitVectorFile {
  readonly format: BitFileFormat;
  /** Bits per vector. */
  readonly dim: number;
  readonly count: number;
  /** Row-major count × ceil(dim / 8) bytes: each row's bits packed MSB first, padding bits zero. */
  readonly bits: Uint8Array;
  /** The file's ids (unique uint64), or null when it gives none (the caller numbers rows). */
  readonly ids: bigint[] | null;
  /** Each row's payload (UTF-8 JSON text of an object) or null; null when no row has one. */
  readonly payloads?: Array<Uint8Array | null> | null;
  readonly path: string;
}

/**
 * Reads a whole file of binary vectors of `dim` bits (a Hamming Magu's dimension) into packed
 * bits. Throws {@link VectorFileError} naming the row or line, the bit (column) or byte, what was
 * wrong (a bit count other than `dim`, a character or number other than 0/1, padding bits set in
 * a packed .npy row) and what to do.
 */
export async function readBitFile(path: string, dim: number): Promise<BitVectorFile> {
  if (!Number.isSafeInteger(dim) || dim < 1) throw new InvalidParameterError("dim", dim, "must be a positive integer (bits)");
  const ext = extname(path).toLowerCase();
  const format = BIT_FILE_EXTENSIONS[ext];
  if (format === undefined) {
    fail(
      path,
      "extension",
      {},
      `"${ext}" is not a binary vector file (this Magu uses the Hamming metric)`,
      `use ${Object.keys(BIT_FILE_EXTENSIONS).join(", ")}: .npy of uint8 packed bits (numpy.packbits(bits, axis=1)), .bits lines of 0/1 characters, or .jsonl arrays of 0/1`,
    );
  }
  if (format === "npy") return withFile(path, (fh, size) => readBitNpy(path, fh, size, dim));
  return readBitText(path, dim, format);
}

async function readBitNpy(path: string, fh: FileHandle, size: number, dim: number): Promise<BitVectorFile> {
  const bytesPerRow = Math.ceil(dim / 8);
  const fix = `save numpy.packbits(bits, axis=1) of a (count, ${dim}) array of 0/1 (dtype uint8, shape (count, ${bytesPerRow}))`;
  const { prefix, headerLen, descr, fortranOrder, shape } = await readNpyHeader(path, fh, size, fix);
  if (descr !== "|u1" && descr !== "<u1" && descr !== "u1" && descr !== "|b1") {
    fail(path, "dtype", { offset: prefix }, `dtype ${descr} is not packed bits (a Hamming Magu's .npy is uint8 '|u1', each byte 8 bits, MSB first)`, fix);
  }
  if (descr === "|b1") fail(path, "dtype", { offset: prefix }, "dtype bool is one bit a byte, not packed bits", `pack it first: ${fix}`);
  if (fortranOrder) fail(path, "shape", { offset: prefix }, "the array is in Fortran (column-major) order", "save numpy.ascontiguousarray(array) instead");
  if (shape.length !== 2) fail(path, "shape", { offset: prefix }, `the array has shape (${shape.join(", ")}): ${shape.length}-D, expected 2-D (count, ${bytesPerRow})`, fix);
  const [count, width] = shape as [number, number];
  if (count === 0) throw emptyError(path);
  if (width !== bytesPerRow) {
    fail(path, "dimension", { offset: prefix }, `rows of ${width} bytes hold ${8 * width} bits; ${dim} bits pack into ${bytesPerRow} bytes`, `give a (count, ${bytesPerRow}) uint8 array, or a Magu of the file's dimension`);
  }
  const start = prefix + headerLen;
  const dataBytes = count * width;
  if (start + dataBytes > size) {
    const whole = Math.floor((size - start) / width);
    fail(path, "truncated", { row: whole, offset: start + whole * width }, `shape (${count}, ${width}) needs ${dataBytes} data bytes but the file has ${size - start}`, "the file is truncated: copy it again");
  }
  if (start + dataBytes < size) fail(path, "trailing", { offset: start + dataBytes }, `${size - start - dataBytes} bytes follow the (${count}, ${width}) array`, `${fix} (one array per file)`);
  const bits = new Uint8Array(dataBytes);
  for (let o = 0; o < dataBytes; o += CHUNK_BYTES) await readExactly(fh, bits.subarray(o, Math.min(dataBytes, o + CHUNK_BYTES)), start + o);
  const used = dim % 8;
  if (used !== 0) {
    const padding = 0xff >> used;
    for (let row = 0; row < count; row++) {
      const b = bits[row * width + width - 1]!;
      if ((b & padding) !== 0) {
        fail(
          path,
          "padding",
          { row, column: dim, offset: start + row * width + width - 1 },
          `byte ${width - 1} of the row is 0x${b.toString(16).padStart(2, "0")}: it sets padding bits past bit ${dim - 1} (its low ${8 - used} bits must be zero)`,
          `clear them (a ${dim}-bit vector packed with numpy.packbits has them zero), or give a Magu of dimension ${8 * width}`,
        );
      }
    }
  }
  return { format: "npy", dim, count, bits, ids: null, path };
}

/** A Uint8Array that grows by doubling. */
class ByteRows {
  data = new Uint8Array(1 << 16);
  length = 0;
  push(row: Uint8Array): void {
    while (this.length + row.length > this.data.length) {
      const next = new Uint8Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data.set(row, this.length);
    this.length += row.length;
  }
}

async function readBitText(path: string, dim: number, format: "bits" | "jsonl"): Promise<BitVectorFile> {
  const bytesPerRow = Math.ceil(dim / 8);
  const rows = new ByteRows();
  const ids: bigint[] = [];
  const payloads: Array<Uint8Array | null> = [];
  const seen = new IdSet(path);
  let form: "array" | "object" | undefined;
  let count = 0;
  let lineNo = 0;
  for await (const raw of lines(path)) {
    lineNo++;
    const text = raw.trim();
    if (text.length === 0) continue;
    const where = { row: count, line: lineNo };
    const row = new Uint8Array(bytesPerRow);
    const set = (i: number): void => {
      row[i >> 3]! |= 0x80 >> (i & 7);
    };
    if (format === "bits") {
      const chars = text.replace(/[ _\t]/g, "");
      for (let i = 0; i < chars.length && i < dim; i++) {
        const ch = chars[i]!;
        if (ch === "1") set(i);
        else if (ch !== "0") fail(path, "bit", { ...where, column: i }, `bit ${i} is ${JSON.stringify(ch)}, not 0 or 1`, "write each vector as a line of 0 and 1 characters only");
      }
      if (chars.length !== dim) fail(path, "dimension", where, `the line has ${chars.length} bits, the Magu's vectors have ${dim}`, `give exactly ${dim} characters 0/1 per line`);
    } else {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        fail(path, "syntax", where, `not valid JSON: ${(e as Error).message}`, 'write one JSON array of 0/1, or one {"id": ..., "vector": [0, 1, ...]} object, per line');
      }
      const lineForm = Array.isArray(value) ? "array" : value !== null && typeof value === "object" ? "object" : undefined;
      if (lineForm === undefined) fail(path, "syntax", where, `a JSON ${value === null ? "null" : typeof value}, expected an array of 0/1 or an {"id", "vector"} object`, "write one vector per line");
      form ??= lineForm;
      if (form !== lineForm) fail(path, "syntax", where, `a JSON ${lineForm} but earlier lines are JSON ${form}s`, 'every line must have the same form: all arrays, or all {"id", "vector"} objects');
      let vector: unknown = value;
      if (lineForm === "object") {
        const obj = value as Record<string, unknown>;
        const rawId = obj.id;
        const id = typeof rawId === "number" && Number.isSafeInteger(rawId) && rawId >= 0 ? BigInt(rawId) : typeof rawId === "string" ? parseIdText(rawId) : undefined;
        if (id === undefined) fail(path, "id", where, `id ${JSON.stringify(rawId)} is not a uint64`, "ids must be non-negative integers below 2^64 (as JSON numbers up to 2^53, or decimal strings)");
        seen.add(id, count, lineNo);
        ids.push(id);
        payloads.push(linePayload(path, obj, where));
        vector = obj.vector;
        if (!Array.isArray(vector)) fail(path, "syntax", where, '"vector" is not an array', 'write "vector": [0, 1, ...]');
      }
      const arr = vector as unknown[];
      if (arr.length !== dim) fail(path, "dimension", where, `the vector has ${arr.length} components, the Magu's vectors have ${dim} bits`, `give exactly ${dim} components 0/1 per vector`);
      for (let i = 0; i < dim; i++) {
        const x = arr[i];
        if (x === 1) set(i);
        else if (x !== 0) fail(path, "bit", { ...where, column: i }, `component ${i} is ${JSON.stringify(x)}, not 0 or 1`, "every component of a binary vector must be the number 0 or 1");
      }
    }
    rows.push(row);
    count++;
  }
  if (count === 0) throw emptyError(path);
  return { format, dim, count, bits: rows.data.slice(0, rows.length), ids: form === "object" ? ids : null, payloads: payloads.some((p) => p !== null) ? payloads : null, path };
}

/** Writes row-major packed bits (count × ceil(dim / 8) bytes) as a 2-D uint8 `.npy` array (numpy.packbits layout). */
export async function writeBitNpy(path: string, bits: Uint8Array, dim: number): Promise<void> {
  const width = Math.ceil(dim / 8);
  if (!Number.isSafeInteger(dim) || dim < 1 || bits.length % width !== 0) throw new InvalidParameterError("bits", `${bits.length} bytes`, `not a whole number of ${width}-byte rows`);
  const count = bits.length / width;
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${count}, ${width}), }`;
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, " ") + "\n";
  const buf = Buffer.alloc(total + bits.length);
  NPY_MAGIC.copy(buf, 0);
  buf[6] = 1;
  buf.writeUInt16LE(header.length, 8);
  buf.write(header, 10, "latin1");
  buf.set(bits, total);
  await writeFile(path, buf);
}
