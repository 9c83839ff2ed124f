/**
 * `muri serve` streams 1 GiB both ways in bounded memory (issue 18), through the SDK as a program
 * would, against a `hardhat node` and three node processes:
 * - `PUT /v1/blobs` of a 1 GiB body with its Content-Length, generated as it is sent (an AES-CTR
 *   keystream, hashed on the way: nothing of it is held by the test either), into a new Magu formed
 *   while the body arrives;
 * - `GET /v1/blobs/{cid}` of the whole file, hashed as it arrives: the same SHA-256;
 * - the daemon's peak resident memory (VmHWM) over both stays under {@link SERVE_RSS_BOUND_MIB}
 *   (e2e-helpers.ts, the bound `bench/http.ts` checks too): its staging budget
 *   (`CLIENT_DEFAULTS.serveStagingBytes`, 256 MiB) plus what it needs idle and for buffers, where
 *   holding the body or the file would take over 1 GiB more.
 */
import assert from "node:assert/strict";
import { createCipheriv, createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { CLIENT_DEFAULTS } from "../../../agents/roles/client/defaults.js";
import { MuriClient } from "../../../agents/sdk/client.js";
import { startMuri } from "../cli/run-muri.js";
import { memoryOf, SERVE_RSS_BOUND_MIB, startNetwork, tearDown, type Network } from "./e2e-helpers.js";

const NODES = 3;
const DAEMON = NODES + 1;
const SIZE = 1024 * 1024 * 1024;
const CHUNK = 1024 * 1024;

/** `size` pseudo-random bytes in `CHUNK`s, made as they are read; `digest()` is their SHA-256 once all were read. */
function keystream(size: number): { body: Readable; digest: () => string } {
  const cipher = createCipheriv("aes-256-ctr", randomBytes(32), randomBytes(16));
  const zeros = Buffer.alloc(CHUNK);
  const hash = createHash("sha256");
  let left = size;
  let hex: string | undefined;
  const body = Readable.from(
    (function* () {
      while (left > 0) {
        const chunk = cipher.update(left >= CHUNK ? zeros : zeros.subarray(0, left));
        left -= chunk.length;
        hash.update(chunk);
        yield chunk;
      }
      hex = hash.digest("hex");
    })(),
  );
  return { body, digest: () => hex ?? assert.fail(`the body was not read to its end (${left} bytes left)`) };
}

describe("muri serve: 1 GiB streamed through the HTTP API in bounded memory", { timeout: 900_000 }, () => {
  let net: Network;
  before(async () => {
    net = await startNetwork({ prefix: "muri-e2e-http-gib-", nodes: NODES, fund: [DAEMON] });
  });
  after(() => tearDown("e2e-http-gib", net?.nodes ?? []));

  test("PUT and GET of 1 GiB: the same bytes back, the daemon's peak memory under its bound", async () => {
    assert.ok(CLIENT_DEFAULTS.serveStagingBytes <= 256 * 2 ** 20, "the bound assumes the daemon stages at most 256 MiB in memory");
    const serve = await startMuri(["serve", "--listen", "127.0.0.1:0", "--rpc", net.chain.rpcUrl, "--deployment", net.deploymentFile, "--key", net.chain.keys[DAEMON]!, "--client-dir", join(net.dir, "daemon")]);
    try {
      const api = new MuriClient({ url: serve.ready.url as string });
      const idle = await memoryOf(serve.pid);
      const t0 = performance.now();
      const sent = keystream(SIZE);
      const put = await api.putBlob(sent.body, { k: 2, m: 1, members: NODES }, { size: SIZE });
      const putSeconds = (performance.now() - t0) / 1000;
      assert.equal(put.fileSize, SIZE);
      const afterPut = await memoryOf(serve.pid);

      const t1 = performance.now();
      const read = await api.getBlob(put.manifestCid);
      const hash = createHash("sha256");
      let bytes = 0;
      for await (const chunk of read.stream as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        bytes += chunk.length;
      }
      const getSeconds = (performance.now() - t1) / 1000;
      assert.equal(bytes, SIZE, "the whole file came back");
      assert.equal(hash.digest("hex"), sent.digest(), "byte for byte");
      const end = await memoryOf(serve.pid);
      console.log(
        `# 1 GiB: put ${putSeconds.toFixed(1)} s, get ${getSeconds.toFixed(1)} s; the daemon's memory: idle ${idle.rssMiB} MiB, ` +
          `peak ${afterPut.peakMiB} MiB after the put, ${end.peakMiB} MiB after the get (bound ${SERVE_RSS_BOUND_MIB})`,
      );
      assert.ok(end.peakMiB < SERVE_RSS_BOUND_MIB, `the daemon's peak resident memory ${end.peakMiB} MiB is under ${SERVE_RSS_BOUND_MIB} MiB (idle ${idle.rssMiB})`);
    } finally {
      assert.equal(await serve.stop(), 0, serve.stderr());
    }
  });
});
