/**
 * Secret files (peer.key, secret.key): created once, mode 0600 whatever the umask, never over an
 * existing file, no temporary file left behind, and refused with a chmod hint when others can
 * read them. (That the file and its directory are fsynced is not observable without cutting power.)
 */
import assert from "node:assert/strict";
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { InvalidKeyFileError, loadOrCreatePrivateKey, savePrivateKey } from "../../../agents/p2p/index.js";
import { loadOrCreateSecret } from "../../../agents/roles/client/client.js";
import { createKeyFile, KeyFilePermissionError, readKeyFile } from "../../../agents/store/key-file.js";

describe("secret key files", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "muri-key-file-"));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it("creates a file 0600 even under a permissive umask, in a new directory, leaving no temporary file", async () => {
    const old = process.umask(0o000);
    try {
      const path = join(dir, "a", "b", "k");
      await createKeyFile(path, Buffer.from("secret"));
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      assert.equal((await readKeyFile(path)).toString(), "secret");
      assert.deepEqual(await readdir(join(dir, "a", "b")), ["k"]);
    } finally {
      process.umask(old);
    }
  });

  it("never replaces an existing file", async () => {
    const path = join(dir, "existing");
    await createKeyFile(path, Buffer.from("first"));
    await assert.rejects(createKeyFile(path, Buffer.from("second")), (err: NodeJS.ErrnoException) => err.code === "EEXIST");
    assert.equal((await readFile(path)).toString(), "first");
    assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith("existing")), ["existing"], "no temporary file left");
    await assert.rejects(savePrivateKey(path, await generateKeyPair("Ed25519")), (err: NodeJS.ErrnoException) => err.code === "EEXIST");
  });

  it("refuses a key file group or others can read, naming the fix", async () => {
    const path = join(dir, "open");
    await writeFile(path, "x", { mode: 0o644 });
    await chmod(path, 0o644);
    await assert.rejects(readKeyFile(path), (err: unknown) => err instanceof KeyFilePermissionError && err.message === `key file ${path} is readable or writable by others (mode 0644): run chmod 600 ${path}`);

    const peer = join(dir, "peer.key");
    await loadOrCreatePrivateKey(peer);
    await chmod(peer, 0o640);
    await assert.rejects(loadOrCreatePrivateKey(peer), (err: unknown) => err instanceof InvalidKeyFileError && /\(mode 0640\): run chmod 600 /.test(err.message));

    const secretPath = join(dir, "secret.key");
    const secret = await loadOrCreateSecret(secretPath);
    assert.equal(secret.length, 32);
    assert.equal((await stat(secretPath)).mode & 0o777, 0o600);
    assert.deepEqual(await loadOrCreateSecret(secretPath), secret, "the same secret on every load");
    await chmod(secretPath, 0o604);
    await assert.rejects(loadOrCreateSecret(secretPath), KeyFilePermissionError);
    await chmod(secretPath, 0o600);
    assert.deepEqual(await loadOrCreateSecret(secretPath), secret, "usable again once fixed, and never replaced");
  });
});
