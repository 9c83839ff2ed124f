/**
 * Errors of the p2p layer: one class per condition, each with a stable `code` and structured
 * `context` (peer ids and CIDs as strings, sizes as numbers) so callers and logs can act on them
 * without parsing messages.
 */
import { MuriError } from "../data/muri-error.js";

/** Base class of every p2p error. */
export class P2PError<Context extends object = Record<string, unknown>> extends MuriError<Context> {}

/** A request or response header (or its trailing bytes) breaks the framing rules. */
export class MalformedFrameError extends P2PError<{ reason: string; peer?: string }> {
  static readonly code = "ERR_P2P_MALFORMED_FRAME";
  constructor(reason: string, peer?: string) {
    super(MalformedFrameError.code, `malformed frame: ${reason}`, { reason, peer });
  }
}

/** A frame declares more payload bytes than the limit allows. */
export class FrameTooLargeError extends P2PError<{ length: number; max: number; peer?: string }> {
  static readonly code = "ERR_P2P_FRAME_TOO_LARGE";
  constructor(length: number, max: number, peer?: string) {
    super(FrameTooLargeError.code, `frame declares ${length} bytes, limit is ${max}`, { length, max, peer });
  }
}

/** The stream ended before the declared number of bytes arrived. */
export class TruncatedFrameError extends P2PError<{ expected: number; received: number; phase: string; peer?: string }> {
  static readonly code = "ERR_P2P_TRUNCATED_FRAME";
  constructor(phase: string, expected: number, received: number, peer?: string) {
    super(TruncatedFrameError.code, `stream ended in ${phase} after ${received} of ${expected} bytes`, {
      expected,
      received,
      phase,
      peer,
    });
  }
}

/** Received fragment bytes do not hash to the CID they were sent for. */
export class CidMismatchError extends P2PError<{ cid: string; peer?: string }> {
  static readonly code = "ERR_P2P_CID_MISMATCH";
  constructor(cid: string, peer?: string) {
    super(CidMismatchError.code, `fragment bytes do not match ${cid}`, { cid, peer });
  }
}

/** No bytes arrived on a stream within the read timeout. */
export class ReadTimeoutError extends P2PError<{ phase: string; timeoutMs: number; peer?: string }> {
  static readonly code = "ERR_P2P_READ_TIMEOUT";
  constructor(phase: string, timeoutMs: number, peer?: string) {
    super(ReadTimeoutError.code, `no data for ${timeoutMs} ms while reading ${phase}`, { phase, timeoutMs, peer });
  }
}

/**
 * A transfer moved its payload slower than the protocol's floor (`minTransferBytesPerSec` after
 * `transferGraceMs`): the peer dribbles bytes, or reads ours that slowly, and holds a slot meanwhile.
 */
export class TransferTooSlowError extends P2PError<{ phase: string; moved: number; total: number; elapsedMs: number; minBytesPerSec: number; peer?: string }> {
  static readonly code = "ERR_P2P_TOO_SLOW";
  constructor(phase: string, moved: number, total: number, elapsedMs: number, minBytesPerSec: number, peer?: string) {
    super(
      TransferTooSlowError.code,
      `${phase} moved ${moved} of ${total} bytes in ${elapsedMs} ms, below the floor of ${minBytesPerSec} bytes/s`,
      { phase, moved, total, elapsedMs, minBytesPerSec, peer },
    );
  }
}

/** A whole fetch or push took longer than its deadline. */
export class RequestTimeoutError extends P2PError<{ op: string; cid: string; timeoutMs: number; peer?: string }> {
  static readonly code = "ERR_P2P_REQUEST_TIMEOUT";
  constructor(op: string, cid: string, timeoutMs: number, peer?: string) {
    super(RequestTimeoutError.code, `${op} of ${cid} did not finish within ${timeoutMs} ms`, { op, cid, timeoutMs, peer });
  }
}

/** The caller's signal aborted a request. */
export class RequestAbortedError extends P2PError<{ op: string; cid: string; peer?: string }> {
  static readonly code = "ERR_P2P_ABORTED";
  constructor(op: string, cid: string, peer?: string, cause?: unknown) {
    super(RequestAbortedError.code, `${op} of ${cid} was aborted`, { op, cid, peer }, { cause });
  }
}

/** The stream was reset or closed by the remote (or the connection dropped) mid-exchange. */
export class StreamClosedError extends P2PError<{ phase: string; peer?: string }> {
  static readonly code = "ERR_P2P_STREAM_CLOSED";
  constructor(phase: string, peer?: string, cause?: unknown) {
    super(StreamClosedError.code, `stream closed during ${phase}`, { phase, peer }, { cause });
  }
}

