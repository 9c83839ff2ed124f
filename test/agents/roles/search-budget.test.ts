/**
 * Search time per peer and per node (roles/shared/search-budget.ts): a peer that floods searches is
 * answered "busy" once its share of the event loop is spent, while another peer is still answered;
 * the budgets refill with time. The flood runs over real libp2p streams (`/muri/search/1.0.0`) with
 * searches that really take the time they are charged.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createP2PNode, handleSearchProtocol, searchRequest, type P2PNode } from "../../../agents/p2p/index.js";
import { Registry } from "prom-client";
import { registerSearchBudgetMetrics } from "../../../agents/roles/shared/metrics-server.js";
import { SearchBudget, SearchBudgetExceededError } from "../../../agents/roles/shared/search-budget.js";
import { MemoryFragmentStore } from "../p2p/fixtures.js";

describe("search budget", () => {
  test("charges measured time per peer and in all; refuses while spent; refills", () => {
    let t = 0;
    const b = new SearchBudget({ perPeerMsPerSecond: 100, totalMsPerSecond: 150, burstSeconds: 2, now: () => t });
    // 200 ms saved up per peer, 300 in all.
    b.check("a");
    b.charge("a", 250);
    assert.throws(() => b.check("a"), (err: unknown) => err instanceof SearchBudgetExceededError && err.scope === "peer" && err.retryAfterMs > 500 && /this peer's search time is spent, retry in \d+ ms/.test(err.message));
    b.check("b"); // another peer still has its share, and the node 50 ms
    b.charge("b", 60);
    assert.throws(() => b.check("c"), (err: unknown) => err instanceof SearchBudgetExceededError && err.scope === "node");
    t += 1000; // a second later: a refilled 100 ms less 50 spent for a, 150 for the node
    b.check("a");
    t += 10_000; // never more than the burst
    b.charge("a", 199);
    b.check("a");
    b.charge("a", 2);
    assert.throws(() => b.check("a"));
    assert.throws(() => new SearchBudget({ perPeerMsPerSecond: 0 }), /perPeerMsPerSecond must be a positive number/);
    assert.deepEqual(b.stats(), { served: 0, refusedPeer: 2, refusedNode: 1, chargedMs: 511, peers: 3 }, "charge() alone counts time, not searches");
  });

  test("a search that waited for a shared index worker is charged its own time, not its wait", async () => {
    let t = 0;
    const b = new SearchBudget({ perPeerMsPerSecond: 10, totalMsPerSecond: 100, burstSeconds: 1, now: () => t });
    // 50 ms elapsed, of which the index spent 3 on this peer's searches: 3 charged, the peer may go on.
    const answer = await b.run("p", async () => ((t += 50), { hits: [], ms: 3 }), (a) => a.ms);
    assert.deepEqual(answer, { hits: [], ms: 3 });
    assert.equal(b.stats().chargedMs, 3);
    b.check("p");
    // A failed search is charged the time it took.
    await assert.rejects(b.run("p", async () => ((t += 8), Promise.reject(new Error("bad query"))), () => 0), /bad query/);
    assert.equal(b.stats().chargedMs, 11);
    assert.throws(() => b.check("p"), SearchBudgetExceededError, "10 - 11 ms left: spent");
  });

  test("its counts reach /metrics", async () => {
    let t = 0;
    const b = new SearchBudget({ perPeerMsPerSecond: 10, totalMsPerSecond: 100, burstSeconds: 1, now: () => t });
    await b.run("p", async () => (t += 12));
    await assert.rejects(b.run("p", async () => undefined), SearchBudgetExceededError);
    const registry = new Registry();
    registerSearchBudgetMetrics(registry, () => b.stats());
    const text = await registry.metrics();
    assert.match(text, /^muri_search_served_total 1$/m);
    assert.match(text, /^muri_search_time_ms_total 12$/m);
    assert.match(text, /^muri_search_refused_total\{scope="peer"\} 1$/m);
    assert.match(text, /^muri_search_refused_total\{scope="node"\} 0$/m);
    assert.match(text, /^muri_search_budget_peers 1$/m);
  });

  describe("over libp2p", () => {
    let server: P2PNode;
    let flooder: P2PNode;
    let honest: P2PNode;
    const store = new MemoryFragmentStore();
    const budget = new SearchBudget({ perPeerMsPerSecond: 50, totalMsPerSecond: 1000, burstSeconds: 1 });
    /** A search that takes ~10 ms of the event loop, as a brute-force pass over a large index would. */
    const busySearch = async () => {
      const until = performance.now() + 10;
      let x = 0;
      while (performance.now() < until) x++;
      return { ok: true, hits: [], work: x > 0 };
    };

    before(async () => {
      server = await createP2PNode({ source: store, sink: store });
      flooder = await createP2PNode({ source: store, sink: store });
      honest = await createP2PNode({ source: store, sink: store });
      await Promise.all([server.start(), flooder.start(), honest.start()]);
      await handleSearchProtocol(server.libp2p, (_request, peer) => budget.run(peer, busySearch));
    });
    after(async () => {
      await Promise.all([server?.stop(), flooder?.stop(), honest?.stop()]);
    });

    test("a flooding peer is answered busy after its share; another peer is still served", async () => {
      const target = server.multiaddrs[0]!;
      const answers: Array<{ ok: boolean; error?: string }> = [];
      const t0 = performance.now();
      for (let i = 0; i < 15; i++) answers.push((await searchRequest(flooder.libp2p, target, { op: "search" })) as { ok: boolean; error?: string });
      const elapsed = performance.now() - t0;
      const served = answers.filter((a) => a.ok).length;
      const busy = answers.filter((a) => !a.ok && /^busy: this peer's search time is spent, retry in \d+ ms$/.test(a.error ?? "")).length;
      // 50 ms saved up and 50 ms more per second, at >= 10 ms a search (one may overdraw).
      const most = Math.floor((50 + elapsed * 0.05) / 10) + 1;
      assert.ok(served >= 3 && served <= most, `${served} of 15 served in ${Math.round(elapsed)} ms (at most ${most})`);
      assert.ok(busy >= 1, "the flooder was refused");
      assert.equal(served + busy, 15, JSON.stringify(answers.filter((a) => !a.ok).slice(0, 2)));
      const other = (await searchRequest(honest.libp2p, target, { op: "search" })) as { ok: boolean };
      assert.equal(other.ok, true, "another peer is served");
      // The flooder's share comes back with time.
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(((await searchRequest(flooder.libp2p, target, { op: "search" })) as { ok: boolean }).ok, true);
    });
  });
});
