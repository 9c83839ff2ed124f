/**
 * A node's storage capacity as its operator sets it (issue 15.6), the way the source designs do: a
 * share of the disk (the storage subnet's THRESHOLD of available space: `{ percent: 50 }`) or a size
 * (`{ bytes }`), checked against what the filesystem of the node's directory can really hold -
 * its free space (statfs, what an unprivileged process may use) plus what the store already holds
 * there. The result is the store's quota and the capacity the node registers on chain; it is a
 * whole number of MiB (the registry reserves MaguRegistry.FRAGMENT_BYTES per stored fragment) and
 * at least one fragment (the storage subnet's MIN_N_CHUNKS: a node that cannot hold one is never
 * drafted).
 */
import { statfs } from "node:fs/promises";
import { CapacityError } from "./errors.js";

/** What the operator asked for: a size, or a share of the disk's room (optionally capped). */
export type CapacitySpec = { bytes: number } | { percent: number; maxBytes?: number };

/** The unit capacity is counted in: one fragment as the registry reserves it (1 MiB). */
export const CAPACITY_UNIT_BYTES = 1 << 20;

/** Space of the filesystem holding a directory. */
export interface DiskSpace {
  /** Bytes an unprivileged process may still write (statfs `bavail x bsize`). */
  freeBytes: number;
  /** Size of the filesystem. */
  totalBytes: number;
}

/** Free and total space of the filesystem `dir` is on (statfs). */
export async function diskSpace(dir: string): Promise<DiskSpace> {
  const s = await statfs(dir);
  return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
}

/** "21474836480" -> "20 GiB", "1.5 GiB": binary units, at most one decimal. */
export function describeBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : Number(v.toFixed(1))} ${units[u]}`;
}

/** `spec` as a string an operator would type ("50%", "20 GiB"). */
export function describeCapacity(spec: CapacitySpec): string {
  if ("bytes" in spec) return describeBytes(spec.bytes);
  return `${spec.percent}%${spec.maxBytes !== undefined ? ` (at most ${describeBytes(spec.maxBytes)})` : ""}`;
}

/**
 * The capacity in bytes `spec` gives on a filesystem with `freeBytes` free where the store already
 * holds `storedBytes`: a share is of `freeBytes + storedBytes`, rounded down to whole MiB; a size
 * must fit in that room. Throws CapacityError (naming the numbers) when it does not fit or is
 * below one fragment.
 */
export function resolveCapacity(spec: CapacitySpec, disk: { dir: string; freeBytes: number; storedBytes: number }): number {
  const room = disk.freeBytes + disk.storedBytes;
  const context = { asked: describeCapacity(spec), dir: disk.dir, freeBytes: disk.freeBytes, storedBytes: disk.storedBytes };
  const where = `the filesystem of ${disk.dir} has ${describeBytes(disk.freeBytes)} free and the node stores ${describeBytes(disk.storedBytes)} there`;
  let bytes: number;
  let shown: number; // before rounding, for the message
  if ("bytes" in spec) {
    if (spec.bytes > room) {
      throw new CapacityError(context, `capacity ${context.asked} does not fit: ${where}, so it can hold at most ${describeBytes(room)}: give a smaller size or a share of the disk (e.g. 50%)`);
    }
    bytes = shown = spec.bytes;
  } else {
    if (!(spec.percent > 0 && spec.percent <= 100)) throw new CapacityError(context, `capacity ${context.asked}: a share of the disk is more than 0% and at most 100%`);
    shown = Math.floor((room * spec.percent) / 100);
    bytes = Math.floor(shown / CAPACITY_UNIT_BYTES) * CAPACITY_UNIT_BYTES;
    if (spec.maxBytes !== undefined && bytes > spec.maxBytes) bytes = spec.maxBytes;
  }
  if (bytes < CAPACITY_UNIT_BYTES) {
    throw new CapacityError(context, `capacity ${context.asked} is ${describeBytes(shown)}, below one fragment (${describeBytes(CAPACITY_UNIT_BYTES)}): ${where}; a node that cannot hold a fragment is never drafted`);
  }
  return bytes;
}
