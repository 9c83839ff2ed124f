/**
 * StreamReader / writeChunked on real libp2p streams (two nodes in this process): back-pressure
 * bounds what a reader that does not read will buffer, and reads time out or report truncation.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Stream } from "@libp2p/interface";
import { ReadTimeoutError, TruncatedFrameError, createP2PNode, type P2PNode } from "../../../agents/p2p/index.js";
import { YAMUX_DEFAULTS } from "../../../agents/p2p/constants.js";
import { StreamReader, writeChunked } from "../../../agents/p2p/stream-io.js";
import { MemoryFragmentStore } from "./fixtures.js";

const PROTOCOL = "/muri/test/stream-io/1.0.0";
const HIGH_WATER_MARK = 64 * 1024;

describe("stream reader and writer", { timeout: 60_000 }, () => {
  let server: P2PNode;
  let client: P2PNode;
  const inbound: Array<(entry: { stream: Stream; reader: StreamReader }) => void> = [];

  before(async () => {
    const store = new MemoryFragmentStore();
    server = await createP2PNode({ source: store, sink: store });
    client = await createP2PNode({ source: store, sink: store });
    await Promise.all([server.start(), client.start()]);
    await server.libp2p.handle(PROTOCOL, (stream) => {
      const reader = new StreamReader(stream, { highWaterMark: HIGH_WATER_MARK });
      inbound.shift()?.({ stream, reader });
    });
  });

  after(async () => {
    await Promise.all([server?.stop(), client?.stop()]);
  });

  async function open(): Promise<{ outbound: Stream; stream: Stream; reader: StreamReader }> {
    const accepted = new Promise<{ stream: Stream; reader: StreamReader }>((resolve) => inbound.push(resolve));
    const outbound = await client.libp2p.dialProtocol(server.multiaddrs[0], PROTOCOL, { signal: AbortSignal.timeout(5_000) });
    outbound.send(new Uint8Array([1])); // the listener only sees the stream once bytes flow
    const { stream, reader } = await accepted;
    assert.deepEqual(await reader.readExactly(1, "hello", 5_000), new Uint8Array([1]));
    return { outbound, stream, reader };
  }

  // libp2p's stream.onDrain() stays resolved after a stream's first 'drain', so a writer that
  // relied on it stalled on the first stream of a connection and on no later one: every later
  // stream handed its whole payload to an unbounded send buffer (issue 9). Hence several streams
  // on one connection, each stalled afresh, with what each side holds bounded by the windows.
  it("stalls a writer whose reader does not read, on every stream of a connection, holding a bounded amount", async () => {
    const chunkBytes = 256 * 1024;
    const maxWindow = YAMUX_DEFAULTS.maxStreamWindowSize;
    const payload = new Uint8Array(3 * maxWindow);
    for (let round = 0; round < 4; round++) {
      const { outbound, stream, reader } = await open();
      let handedOver = 0;
      await assert.rejects(
        writeChunked(outbound, payload, {
          chunkBytes,
          idleTimeoutMs: 500,
          signal: AbortSignal.timeout(20_000),
          phase: "test",
          inspect: (chunk) => {
            handedOver += chunk.length;
          },
        }),
        ReadTimeoutError,
        `round ${round}: the writer was never stalled`,
      );
      // The sender keeps at most the chunk it could not send; the receiver at most its high-water
      // mark plus what one window let through before and after it paused.
      assert.ok(outbound.writeBufferLength <= chunkBytes, `round ${round}: sender buffered ${outbound.writeBufferLength} bytes`);
      assert.ok(handedOver <= reader.buffered + stream.readBufferLength + outbound.writeBufferLength + chunkBytes, `round ${round}: ${handedOver} handed over`);
      assert.ok(reader.buffered <= HIGH_WATER_MARK + maxWindow + chunkBytes, `round ${round}: reader buffered ${reader.buffered} bytes`);
      assert.ok(stream.readBufferLength <= maxWindow + chunkBytes, `round ${round}: stream buffered ${stream.readBufferLength} bytes`);
      assert.equal(stream.status, "open", `round ${round}: the stream was reset instead of paused`);
      // Reading resumes the flow: everything that left the sender arrives.
      const sent = handedOver - outbound.writeBufferLength;
      const drained = await reader.readExactly(sent, "drain", 10_000);
      assert.equal(drained.length, sent);
      outbound.abort(new Error("done"));
    }
  });

  it("times out a read that gets no bytes, and reports a stream that ends mid-frame", async () => {
    const idle = await open();
    await assert.rejects(idle.reader.readExactly(100, "request header", 200), (err: unknown) => err instanceof ReadTimeoutError && err.context.timeoutMs === 200);
    idle.outbound.abort(new Error("done"));

    const short = await open();
    short.outbound.send(new Uint8Array(10));
    await short.outbound.close();
    await assert.rejects(short.reader.readExactly(100, "push payload", 5_000), (err: unknown) =>
      err instanceof TruncatedFrameError && err.context.received === 10 && err.context.expected === 100,
    );
  });
});
