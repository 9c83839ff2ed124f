import assert from "node:assert/strict";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { generateKeyPair } from "@libp2p/crypto/keys";
import {
  InvalidKeyFileError,
  createP2PNode,
  loadOrCreatePrivateKey,
  loadPrivateKey,
  savePrivateKey,
} from "../../../agents/p2p/index.js";
import { MemoryFragmentStore } from "./fixtures.js";

describe("peer key file", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "muri-p2p-keys-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("creates a key once (mode 0600) and gives the node the same peer id on every start", async () => {
    const path = join(dir, "node", "peer.key");
    const first = await loadOrCreatePrivateKey(path);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const second = await loadOrCreatePrivateKey(path);
    assert.ok(first.equals(second));

    const store = new MemoryFragmentStore();
    const a = await createP2PNode({ privateKey: first, source: store, sink: store });
    const b = await createP2PNode({ privateKey: await loadPrivateKey(path), source: store, sink: store });
    assert.ok(a.peerId.equals(b.peerId));
  });

  it("round-trips a saved key", async () => {
    const key = await generateKeyPair("Ed25519");
    const path = join(dir, "saved.key");
    await savePrivateKey(path, key);
    assert.ok((await loadPrivateKey(path)).equals(key));
  });

  it("refuses a file that is not a libp2p Ed25519 key, and reports a missing one", async () => {
    const garbage = join(dir, "garbage.key");
    await writeFile(garbage, "not a key", { mode: 0o600 });
    await assert.rejects(loadOrCreatePrivateKey(garbage), (err: unknown) => err instanceof InvalidKeyFileError && err.context.reason === "not a libp2p private key");
    await assert.rejects(loadPrivateKey(join(dir, "missing.key")), (err: unknown) => err instanceof InvalidKeyFileError && err.context.reason === "file not found");

    const secp = join(dir, "secp.key");
    await savePrivateKey(secp, (await generateKeyPair("secp256k1")) as never);
    await assert.rejects(loadPrivateKey(secp), /expected Ed25519/);
  });
});
