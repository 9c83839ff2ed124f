/**
 * Who may read and search a Magu (issue 21), on `hardhat node` with three node processes and the
 * real `muri` CLI:
 * - a private vector Magu: a stranger is refused its vector index document, every fragment on every
 *   holder and every search, each with an error naming the missing grant; its owner is served;
 * - `muri magu grant --to ACCOUNT`: the stranger, with the token, reads and searches; after
 *   `muri magu revoke` it is refused again (the members follow GrantRevoked); a grant that expires
 *   stops working at its expiry;
 * - a private blob Magu: its manifest and shards are refused to the stranger, its owner's get works;
 * - `muri share CID --to`: a stranger with a read grant alone cannot open the owner's file; with the
 *   share token (its public key from `muri account`; an address is looked up in its transactions)
 *   it gets the file byte for byte; another account holding the token is refused; `muri magu
 *   revoke` ends the stranger's read access;
 * - `muri serve` (issue 18): PUT a body, GET it whole, by ranges and HEAD, its status, over HTTP
 *   with the bearer token; problem+json for a missing token, bad parameters, a bad or unknown CID,
 *   an unsatisfiable range; the OpenAPI document at /v1/api; a vector Magu created, filled (JSON
 *   rows with payloads under `Prefer: respond-async`, its operation polled to done, then a .npy
 *   body), searched (one query and a batch equal to a brute-force search, payloads with the hits),
 *   a vector deleted, an on-chain task submitted; malformed JSON, a wrong dimension and an unknown
 *   Magu refused with nothing committed; every documented route answers and the JSON answers match
 *   their documented schemas; another account's daemon is refused the owner's private Magu (403);
 *   a put under `Prefer: respond-async` polled while it runs: its progress (bytes encoded, fragments
 *   pushed, acknowledgements) only grows and ends at the totals; a body cut before its
 *   Content-Length stores nothing and creates no Magu; a daemon started with `--max-body` and
 *   `--disk-reserve` answers 413 to a longer body and 507 to one it would have to spool or unpack
 *   past the reserve (a file, a directory's tar, a .npy of vectors), keeping nothing; 20 concurrent clients (4 putting small files
 *   into one Magu, one chunked; all reading whole and by ranges; 8 searching), every answer checked;
 * - the SDK (agents/sdk): its committed types equal what the generator writes from the document a
 *   daemon serves; MuriApiError carries the problem's fields; a Node file stream of known size put
 *   (encoded as it arrives) as an operation polled to its result, streamed back whole and by a range;
 *   a directory put as a tar body, listed, one file of it read by its path (and refusals: not a
 *   tar, a directory read as a file, an unknown path, a file listed); the LangChain.js store
 *   created with fromTexts over a deterministic embedding answers what a brute-force search over the
 *   same embeddings answers (order, texts, metadata, scores), and a delete by ids takes hits out;
 * - `muri magu visibility ID public`: anyone is served;
 * - paid reads (issue 15.1): `muri magu read-price` on the private blob Magu; the owner's `muri get`
 *   without a deposit is refused with ERR_READ_PAYMENT naming the deposit, and nothing is taken; after
 *   `muri magu deposit` the get pays per fragment, the serving members redeem the read vouchers on
 *   chain (ReadSettled, listing every fragment read; `readEarned`, their balances rise), the deposit
 *   paid exactly what the get reports, and `muri status` shows each node's read earnings and the
 *   per-fragment bounded multipliers;
 * - paid searches: `muri magu search-price`, `muri magu deposit`, searches with vouchers, the
 *   members settle them on chain (each paid exactly what it answered), a searcher without a
 *   deposit is refused, and `muri magu withdraw-deposit` returns the rest after the delay.
 */
