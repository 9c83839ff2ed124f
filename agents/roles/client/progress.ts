/**
 * Progress of a put (client.ts) or a vector add (vector-client.ts), reported as it happens: the one
 * source the CLI's progress line (`muri put`) and the HTTP API's operations (`GET
 * /v1/operations/{id}`) both read. Every counter only grows; each event is a full snapshot.
 */

export interface TransferProgress {
  /** What the work does now, in words ("encrypting and encoding", "pushing shards to the members", ...). */
  phase: string;
  /** Bytes of the file (a put: as stored, after packing or compression; an add: of the packed fragments). */
  bytesTotal: number;
  /** Of those, read into the encoder (an add packs all before it pushes). */
  bytesEncoded: number;
  /** Fragment pushes the work makes: a put, one per shard; an add, one per fragment and holder. */
  fragmentsTotal: number;
  /** Of those, taken by their member. */
  fragmentsPushed: number;
  /** Members asked to acknowledge (0 until the pushes are done). */
  acksTotal: number;
  /** Of those, acknowledged (signed). */
  acksReceived: number;
}

/** Hears each new snapshot. */
export type ProgressListener = (progress: Readonly<TransferProgress>) => void;

/** The progress of one put or add: counters only grow, each change is told to the listener. */
export class ProgressTracker {
  private readonly state: TransferProgress;

  constructor(
    private readonly listener: ProgressListener | undefined,
    init: Partial<TransferProgress> = {},
  ) {
    this.state = { phase: "starting", bytesTotal: 0, bytesEncoded: 0, fragmentsTotal: 0, fragmentsPushed: 0, acksTotal: 0, acksReceived: 0, ...init };
  }

  /** Sets fields (a counter never goes back: a smaller value is ignored) and tells the listener. */
  set(update: Partial<TransferProgress>): void {
    for (const [key, value] of Object.entries(update) as Array<[keyof TransferProgress, string | number]>) {
      if (typeof value === "number") {
        const field = key as Exclude<keyof TransferProgress, "phase">;
        this.state[field] = Math.max(this.state[field], value);
      } else if (key === "phase") this.state.phase = value;
    }
    this.tell();
  }

  /** Adds `n` to a counter. */
  add(field: Exclude<keyof TransferProgress, "phase">, n = 1): void {
    this.state[field] += n;
    this.tell();
  }

  get snapshot(): Readonly<TransferProgress> {
    return { ...this.state };
  }

  private tell(): void {
    if (this.listener === undefined) return;
    try {
      this.listener({ ...this.state });
    } catch {
      // A listener's failure is its own: the work goes on.
    }
  }
}

/** One line a person reads: "pushing shards to the members: 12.0/64.0 MiB encoded, 30/96 fragments pushed, 0/3 acknowledgements". */
export function describeProgress(p: Readonly<TransferProgress>, bytes: (n: number) => string): string {
  const parts: string[] = [];
  if (p.bytesTotal > 0) parts.push(`${bytes(p.bytesEncoded)}/${bytes(p.bytesTotal)} encoded`);
  if (p.fragmentsTotal > 0) parts.push(`${p.fragmentsPushed}/${p.fragmentsTotal} fragments pushed`);
  if (p.acksTotal > 0) parts.push(`${p.acksReceived}/${p.acksTotal} acknowledgements`);
  return parts.length === 0 ? p.phase : `${p.phase}: ${parts.join(", ")}`;
}
