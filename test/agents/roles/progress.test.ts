/**
 * roles/client/progress.ts: the one source of a put's and an add's progress. Counters never go
 * back (a late or stale value is ignored), each change reaches the listener as a snapshot of its
 * own (a listener keeping them sees the history), a listener that throws does not stop the work,
 * and the line `muri put` shows names each counter against its total.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { describeProgress, ProgressTracker, type TransferProgress } from "../../../agents/roles/client/progress.js";

test("counters only grow; each change is a snapshot of its own; a throwing listener is contained", () => {
  const heard: TransferProgress[] = [];
  const p = new ProgressTracker((s) => heard.push(s as TransferProgress), { phase: "encrypting and encoding", bytesTotal: 100, fragmentsTotal: 3 });
  p.set({ bytesEncoded: 60 });
  p.set({ bytesEncoded: 40, phase: "pushing shards to the members" }); // stale: the counter stays
  p.add("fragmentsPushed");
  p.add("fragmentsPushed", 2);
  p.set({ acksTotal: 3 });
  p.add("acksReceived");
  assert.deepEqual(
    heard.map((h) => [h.phase, h.bytesEncoded, h.fragmentsPushed, h.acksTotal, h.acksReceived]),
    [
      ["encrypting and encoding", 60, 0, 0, 0],
      ["pushing shards to the members", 60, 0, 0, 0],
      ["pushing shards to the members", 60, 1, 0, 0],
      ["pushing shards to the members", 60, 3, 0, 0],
      ["pushing shards to the members", 60, 3, 3, 0],
      ["pushing shards to the members", 60, 3, 3, 1],
    ],
  );
  heard[0]!.bytesEncoded = 0;
  assert.equal(p.snapshot.bytesEncoded, 60, "a listener's copy is its own");
  const throwing = new ProgressTracker(() => {
    throw new Error("the listener's own failure");
  });
  throwing.add("fragmentsPushed");
  assert.equal(throwing.snapshot.fragmentsPushed, 1);
});

test("describeProgress names each known counter against its total", () => {
  const mib = (n: number): string => `${n / 1048576} MiB`;
  const base = { phase: "pushing shards to the members", bytesTotal: 0, bytesEncoded: 0, fragmentsTotal: 0, fragmentsPushed: 0, acksTotal: 0, acksReceived: 0 };
  assert.equal(describeProgress(base, mib), "pushing shards to the members");
  assert.equal(
    describeProgress({ ...base, bytesTotal: 4 * 1048576, bytesEncoded: 1048576, fragmentsTotal: 6, fragmentsPushed: 2, acksTotal: 3, acksReceived: 1 }, mib),
    "pushing shards to the members: 1 MiB/4 MiB encoded, 2/6 fragments pushed, 1/3 acknowledgements",
  );
});