/** Context of errors that report a remote peer's answer to a request. */
export interface RemoteAnswerContext {
  cid: string;
  peer: string;
  reason: string;
}

/** The remote does not hold the requested fragment. */
export class RemoteNotFoundError extends P2PError<RemoteAnswerContext> {
  static readonly code = "ERR_P2P_REMOTE_NOT_FOUND";
  constructor(context: RemoteAnswerContext) {
    super(RemoteNotFoundError.code, `peer ${context.peer} does not hold ${context.cid}`, context);
  }
}

/** The remote refused the request (banned, busy, out of space, or an internal failure). */
export class RemoteRefusedError extends P2PError<RemoteAnswerContext> {
  static readonly code = "ERR_P2P_REMOTE_REFUSED";
  constructor(context: RemoteAnswerContext) {
    super(RemoteRefusedError.code, `peer ${context.peer} refused ${context.cid}: ${context.reason}`, context);
  }
}

/** The remote says the fragment exceeds a size limit (its own or the one the request stated). */
export class RemoteTooLargeError extends P2PError<RemoteAnswerContext> {
  static readonly code = "ERR_P2P_REMOTE_TOO_LARGE";
  constructor(context: RemoteAnswerContext) {
    super(RemoteTooLargeError.code, `peer ${context.peer} says ${context.cid} is too large: ${context.reason}`, context);
  }
}

/** The remote rejected the request as malformed. */
export class RemoteBadRequestError extends P2PError<RemoteAnswerContext> {
  static readonly code = "ERR_P2P_REMOTE_BAD_REQUEST";
  constructor(context: RemoteAnswerContext) {
    super(RemoteBadRequestError.code, `peer ${context.peer} rejected the request for ${context.cid}: ${context.reason}`, context);
  }
}

/** The peer is banned for breaking the protocol; no streams are exchanged with it until `until`. */
export class PeerBannedError extends P2PError<{ peer: string; until: number; reason: string }> {
  static readonly code = "ERR_P2P_PEER_BANNED";
  constructor(peer: string, until: number, reason: string) {
    super(PeerBannedError.code, `peer ${peer} is banned until ${new Date(until).toISOString()} (${reason})`, {
      peer,
      until,
      reason,
    });
  }
}

/** A CID whose multihash is neither sha2-256 nor a fragment root: its bytes cannot be verified, so it is not exchanged. */
export class UnsupportedCidError extends P2PError<{ cid: string; hashCode: number }> {
  static readonly code = "ERR_P2P_UNSUPPORTED_CID";
  constructor(cid: string, hashCode: number) {
    super(UnsupportedCidError.code, `${cid} uses hash 0x${hashCode.toString(16)}; only sha2-256 and fragment-root CIDs are exchanged`, { cid, hashCode });
  }
}

/** The caller asked to push bytes that are not a valid fragment for the CID. */
export class InvalidFragmentError extends P2PError<{ cid: string; reason: string }> {
  static readonly code = "ERR_P2P_INVALID_FRAGMENT";
  constructor(cid: string, reason: string) {
    super(InvalidFragmentError.code, `refusing to push ${cid}: ${reason}`, { cid, reason });
  }
}

/** A peer key file is missing, unreadable or does not hold an Ed25519 libp2p private key. */
export class InvalidKeyFileError extends P2PError<{ path: string; reason: string }> {
  static readonly code = "ERR_P2P_INVALID_KEY_FILE";
  constructor(path: string, reason: string, cause?: unknown) {
    super(InvalidKeyFileError.code, `invalid peer key file ${path}: ${reason}`, { path, reason }, { cause });
  }
}

/** A multiaddr (from configuration or the chain) cannot be parsed or lacks a needed part. */
export class InvalidMultiaddrError extends P2PError<{ value: string; reason: string }> {
  static readonly code = "ERR_P2P_INVALID_MULTIADDR";
  constructor(value: string, reason: string, cause?: unknown) {
    super(InvalidMultiaddrError.code, `invalid multiaddr ${JSON.stringify(value)}: ${reason}`, { value, reason }, { cause });
  }
}

/** The node was asked for no transport, or for one it does not know. */
export class InvalidTransportError extends P2PError<{ value: string; reason: string }> {
  static readonly code = "ERR_P2P_INVALID_TRANSPORT";
  constructor(value: string, reason: string) {
    super(InvalidTransportError.code, `invalid transports ${JSON.stringify(value)}: ${reason}`, { value, reason });
  }
}

/** A method that needs a running node was called before start() or after stop(). */
export class NodeNotStartedError extends P2PError<{ method: string }> {
  static readonly code = "ERR_P2P_NOT_STARTED";
  constructor(method: string) {
    super(NodeNotStartedError.code, `p2p node is not running (${method})`, { method });
  }
}