import assert from "node:assert/strict";
import { createECDH, createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { request as httpRequest } from "node:http";
import { execFileSync } from "node:child_process";
import { mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseEventLogs, type Address, type Hex } from "viem";
import { CID } from "multiformats/cid";
import { fragmentCid } from "../../../agents/data/cid.js";
import { maguAccessAbi, type MuriContracts, type MuriPublicClient, type TypedSigner } from "../../../agents/chain/index.js";
import { writeNpy } from "../../../agents/data/vector-files.js";
import { RemoteNotFoundError, RemoteRefusedError, type P2PNode } from "../../../agents/p2p/index.js";
import { ClientAccess } from "../../../agents/roles/client/access.js";
import { createVectorClient, type VectorClient } from "../../../agents/roles/client/vector-client.js";
import { createClientNode, registeredPeer } from "../../../agents/roles/shared/peers.js";
import { gaussianMixture } from "../index/fixtures.js";
import { muri, startMuri } from "../cli/run-muri.js";
import { randomFile, sha256File, startClient, startNetwork, tearDown, waitFor, type Network } from "./e2e-helpers.js";
import type { StorageClient } from "../../../agents/roles/client/client.js";
import { signer } from "../chain/harness.js";
import { Document } from "@langchain/core/documents";
import { Embeddings } from "@langchain/core/embeddings";
import { MuriApiError, MuriClient, type PutResult } from "../../../agents/sdk/client.js";
import { MuriVectorStore } from "../../../agents/sdk/langchain.js";
import { SDK_TYPES_FILE, sdkTypes } from "../../../scripts/gen-sdk-types.js";

/** A deterministic embedding (the test's input): `dim` numbers in [-1, 1) from the text's SHA-256. */
class HashEmbeddings extends Embeddings {
  constructor(private readonly dim: number) {
    super({});
  }
  embedQuery(text: string): Promise<number[]> {
    const digest = createHash("sha256").update(text).digest();
    return Promise.resolve(Array.from({ length: this.dim }, (_, i) => digest.readInt16BE(2 * i) / 32768));
  }
  embedDocuments(texts: string[]): Promise<number[][]> {
    return Promise.all(texts.map((t) => this.embedQuery(t)));
  }
}

/** The spare Magus' files (client-record.ts `SpareMagu`) in a client directory, over every network. */
async function spareFiles(clientDir: string): Promise<string[]> {
  const networks = await readdir(join(clientDir, "networks")).catch(() => [] as string[]);
  const found = await Promise.all(networks.map(async (n) => (await readdir(join(clientDir, "networks", n, "spares")).catch(() => [] as string[])).filter((f) => f.endsWith(".json")).map((f) => join(clientDir, "networks", n, "spares", f))));
  return found.flat();
}

const NODES = 3;
const OWNER = NODES + 1;
const STRANGER = NODES + 2;
const BROKE = NODES + 3;
const DIM = 8;
const E18 = 10n ** 18n;

describe("access: private Magus, grants, revocation, expiry, public Magus, paid reads and paid searches", { timeout: 720_000 }, () => {
  let net: Network;
  let owner: VectorClient;
  let blobOwner: StorageClient;
  let maguId: bigint;
  let fragments: CID[];
  let indexCid: CID;
  let ownerArgs: string[];
  let strangerArgs: string[];
  let strangerNode: P2PNode;
  let holders: Array<{ address: Address; peer: Awaited<ReturnType<typeof registeredPeer>> }>;
  const query = Array.from({ length: DIM }, (_, i) => (i % 3) / 4);
  /** Which (holder, CID) fetches the stranger was refused: exactly what each holder keeps. */
  let refusedAt: boolean[];
  /** The private blob file of "a private blob Magu" (shared in "muri share"). */
  let blob: { maguId: bigint; cid: string; sha256: string };
  const started: VectorClient[] = [];
  const chainNow = async (): Promise<number> => Number((await net.publicClient.getBlock({ blockTag: "latest" })).timestamp);
  const strangerSign: TypedSigner = (typed) => {
    const s = signer(net.chain.rpcUrl, net.deployment, net.chain.keys[STRANGER]! as Hex);
    return s.walletClient.signTypedData({ account: s.account, ...typed } as never);
  };

  const vectorClient = async (key: number, dir: string, grants: string[] = []): Promise<VectorClient> => {
    const c = createVectorClient({ dir: join(net.dir, dir), deployment: net.deployment, rpcUrl: net.chain.rpcUrl, privateKey: net.chain.keys[key]! as Hex, grants });
    await c.start();
    started.push(c);
    return c;
  };

  /** How each holder answers the stranger's fetch of each fragment and of the index document. */
  const strangerFetches = async (): Promise<Array<"ok" | string>> => {
    const out: Array<"ok" | string> = [];
    for (const h of holders) {
      for (const cid of [indexCid, ...fragments]) {
        try {
          await strangerNode.fetchFragment(h.peer, cid, { timeoutMs: 10_000 });
          out.push("ok");
        } catch (err) {
          if (err instanceof RemoteNotFoundError) out.push("not found");
          else out.push(err instanceof RemoteRefusedError ? err.context.reason : `other: ${(err as Error).message}`);
        }
      }
    }
    return out;
  };

  before(async () => {
    net = await startNetwork({ prefix: "muri-access-", nodes: NODES, fund: [OWNER, STRANGER, BROKE], nodeArgs: () => ["--settle-ms", "1000"] });
    ownerArgs = ["--rpc", net.chain.rpcUrl, "--deployment", net.deploymentFile, "--key", net.chain.keys[OWNER]!];
    strangerArgs = ["--rpc", net.chain.rpcUrl, "--deployment", net.deploymentFile, "--key", net.chain.keys[STRANGER]!];
    owner = await vectorClient(OWNER, "owner");
    const created = await muri(["magu", "create", "--kind", "vector", "--dim", String(DIM), "--replication", "2", "--members", String(NODES), "--json", ...ownerArgs]);
    assert.equal(created.code, 0, created.stderr);
    const json = JSON.parse(created.stdout) as { id: string; visibility: string };
    maguId = BigInt(json.id);
    assert.equal(json.visibility, "private", "a Magu is private by default");
    await writeNpy(join(net.dir, "v.npy"), gaussianMixture({ count: 400, dim: DIM, seed: 3 }), DIM);
    const added = await owner.add(maguId, join(net.dir, "v.npy"), { fragmentSize: 1024 });
    assert.ok(added.fragmentCount >= 4, `${added.fragmentCount} fragments`);
    const doc = await owner.fetchManifest(maguId);
    assert.ok(doc !== undefined);
    fragments = doc.manifest.fragments.map((f) => f.cid);
    indexCid = doc.cid;
    strangerNode = await createClientNode(join(net.dir, "stranger-raw"));
    await strangerNode.start();
    const info = await net.read.maguRegistry.read.maguInfo([maguId]);
    holders = await Promise.all(info.members.map(async (address) => ({ address, peer: await registeredPeer(net.read, strangerNode, address) })));
    // Every holder indexed its replicas before the refusals below are read as refusals.
    await waitFor("the owner's search covers every fragment", 60_000, async () => {
      const r = await owner.search(maguId, query, 5, { exact: true });
      return r.uncovered.length === 0 && r.failed === 0 ? r : undefined;
    }, 500);
  });

  after(async () => {
    for (const c of started) await c.stop().catch(() => undefined);
    await strangerNode?.stop();
    await tearDown("node", net?.nodes ?? [], blobOwner);
  });

  test("a stranger is refused the index document, every fragment on every holder and every search", async () => {
    const answers = await strangerFetches();
    assert.equal(answers.length, holders.length * (fragments.length + 1));
    // A holder refuses what it keeps (r = 2 replicas of every fragment, and the index document on
    // every member), and has nothing else to give.
    for (const a of answers) assert.match(a, /^access denied: Magu \d+ is private: this peer is not a member, a validator or the holder of a grant; ask its owner for `muri magu grant|^not found$/, a);
    refusedAt = answers.map((a) => a !== "not found");
    assert.equal(refusedAt.filter(Boolean).length, fragments.length * 2 + holders.length, "every replica and every copy of the index document was refused");
    const stranger = await vectorClient(STRANGER, "stranger");
    await assert.rejects(stranger.search(maguId, query, 5), (err: Error & { code?: string }) => err.code === "ERR_ACCESS_DENIED" && /is private/.test(err.message));
    await assert.rejects(stranger.fetchManifest(maguId), /is private/);
    const cli = await muri(["search", "--magu", String(maguId), "--vector", JSON.stringify(query), "-k", "3", ...strangerArgs, "--client-dir", join(net.dir, "stranger-cli")]);
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr.trim(), /is private: .*muri magu grant/);
    assert.doesNotMatch(cli.stderr, /\n\s+at /, "no stack trace");
    // The owner is served (a session grant to its own peer).
    const mine = await owner.search(maguId, query, 5, { exact: true });
    assert.equal(mine.hits.length, 5);
    assert.equal(mine.failed, 0);
  });

  test("a grant to the stranger's account lets it read and search; a revocation ends it at once", async () => {
    const stranger = signer(net.chain.rpcUrl, net.deployment, net.chain.keys[STRANGER]! as Hex).account.address;
    const granted = await muri(["magu", "grant", String(maguId), "--to", stranger, "--rights", "read,search", "--expires", "1h", "--json", ...ownerArgs]);
    assert.equal(granted.code, 0, granted.stderr);
    const token = (JSON.parse(granted.stdout) as { token: string }).token;
    const withGrant = await vectorClient(STRANGER, "stranger-granted", [token]);
    const exact = await owner.search(maguId, query, 5, { exact: true });
    const theirs = await withGrant.search(maguId, query, 5, { exact: true });
    assert.deepEqual(theirs.hits.map((h) => h.id), exact.hits.map((h) => h.id), "the grantee gets the owner's answer");
    assert.ok((await withGrant.fetchManifest(maguId)) !== undefined);
    const cli = await muri(["search", "--magu", String(maguId), "--vector", JSON.stringify(query), "-k", "3", "--exact", "--grant", token, "--json", ...strangerArgs, "--client-dir", join(net.dir, "stranger-cli")]);
    assert.equal(cli.code, 0, cli.stderr);
    // Raw reads with the same grant, presented by the client's access module.
    const access = new ClientAccess(
      {
        deployment: net.deployment,
        account: stranger,
        sign: strangerSign,
        grants: [token],
      },
      { contracts: net.read as MuriContracts<MuriPublicClient>, p2p: strangerNode, chainNow },
    );
    await access.ensureAll(holders.map((h) => h.peer), maguId);
    const served = await strangerFetches();
    assert.deepEqual(served.map((a) => a === "ok"), refusedAt, `served exactly what was refused before: ${served.join("; ")}`);

    const revoked = await muri(["magu", "revoke", String(maguId), "--to", stranger, "--json", ...ownerArgs]);
    assert.equal(revoked.code, 0, revoked.stderr);
    // Members follow GrantRevoked: refused within a few seconds, not only at the 15-s recheck.
    const t0 = performance.now();
    await waitFor("every holder refuses the revoked grantee", 10_000, async () => (await strangerFetches()).every((a) => /access denied/.test(a) || a === "not found") || undefined, 250);
    console.log(`# revocation took effect on every holder in ${Math.round(performance.now() - t0)} ms`);
    await assert.rejects(withGrant.search(maguId, query, 5), (err: Error & { code?: string }) => err.code === "ERR_ACCESS_DENIED");
    // The revoked token cannot be presented again.
    const again = new ClientAccess({ deployment: net.deployment, account: stranger, sign: strangerSign, grants: [token] }, { contracts: net.read as MuriContracts<MuriPublicClient>, p2p: strangerNode, chainNow });
    await assert.rejects(again.ensureAll(holders.map((h) => h.peer), maguId), /refused access.*revoked/);
  });

  test("a grant to a peer stops at its expiry", async () => {
    const granted = await muri(["magu", "grant", String(maguId), "--to", strangerNode.peerId.toString(), "--rights", "read", "--expires", "15s", "--json", ...ownerArgs]);
    assert.equal(granted.code, 0, granted.stderr);
    const { token, expires } = JSON.parse(granted.stdout) as { token: string; expires: string };
    const access = new ClientAccess({ deployment: net.deployment, account: "0x0000000000000000000000000000000000000001", sign: async () => "0x" as Hex, grants: [token] }, { contracts: net.read as MuriContracts<MuriPublicClient>, p2p: strangerNode, chainNow });
    await access.ensureAll(holders.map((h) => h.peer), maguId);
    const before = await strangerFetches();
    assert.ok(before.some((a) => a === "ok"), before.join("; "));
    // Expiry is chain time: let the chain pass it (automine: a block per transaction, so mine one).
    await waitFor("the grant's expiry on chain", 30_000, async () => {
      await net.publicClient.request({ method: "evm_mine" as never, params: [] as never });
      return (await chainNow()) > Number(expires) + 3 || undefined;
    }, 1000);
    const afterExpiry = await strangerFetches();
    // The first read after the expiry is told "its grant expired"; the grant is then dropped.
    for (const a of afterExpiry) assert.match(a, /^access denied: Magu \d+ is private: (its grant expired|this peer is not a member)|^not found$/, a);
    assert.deepEqual(afterExpiry.map((a) => a !== "not found"), refusedAt, "everything held is refused again");
  });

  test("a private blob Magu: the stranger is refused its manifest and shards; its owner gets the file", async () => {
    blobOwner = await startClient(net, OWNER);
    const { path, sha256 } = await randomFile(net.dir, "blob.bin", 300_000);
    const put = await blobOwner.put(path, { k: 2, m: 1, members: NODES });
    const info = await net.read.maguRegistry.read.maguInfo([put.maguId]);
    const peers = await Promise.all(info.members.map((a) => registeredPeer(net.read, strangerNode, a)));
    for (const peer of peers) {
      await assert.rejects(strangerNode.fetchFragment(peer, put.manifestCid, { timeoutMs: 10_000 }), (err: Error) => err instanceof RemoteRefusedError && /access denied: Magu \d+ is private/.test(err.message));
    }
    const out = join(net.dir, "blob.out");
    await blobOwner.get({ maguId: put.maguId, manifestCid: put.manifestCid }, out);
    assert.equal(await sha256File(out), sha256, "the owner's get is byte for byte");
    blob = { maguId: put.maguId, cid: put.manifestCid.toString(), sha256 };
  });

  test("muri share: the stranger gets the owner's private file with the token alone; no other account opens it; a revocation ends the read access", async () => {
    // The owner's CLI uses the client directory (its secret) the put used.
    await blobOwner.stop();
    const ownerCli = [...ownerArgs, "--client-dir", join(net.dir, `client-${OWNER}`)];
    const strangerCli = [...strangerArgs, "--client-dir", join(net.dir, "stranger-cli")];
    const stranger = signer(net.chain.rpcUrl, net.deployment, net.chain.keys[STRANGER]! as Hex).account.address;
    // Without a share, a read grant gives the stranger ciphertext it cannot open.
    const granted = await muri(["magu", "grant", String(blob.maguId), "--to", stranger, "--rights", "read", "--json", ...ownerArgs]);
    assert.equal(granted.code, 0, granted.stderr);
    const grantOnly = await muri(["get", blob.cid, "--magu", String(blob.maguId), "-o", join(net.dir, "grant-only.out"), "--grant", (JSON.parse(granted.stdout) as { token: string }).token, ...strangerCli]);
    assert.notEqual(grantOnly.code, 0, "a read grant alone does not open the file");
    assert.match(grantOnly.stderr, /does not open under this client.s secret.*belongs to another client/);

    // An address that never sent a transaction has no public key on chain: the error says what to pass.
    const noKey = await muri(["share", blob.cid, "--to", stranger, ...ownerCli]);
    assert.notEqual(noKey.code, 0);
    assert.match(noKey.stderr, new RegExp(`account ${stranger} sent no transaction .*muri account prints it`));
    // A node's address has sent transactions: its key is read back from one of them.
    const node = net.nodes[0]!;
    const toNode = await muri(["share", blob.cid, "--to", node.address, "--json", ...ownerCli]);
    assert.equal(toNode.code, 0, toNode.stderr);
    const nodeKey = createECDH("secp256k1");
    nodeKey.setPrivateKey(Buffer.from(net.nodeKey(0).slice(2), "hex"));
    assert.equal((JSON.parse(toNode.stdout) as { publicKey: string }).publicKey, `0x${nodeKey.getPublicKey(undefined, "compressed").toString("hex")}`, "the key recovered from the node's transactions");

    // The stranger's public key (muri account), the share, and the stranger's get with the token alone.
    const account = await muri(["account", "--json", ...strangerArgs]);
    assert.equal(account.code, 0, account.stderr);
    const { publicKey } = JSON.parse(account.stdout) as { account: string; publicKey: string };
    const shared = await muri(["share", blob.cid, "--to", publicKey, "--expires", "1h", "--json", ...ownerCli]);
    assert.equal(shared.code, 0, shared.stderr);
    const { token, to } = JSON.parse(shared.stdout) as { token: string; to: string };
    assert.equal(to, stranger);
    const out = join(net.dir, "shared.out");
    const got = await muri(["get", token, "-o", out, ...strangerCli]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(await sha256File(out), blob.sha256, "the stranger's get with the token is byte for byte");

    // Another account holding the token: refused before anything is fetched, naming the account it is for.
    const other = await muri(["get", token, "-o", join(net.dir, "other.out"), "--key", net.chain.keys[BROKE]!, "--rpc", net.chain.rpcUrl, "--deployment", net.deploymentFile, "--client-dir", join(net.dir, "broke-cli")]);
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, new RegExp(`made for account ${stranger}`));

    // The owner ends the stranger's read access: the members refuse the token's grant from then on.
    const revoked = await muri(["magu", "revoke", String(blob.maguId), "--to", stranger, ...ownerArgs]);
    assert.equal(revoked.code, 0, revoked.stderr);
    await waitFor("the members refuse the revoked share", 30_000, async () => {
      const again = await muri(["get", token, "-o", join(net.dir, "revoked.out"), ...strangerCli]);
      return again.code !== 0 && /access denied|revoked/i.test(again.stderr) ? again : undefined;
    }, 1000);
  });

  test("muri serve: PUT and GET over HTTP (ranges, HEAD, status), vector Magus (create, add, search, delete, tasks, operations), the token, problem+json errors, the OpenAPI document", async () => {
    const ownerCli = [...ownerArgs, "--client-dir", join(net.dir, `client-${OWNER}`)];
    // A read cache of 1 MiB: the 200 kB file below is kept, the 6 MiB one is only streamed.
    const serve = await startMuri(["serve", "--listen", "127.0.0.1:0", "--auth", "--cache", "1MiB", ...ownerCli]);
    try {
      const url = serve.ready.url as string;
      const token = (await readFile(serve.ready.tokenFile as string, "utf8")).trim();
      const auth = { authorization: `Bearer ${token}` };
      const problem = async (res: Response, status: number, code: string, field?: string): Promise<void> => {
        assert.equal(res.status, status);
        assert.equal(res.headers.get("content-type"), "application/problem+json");
        const body = (await res.json()) as { status: number; code: string; title: string; detail: string; field?: string };
        assert.equal(body.status, status);
        assert.equal(body.code, code, body.detail);
        assert.ok(body.detail.length > 0 && !/\n\s+at /.test(body.detail), "a detail, no stack trace");
        if (field !== undefined) assert.equal(body.field, field);
      };

      for (const dir of ["uploads", "cache"]) assert.equal((await stat(join(net.dir, `client-${OWNER}`, "http", dir))).mode & 0o777, 0o700, `http/${dir}: plaintext, this user's only`);
      const spec = (await (await fetch(`${url}/v1/api`)).json()) as { openapi: string; paths: Record<string, unknown> };
      assert.equal(spec.openapi, "3.1.0");
      assert.deepEqual(Object.keys(spec.paths).sort(), [
        "/v1/api",
        "/v1/blobs",
        "/v1/blobs/{cid}",
        "/v1/blobs/{cid}/ls",
        "/v1/blobs/{cid}/status",
        "/v1/directories",
        "/v1/magus",
        "/v1/magus/{id}/search",
        "/v1/magus/{id}/tasks",
        "/v1/magus/{id}/vectors",
        "/v1/magus/{id}/vectors/delete",
        "/v1/operations/{id}",
      ]);
      const body = randomBytes(200_000);
      await problem(await fetch(`${url}/v1/blobs?k=2&m=1&members=3`, { method: "PUT", body }), 401, "ERR_UNAUTHORIZED");
      await problem(await fetch(`${url}/v1/blobs?k=2&m=1&members=3`, { method: "PUT", body, headers: { authorization: "Bearer wrong" } }), 401, "ERR_UNAUTHORIZED");
      await problem(await fetch(`${url}/v1/blobs?k=0`, { method: "PUT", body, headers: auth }), 400, "ERR_BAD_PARAMETER", "k");
      await problem(await fetch(`${url}/v1/blobs?magu=${maguId}`, { method: "PUT", body, headers: auth }), 409, "ERR_MAGU_KIND");

      const put = await fetch(`${url}/v1/blobs?k=2&m=1&members=3`, { method: "PUT", body, headers: auth });
      assert.equal(put.status, 201, await put.clone().text());
      const stored = (await put.json()) as { maguId: string; manifestCid: string; fileSize: number; members: string[] };
      assert.equal(stored.fileSize, body.length);
      const blobUrl = `${url}/v1/blobs/${stored.manifestCid}`;
      // The new Magu was paid for this body's shards only: one more body is more than it holds.
      await problem(await fetch(`${url}/v1/blobs?magu=${stored.maguId}`, { method: "PUT", body, headers: auth }), 413, "ERR_MAGU_FULL");

      // An asynchronous put: its operation, polled while it runs, reports the client's own progress
      // events (bytes encoded, fragments pushed, acknowledgements), each counter only growing.
      const big = randomBytes(6 * 1024 * 1024 + 12_345);
      // The new Magu is created while the body arrives (form=early, the default), which an append cannot ask for.
      await problem(await fetch(`${url}/v1/blobs?magu=${stored.maguId}&form=early`, { method: "PUT", body, headers: auth }), 400, "ERR_BAD_PARAMETER", "form");
      const asyncPut = await fetch(`${url}/v1/blobs?k=2&m=1&members=3`, { method: "PUT", body: big, headers: { ...auth, prefer: "respond-async" } });
      assert.equal(asyncPut.status, 202, await asyncPut.clone().text());
      const putOp = (await asyncPut.json()) as { id: string };
      type Counters = { bytesTotal: number; bytesEncoded: number; fragmentsTotal: number; fragmentsPushed: number; acksTotal: number; acksReceived: number };
      const seen: Array<Partial<Counters> & { phase: string }> = [];
      const putDone = await waitFor("the put operation is done", 120_000, async () => {
        const view = (await (await fetch(`${url}/v1/operations/${putOp.id}`, { headers: auth })).json()) as { state: string; progress: Partial<Counters> & { phase: string }; result?: { shards: number; fileSize: number; manifestCid: string }; problem?: unknown };
        if (view.state === "running") seen.push(view.progress);
        return view.state !== "running" ? view : undefined;
      }, 20);
      assert.equal(putDone.state, "done", JSON.stringify(putDone.problem));
      const counters = ["bytesEncoded", "fragmentsPushed", "acksReceived"] as const;
      for (let i = 1; i < seen.length; i++) {
        for (const c of counters) assert.ok((seen[i]![c] ?? 0) >= (seen[i - 1]![c] ?? 0), `${c} never goes back: ${JSON.stringify(seen[i - 1])} then ${JSON.stringify(seen[i])}`);
      }
      const distinct = new Set(seen.map((p) => JSON.stringify(p)));
      assert.ok(distinct.size >= 2, `progress changed while the put ran: ${[...distinct].join(" | ")}`);
      assert.ok(seen.some((p) => p.fragmentsTotal === putDone.result!.shards && p.bytesTotal === big.length), "totals known while it runs");
      const final = putDone.progress as Counters & { phase: string };
      assert.equal(putDone.result!.fileSize, big.length);
      assert.deepEqual([final.phase, final.bytesEncoded, final.fragmentsPushed, final.fragmentsTotal, final.acksReceived, final.acksTotal], ["done", big.length, putDone.result!.shards, putDone.result!.shards, 3, 3]);
      console.log(`# async put: ${distinct.size} distinct progress snapshots while running`);

      // Ranges first: only the fragments holding them are fetched, the file is not (nothing in the cache).
      const part = await fetch(blobUrl, { headers: { ...auth, range: "bytes=1000-1999" } });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get("content-range"), `bytes 1000-1999/${body.length}`);
      assert.ok(Buffer.from(await part.arrayBuffer()).equals(body.subarray(1000, 2000)));
      const tail = await fetch(blobUrl, { headers: { ...auth, range: "bytes=-100" } });
      assert.ok(Buffer.from(await tail.arrayBuffer()).equals(body.subarray(body.length - 100)));
      assert.deepEqual(await readdir(join(net.dir, `client-${OWNER}`, "http", "cache")), [], "ranges did not fetch the whole file");
      const whole = await fetch(blobUrl, { headers: auth });
      assert.equal(whole.status, 200);
      assert.equal(whole.headers.get("content-length"), String(body.length));
      assert.ok(Buffer.from(await whole.arrayBuffer()).equals(body), "GET is byte for byte");
      const cachedRange = await fetch(blobUrl, { headers: { ...auth, range: "bytes=5-9" } });
      assert.ok(Buffer.from(await cachedRange.arrayBuffer()).equals(body.subarray(5, 10)), "a range of the fetched file, from the cache");
      const cacheDir = join(net.dir, `client-${OWNER}`, "http", "cache");
      assert.deepEqual(await readdir(cacheDir), [stored.manifestCid], "the whole file read is kept");
      // Larger than the 1 MiB cache: streamed whole, twice, and never written to the cache.
      for (let i = 0; i < 2; i++) {
        const large = await fetch(`${url}/v1/blobs/${putDone.result!.manifestCid}`, { headers: auth });
        assert.equal(large.headers.get("content-length"), String(big.length));
        assert.ok(Buffer.from(await large.arrayBuffer()).equals(big), "a file larger than the cache, byte for byte");
      }
      assert.deepEqual(await readdir(cacheDir), [stored.manifestCid], "nothing of the larger file kept");
      await problem(await fetch(blobUrl, { headers: { ...auth, range: `bytes=${body.length}-` } }), 416, "ERR_BAD_RANGE", "Range");
      const head = await fetch(blobUrl, { method: "HEAD", headers: auth });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("content-length"), String(body.length));
      assert.equal(head.headers.get("x-muri-magu"), stored.maguId);

      const status = (await (await fetch(`${blobUrl}/status`, { headers: auth })).json()) as { maguId: string; k: number; m: number; members: Array<{ reachable: boolean }>; stripes: Array<{ available: number; readable: boolean }> };
      assert.equal(status.maguId, stored.maguId);
      assert.deepEqual([status.k, status.m], [2, 1]);
      assert.equal(status.members.filter((x) => x.reachable).length, 3, "every member served the manifest");
      assert.ok(status.stripes.length >= 1 && status.stripes.every((x) => x.available === 3 && x.readable));

      await problem(await fetch(`${url}/v1/blobs/not-a-cid`, { headers: auth }), 400, "ERR_BAD_CID", "cid");
      await problem(await fetch(`${url}/v1/blobs/${fragmentCid(randomBytes(64)).toString()}?magu=${stored.maguId}`, { headers: auth }), 404, "ERR_MANIFEST_NOT_FOUND");
      await problem(await fetch(`${url}/v1/nothing`, { headers: auth }), 404, "ERR_NO_ROUTE");

      // Vector Magus over HTTP (http-vectors.ts).
      const t0 = performance.now();
      const doc = spec as unknown as OpenApiDoc;
      /** `res`'s JSON, checked against the schema the document gives its route and status. */
      const documented = async <T>(res: Response, route: string, method: string, status: number): Promise<T> => {
        assert.equal(res.status, status, await res.clone().text());
        const body = (await res.json()) as T;
        const content = doc.paths[route]![method]!.responses[String(status)]!.content!;
        assert.deepEqual(matchSchema(body, content["application/json"]!.schema, doc), [], `${method} ${route} ${status} as documented`);
        return body;
      };
      const post = (path: string, body: unknown, headers: Record<string, string> = {}) => fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body), headers: { ...auth, "content-type": "application/json", ...headers } });
      const V = 4;
      const made = await documented<{ id: string; kind: string; params: { dimension: number; metric: string }; members: string[]; visibility: string }>(
        await post("/v1/magus", { kind: "vector", dim: V, members: NODES, fragments: 32 }), "/v1/magus", "post", 201);
      assert.deepEqual([made.kind, made.params.dimension, made.params.metric, made.visibility, made.members.length], ["vector", V, "l2", "private", NODES]);
      const vmagu = made.id;
      const rows = gaussianMixture({ count: 200, dim: V, seed: 11 });
      const more = gaussianMixture({ count: 100, dim: V, seed: 12 }).map((x) => x / 2);
      const all = new Float32Array([...rows, ...more]);
      const row = (data: Float32Array, i: number): number[] => Array.from(data.subarray(i * V, (i + 1) * V));
      await problem(await post(`/v1/magus/${vmagu}/vectors`, { vectors: [{ vector: row(rows, 0) }, { vector: row(rows, 1) }, { vector: [1, 2, 3] }] }), 400, "ERR_DIMENSION", "vectors[2].vector");
      const bad = await fetch(`${url}/v1/magus/${vmagu}/vectors`, { method: "POST", body: '{"vectors": [', headers: { ...auth, "content-type": "application/json" } });
      await problem(bad, 400, "ERR_BAD_JSON", "body");
      await problem(await post("/v1/magus/99999/search", { vector: row(rows, 0) }), 404, "ERR_MAGU_UNKNOWN");
      assert.equal((await net.read.maguRegistry.read.maguInfo([BigInt(vmagu)])).fragmentCount, 0, "nothing committed by the refused adds");

      // 202 and an operation, polled to done.
      const rowsBody = { vectors: Array.from({ length: 200 }, (_, i) => ({ vector: row(rows, i), ...(i % 2 === 0 ? { payload: { n: i } } : {}) })) };
      const asked = await post(`/v1/magus/${vmagu}/vectors?fragmentSize=1024`, rowsBody, { prefer: "respond-async" });
      const op = await documented<{ id: string; state: string; kind: string }>(asked, "/v1/magus/{id}/vectors", "post", 202);
      assert.equal(asked.headers.get("location"), `/v1/operations/${op.id}`);
      assert.deepEqual([op.kind, op.state], ["add", "running"]);
      const polled = await waitFor("the add operation is done", 60_000, async () => {
        const view = await documented<{ state: string; result?: { vectors: number; firstRow: number; fragmentCount: number }; problem?: unknown }>(await fetch(`${url}/v1/operations/${op.id}`, { headers: auth }), "/v1/operations/{id}", "get", 200);
        return view.state !== "running" ? view : undefined;
      }, 200);
      assert.equal(polled.state, "done", JSON.stringify(polled.problem));
      assert.deepEqual([polled.result!.vectors, polled.result!.firstRow], [200, 0]);
      assert.ok(polled.result!.fragmentCount >= 3, `${polled.result!.fragmentCount} fragments`);
      // A .npy body: ids continue the Magu's numbering (after the records committed, payload records too).
      await writeNpy(join(net.dir, "more.npy"), more, V);
      const npy = await fetch(`${url}/v1/magus/${vmagu}/vectors?fragmentSize=1024`, { method: "POST", body: await readFile(join(net.dir, "more.npy")), headers: { ...auth, "content-type": "application/x-npy" } });
      const addedNpy = await documented<{ vectors: number; firstRow: number }>(npy, "/v1/magus/{id}/vectors", "post", 201);
      assert.equal(addedNpy.vectors, 100);
      assert.ok(addedNpy.firstRow >= 200, `first row ${addedNpy.firstRow}`);
      const idOf = (i: number): number => (i < 200 ? i : addedNpy.firstRow + i - 200);

      // Search: the exact top-k equals a brute-force search over the same vectors, payloads with the hits.
      const brute = (q: number[], k: number): number[] =>
        Array.from({ length: 300 }, (_, i) => ({ i, d: row(all, i).reduce((s, x, j) => s + (x - q[j]!) ** 2, 0) }))
          .sort((a, b) => a.d - b.d)
          .slice(0, k)
          .map((h) => idOf(h.i));
      const queries = [0.1, 0.2, 0.3].map((e, j) => row(all, 37 + 101 * j).map((x) => x + e));
      type Hits = { results: Array<{ id: string; payload?: { n: number } | null }>; complete: boolean; verified: boolean };
      /** A search's answer once it is 200 (members may still be catching up with the latest batch: 404 until then). */
      const searched = async (body: unknown): Promise<Hits | undefined> => {
        const res = await post(`/v1/magus/${vmagu}/search`, body);
        return res.status === 200 ? documented<Hits>(res, "/v1/magus/{id}/search", "post", 200) : void (await res.body?.cancel());
      };
      const one = await waitFor("every member indexed its fragments", 30_000, async () => {
        const r = await searched({ vector: queries[0], k: 5, exact: true });
        return r?.complete === true && r.results.length === 5 ? r : undefined;
      }, 250);
      assert.ok(one.verified);
      assert.deepEqual(one.results.map((h) => Number(h.id)), brute(queries[0]!, 5));
      for (const h of one.results) assert.deepEqual(h.payload, Number(h.id) < 200 && Number(h.id) % 2 === 0 ? { n: Number(h.id) } : null, `hit ${h.id}'s payload`);
      const batch = await documented<{ queries: Hits[] }>(await post(`/v1/magus/${vmagu}/search`, { vectors: queries, k: 7, exact: true }), "/v1/magus/{id}/search", "post", 200);
      assert.deepEqual(batch.queries.map((q) => q.results.map((h) => Number(h.id))), queries.map((q) => brute(q, 7)));
      await problem(await post(`/v1/magus/${vmagu}/search`, { vector: [1, 2] }), 400, "ERR_DIMENSION", "vector");

      // Delete the best hit: it is gone from the next answer.
      const top = one.results[0]!.id;
      const del = await documented<{ deleted: number }>(await post(`/v1/magus/${vmagu}/vectors/delete`, { ids: [top] }), "/v1/magus/{id}/vectors/delete", "post", 200);
      assert.equal(del.deleted, 1);
      const rest = brute(queries[0]!, 6).filter((id) => String(id) !== top);
      const after = await waitFor("the deleted id is gone from the answer", 30_000, async () => {
        const r = await searched({ vector: queries[0], k: 5, exact: true });
        return r?.complete === true && r.results.every((h) => h.id !== top) ? r : undefined;
      }, 250);
      assert.deepEqual(after.results.map((h) => Number(h.id)), rest);

      // An on-chain task: 202 and an operation at once; the task is on chain.
      const tasksBefore = await net.read.searchMarket.read.taskCount();
      const task = await documented<{ id: string; kind: string }>(await post(`/v1/magus/${vmagu}/tasks`, { vector: queries[1], k: 3, fee: "0.5" }), "/v1/magus/{id}/tasks", "post", 202);
      assert.equal(task.kind, "task");
      await waitFor("the task is submitted on chain", 30_000, async () => ((await net.read.searchMarket.read.taskCount()) > tasksBefore ? true : undefined), 250);

      // Streamed puts: a body cut before its Content-Length stores nothing, and with form=complete
      // creates no Magu (the Magu is created only once the whole body is in); then 20 clients at once: 4 put
      // small files into one blob Magu (one chunked, so spooled) and read them back, 16 read another
      // file whole, by a range and HEAD, 8 of them search: every answer is checked.
      const t2 = performance.now();
      const shared = await documented<{ id: string }>(await post("/v1/magus", { kind: "blob", dataShards: 2, parityShards: 1, members: NODES, fragments: 12 }), "/v1/magus", "post", 201);
      const magusBefore = await net.read.maguRegistry.read.maguCount();
      const cut = (path: string): Promise<void> =>
        new Promise<void>((resolve) => {
          const r = httpRequest(`${url}${path}`, { method: "PUT", headers: { ...auth, "content-length": String(5 * 1024 * 1024) } });
          r.on("error", () => resolve());
          r.write(randomBytes(1024 * 1024), () => {
            r.destroy();
            resolve();
          });
        });
      await cut("/v1/blobs?k=2&m=1&members=3&form=complete");
      await cut(`/v1/blobs?magu=${shared.id}`);
      const CLIENTS = 20;
      const PUTS = 4; // puts into one Magu take turns: 4 of the clients put, all of them read
      const files = Array.from({ length: PUTS }, (_, i) => randomBytes(1_000 + i * 30_001));
      const putFile = async (bytes: Buffer, i: number): Promise<string> => {
        const chunked = i === 0;
        const body = chunked ? new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(bytes), c.close()) }) : bytes;
        const res = await fetch(`${url}/v1/blobs?magu=${shared.id}`, { method: "PUT", body, headers: auth, ...(chunked ? { duplex: "half" } : {}) } as RequestInit);
        assert.equal(res.status, 201, `client ${i}: ${await res.clone().text()}`);
        const put = (await res.json()) as { manifestCid: string; fileSize: number; shards: number; maguId: string };
        assert.deepEqual([put.fileSize, put.shards, put.maguId], [bytes.length, 3, shared.id], `client ${i}'s put`);
        return put.manifestCid;
      };
      const readBack = async (cid: string, bytes: Buffer, i: number): Promise<void> => {
        const got = await fetch(`${url}/v1/blobs/${cid}`, { headers: auth });
        assert.ok(Buffer.from(await got.arrayBuffer()).equals(bytes), `client ${i} read the file back`);
        const from = Math.floor(bytes.length / 3) + i;
        const part = await fetch(`${url}/v1/blobs/${cid}`, { headers: { ...auth, range: `bytes=${from}-${from + 99}` } });
        assert.equal(part.status, 206);
        assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(from, from + 100)), `client ${i}'s range`);
      };
      // Clients 0..3 put a file each and read it back; the others read the first put's body, HEAD it and search.
      const answers = await Promise.all(
        Array.from({ length: CLIENTS }, async (_, i) => {
          if (i < PUTS) {
            const cid = await putFile(files[i]!, i);
            await readBack(cid, files[i]!, i);
            return cid;
          }
          await readBack(stored.manifestCid, body, i);
          const head = await fetch(blobUrl, { method: "HEAD", headers: auth });
          assert.equal(head.headers.get("content-length"), String(body.length), `client ${i}'s HEAD`);
          if (i % 2 === 0) {
            const r = await documented<Hits>(await post(`/v1/magus/${vmagu}/search`, { vector: queries[0], k: 5, exact: true }), "/v1/magus/{id}/search", "post", 200);
            assert.deepEqual(r.results.map((h) => Number(h.id)), rest, `client ${i}'s search`);
          }
          return undefined;
        }),
      );
      assert.equal(new Set(answers.filter((x) => x !== undefined)).size, PUTS, "a manifest per file");
      const sharedInfo = await net.read.maguRegistry.read.maguInfo([BigInt(shared.id)]);
      assert.equal(sharedInfo.fragmentCount, PUTS * 3, "the files' shards and nothing of the cut body");
      assert.equal(await net.read.maguRegistry.read.maguCount(), magusBefore, "the cut put created no Magu");
      // By default (form=early) the Magu is created as the body starts: a cut body leaves it formed,
      // empty and kept as a spare, which the next put of the same size and options fills.
      await cut("/v1/blobs?k=2&m=1&members=3");
      const spares = await waitFor("the cut put's Magu is kept as a spare", 60_000, async () => {
        const found = await spareFiles(join(net.dir, `client-${OWNER}`));
        return found.length > 0 ? found : undefined;
      }, 250);
      const spareId = BigInt(spares[0]!.replace(/^.*\/|\.json$/g, ""));
      const early = await net.read.maguRegistry.read.maguInfo([spareId]);
      assert.deepEqual([spares.length, spareId, early.status, early.fragmentCount], [1, magusBefore + 1n, 2, 0], "one Magu, formed, holding nothing, kept as a spare");
      // Beside it, a spare file of the same shape naming a Magu that holds data (and a lower id, so
      // it is tried first): that one is dropped, and the put fills the real spare.
      const spareShape = JSON.parse(await readFile(spares[0]!, "utf8")) as Record<string, unknown>;
      const falseSpare = spares[0]!.replace(/[0-9]+\.json$/, `${shared.id}.json`);
      await writeFile(falseSpare, JSON.stringify({ ...spareShape, maguId: shared.id }));
      const retried = randomBytes(5 * 1024 * 1024);
      const refill = await fetch(`${url}/v1/blobs?k=2&m=1&members=3`, { method: "PUT", body: retried, headers: auth });
      assert.equal(refill.status, 201, await refill.clone().text());
      const refilled = (await refill.json()) as { maguId: string; manifestCid: string };
      assert.equal(refilled.maguId, spareId.toString(), "the retried put filled the spare");
      assert.equal(await net.read.maguRegistry.read.maguCount(), spareId, "and paid for no other Magu");
      assert.deepEqual(await spareFiles(join(net.dir, `client-${OWNER}`)), [], "the spare is taken off the list, the false one dropped");
      assert.ok(Buffer.from(await (await fetch(`${url}/v1/blobs/${refilled.manifestCid}`, { headers: auth })).arrayBuffer()).equals(retried), "the retried body reads back");
      console.log(`# HTTP cut bodies and ${CLIENTS} concurrent clients: ${((performance.now() - t2) / 1000).toFixed(1)} s`);

      // Every route of the document answers (a wrong body, but never 404 or 405).
      const values: Record<string, string> = { cid: stored.manifestCid, id: vmagu };
      for (const [route, ops] of Object.entries(doc.paths)) {
        for (const method of Object.keys(ops)) {
          const path = route.replace("/v1/operations/{id}", `/v1/operations/${op.id}`).replace(/\{(\w+)\}/g, (_m, name: string) => values[name]!);
          const body = method === "post" ? "{}" : method === "put" ? "" : undefined;
          const res = await fetch(`${url}${path}`, { method: method.toUpperCase(), body, headers: { ...auth, ...(method === "post" ? { "content-type": "application/json" } : {}) } });
          const text = await res.text();
          assert.ok(res.status !== 404 && res.status !== 405, `${method.toUpperCase()} ${path}: ${res.status} ${text}`);
        }
      }
      console.log(`# HTTP vector cases: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } finally {
      assert.equal(await serve.stop(), 0, serve.stderr());
    }
    const t1 = performance.now();
    // Another account's daemon: the owner's private Magu is not its to add to or search. It takes
    // bodies of 1 MiB at most and must leave 900 TiB free on the disk: a longer body is a 413 before
    // a byte is read, and one to spool or unpack a 507 on its first chunk; nothing is kept.
    const strangerDir = join(net.dir, "client-stranger-http");
    const strangerServe = await startMuri(["serve", "--listen", "127.0.0.1:0", "--max-body", "1MiB", "--disk-reserve", "900TiB", ...strangerArgs, "--client-dir", strangerDir]);
    try {
      const url = strangerServe.ready.url as string;
      const magusBefore = await net.read.maguRegistry.read.maguCount();
      const limited = async (res: Response, status: number, code: string, detail: RegExp): Promise<void> => {
        const text = await res.text();
        assert.equal(res.status, status, text);
        const body = JSON.parse(text) as { code: string; detail: string; field: string };
        assert.deepEqual([body.code, body.field], [code, "body"], text);
        assert.match(body.detail, detail);
      };
      await limited(await fetch(`${url}/v1/blobs?k=2&m=1&members=3`, { method: "PUT", body: randomBytes(1024 * 1024 + 1) }), 413, "ERR_BODY_TOO_LARGE", /Content-Length 1048577 is over 1048576 bytes.*--max-body/);
      const chunked = (bytes: Buffer): RequestInit =>
        ({ method: "PUT", body: new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(bytes), c.close()) }), duplex: "half" }) as RequestInit;
      await limited(await fetch(`${url}/v1/blobs?k=2&m=1&members=3`, chunked(randomBytes(64 * 1024))), 507, "ERR_DISK_FULL", /must stay free \(muri serve --disk-reserve\)/);
      const tar = { ...chunked(randomBytes(10 * 1024)), headers: { "content-type": "application/x-tar" } };
      await limited(await fetch(`${url}/v1/directories?k=2&m=1&members=3`, tar), 507, "ERR_DISK_FULL", /bytes free under/);
      const npy = { ...chunked(randomBytes(10 * 1024)), method: "POST", headers: { "content-type": "application/x-npy" } };
      await limited(await fetch(`${url}/v1/magus/${maguId}/vectors`, npy), 507, "ERR_DISK_FULL", /must stay free/);
      assert.deepEqual(await readdir(join(strangerDir, "http", "uploads")), [], "nothing spooled or unpacked is left");
      assert.equal(await net.read.maguRegistry.read.maguCount(), magusBefore, "no Magu created");
      const refused = async (path: string, body: unknown, code: string): Promise<void> => {
        const res = await fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
        assert.equal(res.status, 403, await res.clone().text());
        assert.equal(((await res.json()) as { code: string }).code, code);
      };
      const before = (await net.read.maguRegistry.read.maguInfo([maguId])).fragmentCount;
      await refused(`/v1/magus/${maguId}/vectors`, { vectors: [{ vector: query }] }, "ERR_MAGU_NOT_OWNER");
      await refused(`/v1/magus/${maguId}/search`, { vector: query }, "ERR_ACCESS_DENIED");
      assert.equal((await net.read.maguRegistry.read.maguInfo([maguId])).fragmentCount, before, "nothing added");
    } finally {
      assert.equal(await strangerServe.stop(), 0, strangerServe.stderr());
      console.log(`# another account's daemon refused: ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    }
    assert.deepEqual(await readdir(join(net.dir, `client-${OWNER}`, "http", "uploads")), [], "no upload left behind");
  });

  test("the SDK (MuriClient, typed from the served OpenAPI document) and the LangChain.js store against muri serve", async () => {
    const t0 = performance.now();
    const serve = await startMuri(["serve", "--listen", "127.0.0.1:0", "--auth", ...ownerArgs, "--client-dir", join(net.dir, `client-${OWNER}`)]);
    try {
      const url = serve.ready.url as string;
      const api = new MuriClient({ url, token: (await readFile(serve.ready.tokenFile as string, "utf8")).trim() });
      // The committed types are what the generator writes from the document this daemon serves.
      assert.equal(sdkTypes(await api.api()), await readFile(SDK_TYPES_FILE, "utf8"), "agents/sdk/api-types.ts is generated from the served document (npm run gen:sdk)");

      // Errors: a MuriApiError with the problem's fields.
      const isProblem = (status: number, code: string, field?: string) => (err: unknown) => {
        assert.ok(err instanceof MuriApiError, String(err));
        assert.deepEqual([err.status, err.code, err.field], [status, code, field], err.message);
        assert.ok(err.detail.length > 0 && err.type.startsWith("https://"));
        return true;
      };
      await assert.rejects(new MuriClient({ url }).blobStatus("bafy"), isProblem(401, "ERR_UNAUTHORIZED"));
      await assert.rejects(api.putBlob(new Uint8Array(10), { k: 0 }), isProblem(400, "ERR_BAD_PARAMETER", "k"));

      // A streamed put of an odd-sized file (a Node file stream), as an operation polled to its result.
      const file = await randomFile(net.dir, "sdk.bin", 1_234_567);
      // With its size the body is encoded as it arrives (Content-Length), and 202 comes once it is all in.
      const op = await api.putBlob(createReadStream(file.path), { k: 2, m: 1, members: NODES }, { async: true, size: 1_234_567 });
      assert.deepEqual([op.kind, op.state], ["put", "running"]);
      const phases: string[] = [];
      const stored = (await api.waitFor(op.id, { intervalMs: 50, timeoutMs: 120_000, onProgress: (p) => phases.push(p.phase) })) as PutResult;
      assert.equal(stored.fileSize, 1_234_567);
      assert.ok(phases.length > 0, "progress heard while it ran");
      const whole = await api.getBlob(stored.manifestCid);
      assert.deepEqual([whole.status, whole.length, whole.size, whole.maguId], [200, 1_234_567, 1_234_567, stored.maguId]);
      const hash = createHash("sha256");
      for await (const chunk of whole.stream) hash.update(chunk);
      assert.equal(hash.digest("hex"), file.sha256, "the streamed download is the file");
      const bytes = await readFile(file.path);
      const middle = await api.getBlob(stored.manifestCid, { range: { start: 600_000, end: 600_999 } });
      assert.deepEqual([middle.status, middle.length, middle.size], [206, 1000, 1_234_567]);
      assert.ok(Buffer.from(await middle.bytes()).equals(bytes.subarray(600_000, 601_000)));
      assert.equal(await api.blobSize(stored.manifestCid), 1_234_567);
      const status = await api.blobStatus(stored.manifestCid);
      assert.equal(status.maguId, stored.maguId);
      await assert.rejects(api.getBlob(stored.manifestCid, { range: "bytes=2000000-" }), isProblem(416, "ERR_BAD_RANGE", "Range"));

      // A directory as a tar body: listed as muri ls lists it, one file read by its path (checked
      // against its CID first), the directory itself is no file; a body that is no tar is refused.
      const tree = join(net.dir, "sdk-tree");
      await mkdir(join(tree, "docs", "deep"), { recursive: true });
      const inner = randomBytes(70_001);
      await writeFile(join(tree, "docs", "deep", "inner.bin"), inner);
      await writeFile(join(tree, "readme.txt"), "hello from a directory\n");
      await symlink("docs/deep/inner.bin", join(tree, "shortcut"));
      const tar = execFileSync("tar", ["-c", "-f", "-", "-C", tree, "."]);
      await assert.rejects(api.putDirectory(randomBytes(2048), { k: 2, m: 1, members: NODES }), isProblem(400, "ERR_BAD_TAR", "body"));
      const dirPut = await api.putDirectory(tar, { k: 2, m: 1, members: NODES });
      assert.deepEqual(dirPut.directory, { files: 2, directories: 2, symlinks: 1, bytes: inner.length + 23, packSize: dirPut.fileSize });
      const listing = await api.listDirectory(dirPut.manifestCid);
      assert.deepEqual(
        listing.entries.map((e) => [e.path, e.kind, e.size ?? e.target ?? null]).sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
        [["docs", "dir", null], ["docs/deep", "dir", null], ["docs/deep/inner.bin", "file", inner.length], ["readme.txt", "file", 23], ["shortcut", "symlink", "docs/deep/inner.bin"]],
      );
      const one = await api.getBlob(dirPut.manifestCid, { path: "docs/deep/inner.bin" });
      assert.deepEqual([one.status, one.length], [200, inner.length]);
      assert.ok(Buffer.from(await one.bytes()).equals(inner), "one file of the directory, byte for byte");
      const onePart = await api.getBlob(dirPut.manifestCid, { path: "readme.txt", range: { start: 6, end: 9 } });
      assert.equal(Buffer.from(await onePart.bytes()).toString(), "from");
      await assert.rejects(api.getBlob(dirPut.manifestCid), isProblem(409, "ERR_IS_DIRECTORY", "cid"));
      await assert.rejects(api.getBlob(dirPut.manifestCid, { path: "docs" }), isProblem(409, "ERR_NOT_A_FILE", "path"));
      await assert.rejects(api.getBlob(dirPut.manifestCid, { path: "nothing.txt" }), isProblem(404, "ERR_PATH_NOT_FOUND", "path"));
      await assert.rejects(api.listDirectory(stored.manifestCid), isProblem(409, "ERR_NOT_A_DIRECTORY"));

      // The LangChain.js store: fromTexts creates a vector Magu of the embeddings' dimension and keeps
      // each text and its metadata as the payload; its answers equal a brute-force search.
      const embeddings = new HashEmbeddings(6);
      const texts = Array.from({ length: 40 }, (_, i) => `document ${i}: ${["ant", "bee", "cat", "dog"][i % 4]} ${i * 7}`);
      const store = await MuriVectorStore.fromTexts(texts, texts.map((_, i) => ({ n: i, even: i % 2 === 0 })), embeddings, { client: api, create: { members: NODES, fragments: 16 }, exact: true });
      assert.ok(store.maguId !== undefined);
      const more = ["an extra page", "another extra page"];
      assert.deepEqual(await store.addDocuments(more.map((pageContent) => new Document({ pageContent, metadata: { extra: true } })), { ids: [1000, 1001] }), ["1000", "1001"]);
      const all = [...texts.map((t, i) => ({ id: String(i), text: t })), ...more.map((t, i) => ({ id: String(1000 + i), text: t }))];
      const vectors = await embeddings.embedDocuments(all.map((d) => d.text));
      const brute = (q: number[], k: number, gone: Set<string> = new Set()) =>
        all
          .map((d, i) => ({ ...d, score: vectors[i]!.reduce((sum, x, j) => sum + (x - q[j]!) ** 2, 0) }))
          .filter((d) => !gone.has(d.id))
          .sort((a, b) => a.score - b.score)
          .slice(0, k);
      const q = await embeddings.embedQuery("which page is nearest");
      await waitFor("every member indexed both batches", 30_000, async () => {
        const r = await api.search(store.maguId!, { vector: q, k: 5, exact: true }).catch(() => undefined);
        return r?.complete === true && r.results.length === 5 ? true : undefined;
      }, 250);
      const hits = await store.similaritySearchVectorWithScore(q, 5);
      const expected = brute(q, 5);
      assert.deepEqual(hits.map(([d]) => d.id), expected.map((d) => d.id));
      for (const [i, [doc, score]] of hits.entries()) {
        assert.equal(doc.pageContent, expected[i]!.text);
        const n = Number(doc.id);
        assert.deepEqual(doc.metadata, n >= 1000 ? { extra: true } : { n, even: n % 2 === 0 });
        assert.ok(Math.abs(score - expected[i]!.score) < 1e-3, `score ${score} ~ ${expected[i]!.score}`);
      }
      const viaText = await store.similaritySearch("which page is nearest", 3);
      assert.deepEqual(viaText.map((d) => d.pageContent), expected.slice(0, 3).map((d) => d.text));

      // delete by ids: the two best hits leave the answers.
      const gone = new Set(expected.slice(0, 2).map((d) => d.id));
      await store.delete({ ids: [...gone] });
      const after = await waitFor("the deleted ids leave the answer", 30_000, async () => {
        const r = await store.similaritySearchVectorWithScore(q, 5).catch(() => undefined);
        return r !== undefined && r.every(([d]) => !gone.has(d.id!)) ? r : undefined;
      }, 250);
      assert.deepEqual(after.map(([d]) => d.id), brute(q, 5, gone).map((d) => d.id));
    } finally {
      assert.equal(await serve.stop(), 0, serve.stderr());
      console.log(`# SDK and LangChain store over HTTP: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  });

  test("a public Magu answers anyone", async () => {
    const made = await muri(["magu", "visibility", String(maguId), "public", "--json", ...ownerArgs]);
    assert.equal(made.code, 0, made.stderr);
    const status = await muri(["magu", "status", String(maguId), ...ownerArgs]);
    assert.match(status.stdout, /public: its members serve and search it for anyone/);
    await waitFor("every holder serves the stranger", 10_000, async () => {
      const answers = await strangerFetches();
      return answers.every((a, i) => (a === "ok") === refusedAt[i]) || undefined;
    }, 250);
    const anyone = await vectorClient(BROKE, "anyone");
    const r = await anyone.search(maguId, query, 5, { exact: true });
    assert.equal(r.hits.length, 5);
  });

  test("paid reads: a get without a deposit is refused; with one, the serving members redeem read vouchers and are paid; muri status shows earnings and the multiplier", async () => {
    const ownerCli = [...ownerArgs, "--client-dir", join(net.dir, `client-${OWNER}`)];
    const id = String(blob.maguId);
    const priced = await muri(["magu", "read-price", id, "0.01", "--json", ...ownerArgs]);
    assert.equal(priced.code, 0, priced.stderr);
    assert.equal(await net.read.maguAccess.read.readPrice([blob.maguId]), E18 / 100n);
    const reader = signer(net.chain.rpcUrl, net.deployment, net.chain.keys[OWNER]! as Hex).account.address;

    const unpaid = await muri(["get", blob.cid, "--magu", id, "-o", join(net.dir, "unpaid.out"), ...ownerCli]);
    assert.notEqual(unpaid.code, 0, "no deposit, no read");
    assert.match(unpaid.stderr, /ERR_READ_PAYMENT|charges for reads/);
    assert.match(unpaid.stderr, /deposit \(0 wei.*muri magu deposit/);
    await assert.rejects(stat(join(net.dir, "unpaid.out")), "nothing written");

    assert.equal((await muri(["magu", "deposit", id, "1", ...ownerArgs])).code, 0);
    const before = await Promise.all(net.nodes.map((n) => net.read.token.read.balanceOf([n.address as Address])));
    const out = join(net.dir, "paid.out");
    // A member may redeem (raising the demand) while the get runs: accept up to x2.
    const got = await muri(["get", blob.cid, "--magu", id, "-o", out, "--max-read-price", "0.02", "--json", ...ownerCli]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(await sha256File(out), blob.sha256, "a paid get is byte for byte");
    const paid = (JSON.parse(got.stdout) as { readsPaid: { fragments: string; wei: string } }).readsPaid;
    const wei = BigInt(paid.wei);
    // The manifest and k shards of each stripe, each prepaid at the unit price the chain quoted.
    assert.ok(BigInt(paid.fragments) >= 2n, `${paid.fragments} fragments paid`);
    assert.ok(wei >= BigInt(paid.fragments) * (E18 / 100n) && wei <= BigInt(paid.fragments) * (E18 / 50n), `${wei} wei for ${paid.fragments} fragments`);

    // The members redeem within --settle-ms (1 s here).
    const settled = await waitFor("the members redeemed every read voucher", 30_000, async () => {
      const logs = await net.publicClient.getLogs({ address: net.deployment.contracts.maguAccess, fromBlock: 0n });
      const events = parseEventLogs({ abi: maguAccessAbi, logs, eventName: "ReadSettled" }).filter((e) => e.args.magu === blob.maguId);
      return events.reduce((sum, e) => sum + e.args.paid, 0n) === wei ? events : undefined;
    }, 500);
    assert.equal(await net.read.maguAccess.read.balanceOf([blob.maguId, reader]), E18 - wei, "the deposit paid exactly the fragments read");
    const after = await Promise.all(net.nodes.map((n) => net.read.token.read.balanceOf([n.address as Address])));
    let servers = 0;
    for (const [i, n] of net.nodes.entries()) {
      const earned = settled.filter((e) => e.args.member.toLowerCase() === n.address.toLowerCase()).reduce((sum, e) => sum + e.args.paid, 0n);
      assert.equal(await net.read.maguAccess.read.readEarned([n.address as Address]), earned, `node ${i}: read earnings on chain`);
      if (earned > 0n) servers++;
      // Gas is paid in ETH, not MURI: its MURI balance rises by at least what it redeemed.
      assert.ok(after[i]! - before[i]! >= earned, `node ${i} received its read pay`);
    }
    assert.ok(servers >= 2, `${servers} members served and were paid`);

    // Each settlement listed the fragments read (documents as NO_FRAGMENT): one per paid fetch.
    assert.equal(settled.reduce((sum, e) => sum + e.args.served, 0n), BigInt(paid.fragments), "every paid read listed");
    // Demand raised the price of the fragments read, at their other holders: a reader whose
    // maximum is the base price is refused, not charged more.
    const count = (await net.read.maguRegistry.read.maguInfo([blob.maguId])).fragmentCount;
    let multiplier = 0n;
    for (let f = 0n; f < BigInt(count); f++) {
      const [holder] = await net.read.maguRegistry.read.holders([blob.maguId, f]);
      const [m] = await net.read.maguAccess.read.readMultiplier([blob.maguId, f, holder!]);
      if (m > multiplier) multiplier = m;
    }
    assert.ok(multiplier > 10_000n && multiplier <= 20_000n, `highest fragment multiplier ${multiplier} bps`);
    const capped = await muri(["get", blob.cid, "--magu", id, "-o", join(net.dir, "capped.out"), "--max-read-price", "0.01", ...ownerCli]);
    assert.notEqual(capped.code, 0);
    assert.match(capped.stderr, /wei for fragment \d+ now, above this client's maximum 10000000000000000/);
    // The manifest (a document, at the base price) may have been paid before a shard was refused.
    const left = await net.read.maguAccess.read.balanceOf([blob.maguId, reader]);
    assert.ok(E18 - wei - left <= E18 / 100n, `at most the manifest taken: ${E18 - wei - left} wei`);

    const status = await muri(["status", ...ownerArgs]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      new RegExp(`\\n  ${id} blob .* read 0\\.01 MURI/fragment x1(\\.\\d+)?\\.\\.x1\\.\\d+ over (its|the first) \\d+ fragments \\(cap x2\\); highest: fragment \\d+ x1\\.\\d+ at 0x[0-9a-fA-F]{8} \\(rarity \\+0%, demand \\+\\d+(\\.\\d+)?%\\)`),
      "the fragments' multipliers, raised by the demand just paid",
    );
    assert.match(status.stdout, /reads earned 0\.0[1-9]\d* \(read up to x1\.\d+ on \d+/, "a serving node's read earnings and its highest multiplier in the Magu it holds");
  });

  test("paid searches: vouchers settle on chain, each member is paid what it answered, a payer without a deposit is refused", async () => {
    const price = E18 / 100n;
    assert.equal((await muri(["magu", "search-price", String(maguId), "0.01", ...ownerArgs])).code, 0);
    const deposited = await muri(["magu", "deposit", String(maguId), "1", "--json", ...strangerArgs]);
    assert.equal(deposited.code, 0, deposited.stderr);
    const payer = signer(net.chain.rpcUrl, net.deployment, net.chain.keys[STRANGER]! as Hex).account.address;
    const before = await Promise.all(holders.map((h) => net.read.token.read.balanceOf([h.address])));
    const searcher = await vectorClient(STRANGER, "payer");
    let asked = 0;
    for (let i = 0; i < 4; i++) {
      const r = await searcher.search(maguId, query.map((x) => x + i / 10), 3, { exact: true });
      assert.equal(r.failed, 0);
      assert.equal(r.hits.length, 3);
      asked += r.asked;
    }
    const owed = BigInt(asked) * price;
    // The members settle within --settle-ms (1 s here).
    const settled = await waitFor("the members settled every search", 30_000, async () => {
      const logs = await net.publicClient.getLogs({ address: net.deployment.contracts.maguAccess, fromBlock: 0n });
      const events = parseEventLogs({ abi: maguAccessAbi, logs, eventName: "SearchSettled" });
      const total = events.reduce((s, e) => s + e.args.paid, 0n);
      return total === owed ? events : undefined;
    }, 500);
    const after = await Promise.all(holders.map((h) => net.read.token.read.balanceOf([h.address])));
    for (const [i, h] of holders.entries()) {
      const paid = settled.filter((e) => e.args.member.toLowerCase() === h.address.toLowerCase()).reduce((s, e) => s + e.args.paid, 0n);
      const [onChain] = await net.read.maguAccess.read.settled([maguId, payer, h.address]);
      assert.equal(onChain, paid, `member ${i}: settled books`);
      // A member also earns other rewards meanwhile (proofs); its search pay is at least what it settled.
      assert.ok(after[i]! - before[i]! >= paid, `member ${i} received its search pay`);
    }
    assert.equal(await net.read.maguAccess.read.balanceOf([maguId, payer]), E18 - owed, "the deposit paid exactly the searches answered");

    const broke = await vectorClient(BROKE, "broke");
    await assert.rejects(broke.search(maguId, query, 3), (err: Error & { code?: string }) => err.code === "ERR_SEARCH_PAYMENT" && /deposit/.test(err.message));

    const asked1 = await muri(["magu", "withdraw-deposit", String(maguId), "--json", ...strangerArgs]);
    assert.equal(asked1.code, 0, asked1.stderr);
    const at = BigInt((JSON.parse(asked1.stdout) as { withdrawableAt: string }).withdrawableAt);
    // Searching on credit and leaving before the members settle: refused once a withdrawal is asked.
    await assert.rejects(searcher.search(maguId, query, 3), (err: Error & { code?: string }) => err.code === "ERR_SEARCH_PAYMENT" && /asked to withdraw/.test(err.message));
    await net.mineTo(at);
    const paidOut = await muri(["magu", "withdraw-deposit", String(maguId), "--json", ...strangerArgs]);
    assert.equal(paidOut.code, 0, paidOut.stderr);
    assert.equal(BigInt((JSON.parse(paidOut.stdout) as { withdrawn: string }).withdrawn), E18 - owed);
  });
});

interface OpenApiDoc {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>;
  components: { schemas: Record<string, unknown> };
}

/**
 * Where `value` departs from the JSON Schema `schema` (the subset the API's document uses: $ref,
 * oneOf, type, enum, required, properties, items, pattern); empty when it conforms.
 */
function matchSchema(value: unknown, schema: unknown, doc: OpenApiDoc, at = "$"): string[] {
  const s = schema as { $ref?: string; oneOf?: unknown[]; type?: string | string[]; enum?: unknown[]; required?: string[]; properties?: Record<string, unknown>; items?: unknown; pattern?: string };
  if (s.$ref !== undefined) return matchSchema(value, doc.components.schemas[s.$ref.replace("#/components/schemas/", "")], doc, at);
  if (s.oneOf !== undefined) {
    const fits = s.oneOf.filter((o) => matchSchema(value, o, doc, at).length === 0).length;
    return fits === 1 ? [] : [`${at}: fits ${fits} of oneOf`];
  }
  const types = s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type];
  const typeOf = value === null ? "null" : Array.isArray(value) ? "array" : Number.isInteger(value) ? "integer" : typeof value;
  if (types.length > 0 && !types.some((t) => t === typeOf || (t === "number" && typeOf === "integer"))) return [`${at}: a ${typeOf}, documented ${types.join("|")}`];
  if (s.enum !== undefined && !s.enum.includes(value)) return [`${at}: ${JSON.stringify(value)} not in ${JSON.stringify(s.enum)}`];
  if (s.pattern !== undefined && typeof value === "string" && !new RegExp(s.pattern).test(value)) return [`${at}: "${value}" does not match ${s.pattern}`];
  const out: string[] = [];
  if (typeOf === "object") {
    const o = value as Record<string, unknown>;
    for (const r of s.required ?? []) if (!(r in o)) out.push(`${at}.${r}: missing`);
    for (const [k, sub] of Object.entries(s.properties ?? {})) if (o[k] !== undefined) out.push(...matchSchema(o[k], sub, doc, `${at}.${k}`));
  }
  if (typeOf === "array" && s.items !== undefined) (value as unknown[]).forEach((v, i) => out.push(...matchSchema(v, s.items, doc, `${at}[${i}]`)));
  return out;
}

