/**
 * Small secret files (the libp2p identity `peer.key`, the client's `secret.key`) written so that a
 * power cut cannot lose them once the write resolved, and refused on load when others may read them.
 *
 * A new file is written to a temporary name (mode 0600), fsynced, then linked to its final name -
 * which fails if the name exists, so two processes creating the same key cannot overwrite each
 * other's - and the directory is fsynced so the new name survives too.
 */
import { randomBytes } from "node:crypto";
import { link, mkdir, open, readFile, stat, unlink } from "node:fs/promises";
import { dirname } from "node:path";

/** Mode bits a secret file must not have: any access by group or others. */
const SHARED_BITS = 0o077;

/** Why a key file could not be used. */
export class KeyFilePermissionError extends Error {
  readonly code = "ERR_KEY_FILE_PERMISSIONS";
  /** What is wrong and what to do, without the path. */
  readonly reason: string;
  constructor(
    readonly path: string,
    readonly mode: number,
  ) {
    const reason = `readable or writable by others (mode ${(mode & 0o777).toString(8).padStart(4, "0")}): run chmod 600 ${path}`;
    super(`key file ${path} is ${reason}`);
    this.reason = reason;
    this.name = "KeyFilePermissionError";
  }
}

/**
 * Reads a secret file; throws ENOENT as fs does when it is missing, and `KeyFilePermissionError`
 * when group or others have any access to it.
 */
export async function readKeyFile(path: string): Promise<Buffer> {
  const info = await stat(path);
  if ((info.mode & SHARED_BITS) !== 0) throw new KeyFilePermissionError(path, info.mode);
  return readFile(path);
}

/**
 * Creates `path` with `bytes` (mode 0600), durably: file and directory fsynced before it resolves.
 * Fails with EEXIST, leaving the existing file as it was, when `path` exists.
 */
export async function createKeyFile(path: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const fh = await open(tmp, "wx", 0o600);
  try {
    await fh.chmod(0o600); // whatever the umask
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, path);
  } finally {
    await unlink(tmp);
  }
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
