/**
 * StreamReader / writeChunked on real libp2p streams (two nodes in this process): back-pressure
 * bounds what a reader that does not read will buffer, and reads time out or report truncation.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Stream } from "@libp2p/interface";
import { ReadTimeoutError, TruncatedFrameError, createP2PNode, type P2PNode } from "../../../agents/p2p/index.js";
import { StreamReader, writeChunked } from "../../../agents/p2p/stream-io.js";
import { MemoryFragmentStore } from "./fixtures.js";

const PROTOCOL = "/muri/test/stream-io/1.0.0";
const HIGH_WATER_MARK = 64 * 1024;

describe("stream reader and writer", { timeout: 60_000 }, () => {
  let server: P2PNode;
  let client: P2PNode;
  let inbound: Array<(entry: { stream: Stream; reader: StreamReader }) => void> = [];

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

  it("stalls a writer whose reader does not read, holding a bounded amount", async () => {
    const { outbound, stream, reader } = await open();
    const eightMiB = new Uint8Array(8 << 20);
    let handedOver = 0;
    await assert.rejects(
      writeChunked(outbound, eightMiB, {
        chunkBytes: 256 * 1024,
        idleTimeoutMs: 500,
        signal: AbortSignal.timeout(20_000),
        phase: "test",
        inspect: (chunk) => {
          handedOver += chunk.length;
        },
      }),
      ReadTimeoutError,
    );
    assert.ok(handedOver < eightMiB.length, "the writer never had to wait");
    // The reader queue stops at the high-water mark (+ one message); yamux holds at most one window.
    assert.ok(reader.buffered <= HIGH_WATER_MARK + (1 << 20), `reader buffered ${reader.buffered} bytes`);
    assert.ok(reader.buffered + stream.readBufferLength < eightMiB.length / 2);
    assert.equal(stream.status, "open", "the stream was reset instead of paused");
    // Reading resumes the flow: everything handed to the stream arrives.
    const drained = await reader.readExactly(handedOver, "drain", 10_000);
    assert.equal(drained.length, handedOver);
    outbound.abort(new Error("done"));
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
