/**
 * Byte layout of `/muri/fragment/1.0.0`. A stream carries a sequence of exchanges, one at a time:
 * the dialer sends a request, reads the whole response, and only then may send the next request;
 * either side ends the stream by closing its writable end between exchanges (the listener does so
 * after `streamIdleTimeoutMs` without a request). Integers are big-endian.
 *
 * Request (dialer -> listener):
 *
 *     op u8 | cidLength u8 | cid (cidLength bytes) | length u32 | payload (push only: length bytes)
 *
 *   - op 1 = fetch: `length` is the largest fragment the dialer accepts in the answer.
 *   - op 2 = push:  `length` is the size of the payload that follows; the payload is the fragment.
 *   - cid: binary CID (multihash sha2-256 or fragment root, so the receiver can verify the bytes).
 *
 * Response (listener -> dialer):
 *
 *     status u8 | length u32 | body (length bytes)
 *
 *   - status 0 ok: for a fetch the body is the fragment; for a push the body is empty.
 *   - any other status: the body is a short UTF-8 reason (at most MAX_REASON_BYTES).
 *
 * Anything else (unknown op or status, bad CID, a length over the limit, a response with bytes
 * after it, a stream that ends inside a frame, or a payload that does not hash to the CID) is a
 * protocol violation: the reader resets the stream and drops the connection. A stream that ends
 * between exchanges is a normal close.
 */
import { CID } from "multiformats/cid";
import { isVerifiableCid } from "../data/cid.js";
import {
  MAX_CID_BYTES,
  MAX_REASON_BYTES,
  REQUEST_FIXED_BYTES,
  RESPONSE_HEADER_BYTES,
} from "./constants.js";
import { FrameTooLargeError, MalformedFrameError } from "./errors.js";

/** Request operations. */
export const Op = { Fetch: 1, Push: 2 } as const;
export type Op = (typeof Op)[keyof typeof Op];

/** Response status codes. */
export const Status = { Ok: 0, NotFound: 1, Refused: 2, TooLarge: 3, BadRequest: 4 } as const;
export type Status = (typeof Status)[keyof typeof Status];

const STATUS_NAMES: Record<Status, string> = {
  [Status.Ok]: "ok",
  [Status.NotFound]: "not-found",
  [Status.Refused]: "refused",
  [Status.TooLarge]: "too-large",
  [Status.BadRequest]: "bad-request",
};

/** Human name of a status code (`ok`, `not-found`, ...). */
export function statusName(status: Status): string {
  return STATUS_NAMES[status];
}

/** A decoded request header. */
export interface RequestHeader {
  op: Op;
  cid: CID;
  /** fetch: largest accepted answer; push: payload size. */
  length: number;
}

/** A decoded response header. */
export interface ResponseHeader {
  status: Status;
  length: number;
}

const U32_MAX = 0xffff_ffff;

/** Number of bytes a request header has in total, given its first two bytes. */
export function requestHeaderLength(op: number, cidLength: number): number {
  if (op !== Op.Fetch && op !== Op.Push) throw new MalformedFrameError(`unknown op ${op}`);
  if (cidLength === 0 || cidLength > MAX_CID_BYTES) {
    throw new MalformedFrameError(`CID length ${cidLength} outside 1..${MAX_CID_BYTES}`);
  }
  return REQUEST_FIXED_BYTES + cidLength;
}

/** Encodes a request header. */
export function encodeRequestHeader(header: RequestHeader): Uint8Array {
  const cidBytes = header.cid.bytes;
  requestHeaderLength(header.op, cidBytes.length);
  if (!Number.isInteger(header.length) || header.length < 0 || header.length > U32_MAX) {
    throw new MalformedFrameError(`length ${header.length} is not a u32`);
  }
  const out = new Uint8Array(REQUEST_FIXED_BYTES + cidBytes.length);
  out[0] = header.op;
  out[1] = cidBytes.length;
  out.set(cidBytes, 2);
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(2 + cidBytes.length, header.length);
  return out;
}

/**
 * Decodes a complete request header (as long as `requestHeaderLength` said). Throws
 * MalformedFrameError for a bad op or CID, FrameTooLargeError for a push over `maxFragmentBytes`.
 */
export function decodeRequestHeader(bytes: Uint8Array, maxFragmentBytes: number): RequestHeader {
  if (bytes.length < 2) throw new MalformedFrameError(`request header of ${bytes.length} bytes`);
  const op = bytes[0];
  const cidLength = bytes[1];
  const total = requestHeaderLength(op, cidLength);
  if (bytes.length !== total) throw new MalformedFrameError(`request header of ${bytes.length} bytes, expected ${total}`);
  let cid: CID;
  try {
    cid = CID.decode(bytes.subarray(2, 2 + cidLength));
  } catch (err) {
    throw new MalformedFrameError(`bad CID (${(err as Error).message})`);
  }
  if (!isVerifiableCid(cid)) {
    throw new MalformedFrameError(`CID hash 0x${cid.multihash.code.toString(16)} is neither sha2-256 nor a fragment root`);
  }
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(2 + cidLength);
  if (op === Op.Push && length > maxFragmentBytes) throw new FrameTooLargeError(length, maxFragmentBytes);
  return { op: op as Op, cid, length };
}

/** Encodes a response header. */
export function encodeResponseHeader(status: Status, length: number): Uint8Array {
  const out = new Uint8Array(RESPONSE_HEADER_BYTES);
  out[0] = status;
  new DataView(out.buffer).setUint32(1, length);
  return out;
}

/** Encodes a non-ok response: header plus a reason cut to MAX_REASON_BYTES. */
export function encodeErrorResponse(status: Exclude<Status, typeof Status.Ok>, reason: string): Uint8Array {
  let text = new TextEncoder().encode(reason);
  if (text.length > MAX_REASON_BYTES) text = text.subarray(0, MAX_REASON_BYTES);
  const out = new Uint8Array(RESPONSE_HEADER_BYTES + text.length);
  out.set(encodeResponseHeader(status, text.length), 0);
  out.set(text, RESPONSE_HEADER_BYTES);
  return out;
}

/**
 * Decodes a response header. `maxBody` bounds an ok body (the fetch's accepted size); a non-ok
 * body is bounded by MAX_REASON_BYTES.
 */
export function decodeResponseHeader(bytes: Uint8Array, maxBody: number): ResponseHeader {
  if (bytes.length !== RESPONSE_HEADER_BYTES) throw new MalformedFrameError(`response header of ${bytes.length} bytes`);
  const status = bytes[0];
  if (!(status in STATUS_NAMES)) throw new MalformedFrameError(`unknown status ${status}`);
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1);
  const max = status === Status.Ok ? maxBody : MAX_REASON_BYTES;
  if (length > max) throw new FrameTooLargeError(length, max);
  return { status: status as Status, length };
}
