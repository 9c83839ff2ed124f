/**
 * Optional prom-client counters of the p2p layer (`muri_p2p_<thing>_total`). Without a registry the
 * counters are no-ops, so several nodes can live in one process (tests) without name clashes.
 */
import { Counter, type Registry } from "prom-client";

/** Counters the fragment protocol updates. */
export interface P2PMetrics {
  /** Fragments this node fetched from peers (verified). */
  fetched(bytes: number): void;
  /** Fragments this node served to peers. */
  served(bytes: number): void;
  /** Fragments this node pushed to peers (acknowledged). */
  pushed(bytes: number): void;
  /** Fragments peers pushed to this node that were verified and stored. */
  received(bytes: number): void;
  /** Requests that failed, by op and error code. */
  failed(op: "fetch" | "push" | "serve" | "receive", code: string): void;
  /** Protocol violations that cut a peer off, by error code. */
  violation(code: string): void;
}

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[] = []): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing !== undefined) return existing as Counter<L>;
  return new Counter<L>({ name, help, labelNames, registers: [registry] });
}

/** Creates the counters in `registry`, or no-op counters when it is undefined. */
export function createP2PMetrics(registry?: Registry): P2PMetrics {
  if (registry === undefined) {
    const noop = (): void => {};
    return { fetched: noop, served: noop, pushed: noop, received: noop, failed: noop, violation: noop };
  }
  const fragments = counter(registry, "muri_p2p_fragments_total", "Fragments moved over /muri/fragment, by direction", ["direction"]);
  const bytes = counter(registry, "muri_p2p_fragment_bytes_total", "Fragment payload bytes moved, by direction", ["direction"]);
  const failures = counter(registry, "muri_p2p_requests_failed_total", "Fragment requests that failed, by op and code", ["op", "code"]);
  const violations = counter(registry, "muri_p2p_protocol_violations_total", "Peers cut off for breaking the protocol, by code", ["code"]);
  const moved = (direction: string) => (n: number): void => {
    fragments.inc({ direction });
    bytes.inc({ direction }, n);
  };
  return {
    fetched: moved("fetched"),
    served: moved("served"),
    pushed: moved("pushed"),
    received: moved("received"),
    failed: (op, code) => failures.inc({ op, code }),
    violation: (code) => violations.inc({ code }),
  };
}
