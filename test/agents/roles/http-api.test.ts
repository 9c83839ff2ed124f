import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isLoopback, openApiDocument, parseRange, Problem } from "../../../agents/roles/client/http-api.js";
import { parseListen } from "../../../agents/cli/commands/serve.js";
import { UsageError } from "../../../agents/cli/errors.js";

describe("http api: ranges, listen addresses, the OpenAPI document", () => {
  it("parses one byte range within the file, and refuses the rest with 416", () => {
    assert.equal(parseRange(undefined, 10), undefined);
    assert.deepEqual(parseRange("bytes=0-0", 10), { start: 0, end: 0 });
    assert.deepEqual(parseRange("bytes=2-", 10), { start: 2, end: 9 });
    assert.deepEqual(parseRange("bytes=5-100", 10), { start: 5, end: 9 }, "an end past the file is cut to it");
    assert.deepEqual(parseRange("bytes=-3", 10), { start: 7, end: 9 });
    assert.deepEqual(parseRange("bytes=-30", 10), { start: 0, end: 9 }, "a suffix longer than the file is the whole file");
    for (const bad of ["bytes=10-", "bytes=5-4", "bytes=-", "items=0-1", "bytes=0-1,3-4", "bytes=a-b"]) {
      assert.throws(() => parseRange(bad, 10), (err: unknown) => err instanceof Problem && err.status === 416 && err.field === "Range", bad);
    }
  });

  it("tells loopback hosts from others, and parses --listen", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "::1"]) assert.ok(isLoopback(h), h);
    for (const h of ["0.0.0.0", "192.168.1.2", "::", "example.org"]) assert.ok(!isLoopback(h), h);
    assert.deepEqual(parseListen("8788"), { host: "127.0.0.1", port: 8788 });
    assert.deepEqual(parseListen("0.0.0.0:0"), { host: "0.0.0.0", port: 0 });
    assert.deepEqual(parseListen("[::1]:9000"), { host: "::1", port: 9000 });
    for (const bad of ["", "host:", "127.0.0.1:70000", "a b:1"]) assert.throws(() => parseListen(bad), UsageError, bad);
  });

  it("describes every route it serves, each error response as a problem", () => {
    const doc = openApiDocument() as { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    assert.equal(doc.openapi, "3.1.0");
    assert.deepEqual(Object.keys(doc.paths["/v1/blobs/{cid}"]!).sort(), ["get", "head"]);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const [status, response] of Object.entries(op.responses)) {
          if (Number(status) >= 400 && method !== "head") assert.deepEqual(response, { $ref: "#/components/responses/Problem" }, `${method} ${path} ${status}`);
        }
      }
    }
    assert.doesNotThrow(() => JSON.stringify(doc));
  });
});
