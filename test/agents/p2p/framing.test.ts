import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CID } from "multiformats/cid";
import { identity } from "multiformats/hashes/identity";
import { fragmentCid } from "../../../agents/data/cid.js";
import { FRAGMENT_SIZE } from "../../../agents/data/constants.js";
import {
  FrameTooLargeError,
  MAX_CID_BYTES,
  MAX_REASON_BYTES,
  MalformedFrameError,
  Op,
  Status,
  decodeRequestHeader,
  decodeResponseHeader,
  encodeErrorResponse,
  encodeRequestHeader,
  encodeResponseHeader,
  requestHeaderLength,
} from "../../../agents/p2p/index.js";

const cid = fragmentCid(new Uint8Array([1, 2, 3]));

describe("fragment protocol framing", () => {
  it("round-trips fetch and push request headers", () => {
    for (const header of [
      { op: Op.Fetch, cid, length: FRAGMENT_SIZE },
      { op: Op.Push, cid, length: 0 },
      { op: Op.Push, cid, length: FRAGMENT_SIZE },
    ]) {
      const bytes = encodeRequestHeader(header);
      assert.equal(bytes.length, requestHeaderLength(bytes[0], bytes[1]));
      const decoded = decodeRequestHeader(bytes, FRAGMENT_SIZE);
      assert.equal(decoded.op, header.op);
      assert.equal(decoded.length, header.length);
      assert.ok(decoded.cid.equals(cid));
    }
  });

  it("rejects unknown ops and out-of-range CID lengths before reading further", () => {
    assert.throws(() => requestHeaderLength(0, 36), MalformedFrameError);
    assert.throws(() => requestHeaderLength(3, 36), MalformedFrameError);
    assert.throws(() => requestHeaderLength(Op.Fetch, 0), MalformedFrameError);
    assert.throws(() => requestHeaderLength(Op.Fetch, MAX_CID_BYTES + 1), MalformedFrameError);
  });

  it("rejects undecodable CIDs and CIDs whose hash the receiver cannot verify", () => {
    const garbled = encodeRequestHeader({ op: Op.Fetch, cid, length: 1 });
    garbled.fill(0xff, 2, 2 + cid.bytes.length);
    assert.throws(() => decodeRequestHeader(garbled, FRAGMENT_SIZE), MalformedFrameError);

    const identityCid = CID.createV1(0x55, identity.digest(new Uint8Array([9, 9])));
    assert.throws(() => decodeRequestHeader(encodeRequestHeader({ op: Op.Fetch, cid: identityCid, length: 1 }), FRAGMENT_SIZE), /sha2-256/);
  });

  it("rejects a push larger than the limit but lets a fetch state any accepted size", () => {
    assert.throws(
      () => decodeRequestHeader(encodeRequestHeader({ op: Op.Push, cid, length: FRAGMENT_SIZE + 1 }), FRAGMENT_SIZE),
      FrameTooLargeError,
    );
    assert.equal(decodeRequestHeader(encodeRequestHeader({ op: Op.Fetch, cid, length: 0xffff_ffff }), FRAGMENT_SIZE).length, 0xffff_ffff);
  });

  it("rejects a header whose length disagrees with its CID length byte", () => {
    const bytes = encodeRequestHeader({ op: Op.Fetch, cid, length: 1 });
    assert.throws(() => decodeRequestHeader(bytes.subarray(0, bytes.length - 1), FRAGMENT_SIZE), MalformedFrameError);
  });

  it("decodes responses and bounds their bodies", () => {
    assert.deepEqual(decodeResponseHeader(encodeResponseHeader(Status.Ok, 1000), 1000), { status: Status.Ok, length: 1000 });
    assert.throws(() => decodeResponseHeader(encodeResponseHeader(Status.Ok, 1001), 1000), FrameTooLargeError);
    assert.throws(() => decodeResponseHeader(encodeResponseHeader(Status.NotFound, MAX_REASON_BYTES + 1), FRAGMENT_SIZE), FrameTooLargeError);
    const unknown = encodeResponseHeader(Status.Ok, 0);
    unknown[0] = 77;
    assert.throws(() => decodeResponseHeader(unknown, 0), MalformedFrameError);
  });

  it("cuts long reasons to the reason limit", () => {
    const answer = encodeErrorResponse(Status.Refused, "x".repeat(10_000));
    const header = decodeResponseHeader(answer.subarray(0, 5), 0);
    assert.deepEqual(header, { status: Status.Refused, length: MAX_REASON_BYTES });
    assert.equal(answer.length, 5 + MAX_REASON_BYTES);
  });
});
