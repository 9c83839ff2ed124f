import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  DeploymentFileError,
  InvalidChainOptionError,
  createChainClients,
  getMuriContracts,
  loadDeployment,
  muriAbis,
  parseDeployment,
  serialSend,
} from "../../../agents/chain/index.js";
import { cleanup, tempDir } from "./harness.js";

after(cleanup);

const valid = {
  chainId: 31337,
  rpcUrl: "http://127.0.0.1:8545",
  deployBlock: 11,
  contracts: {
    token: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    nodeRegistry: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
    rewards: "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
    maguRegistry: "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
    challengeManager: "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9",
    searchMarket: "0x5FC8d32690cc91D4c39d9d3abcBD16989F875707",
    maguAccess: "0x0165878A594ca255338adfa4d48449f69242Eb8F",
  },
  parameters: { periodBlocks: 10 },
};

describe("loadDeployment", () => {
  test("reads what deploy-local writes", async () => {
    const file = join(await tempDir(), "d.json");
    await writeFile(file, JSON.stringify(valid));
    const d = await loadDeployment(file);
    assert.equal(d.chainId, 31337);
    assert.equal(d.deployBlock, 11n);
    assert.equal(d.contracts.maguRegistry, valid.contracts.maguRegistry);
    assert.deepEqual(d.parameters, { periodBlocks: 10 });
  });

  test("a missing file says so and how to make one", async () => {
    const file = join(await tempDir(), "missing.json");
    await assert.rejects(loadDeployment(file), (err: unknown) => {
      assert.ok(err instanceof DeploymentFileError);
      assert.equal(err.code, "ERR_DEPLOYMENT_FILE");
      assert.match(err.message, new RegExp(`deployment file ${file}: does not exist: deploy first`));
      return true;
    });
  });

  test("a file that is not JSON says so", async () => {
    const file = join(await tempDir(), "bad.json");
    await writeFile(file, "{ not json");
    await assert.rejects(loadDeployment(file), /is not valid JSON/);
  });

  const cases: [string, (d: Record<string, any>) => void, string, RegExp][] = [
    ["missing chainId", (d) => delete d.chainId, "chainId", /field "chainId" is missing/],
    ["string chainId", (d) => (d.chainId = "31337"), "chainId", /field "chainId" must be a positive integer, got "31337"/],
    ["bad rpcUrl", (d) => (d.rpcUrl = "localhost:8545"), "rpcUrl", /field "rpcUrl" must be an http\(s\):\/\/ or ws\(s\):\/\/ URL/],
    ["negative deployBlock", (d) => (d.deployBlock = -1), "deployBlock", /field "deployBlock" must be a non-negative integer/],
    ["missing contract", (d) => delete d.contracts.maguRegistry, "contracts.maguRegistry", /field "contracts.maguRegistry" is missing \(the MaguRegistry address\)/],
    ["short address", (d) => (d.contracts.token = "0x1234"), "contracts.token", /field "contracts.token" must be a 0x-prefixed 20-byte address, got "0x1234"/],
    ["zero address", (d) => (d.contracts.rewards = "0x0000000000000000000000000000000000000000"), "contracts.rewards", /is the zero address/],
    ["array parameters", (d) => (d.parameters = []), "parameters", /field "parameters" must be an object/],
  ];
  for (const [name, mutate, field, message] of cases) {
    test(`names the field: ${name}`, () => {
      const d = structuredClone(valid) as Record<string, any>;
      mutate(d);
      assert.throws(() => parseDeployment(d, "deployments/31337.json"), (err: unknown) => {
        assert.ok(err instanceof DeploymentFileError);
        assert.equal(err.context.field, field);
        assert.equal(err.context.path, "deployments/31337.json");
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

describe("createChainClients", () => {
  test("builds a public client, and a wallet client with a key", () => {
    const key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d" as const;
    const c = createChainClients({ rpcUrl: "http://127.0.0.1:8545", chainId: 31337, privateKey: key });
    assert.equal(c.chain.id, 31337);
    assert.equal(c.account.address, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    assert.equal(createChainClients({ rpcUrl: "http://127.0.0.1:8545", chainId: 31337 }).walletClient, undefined);
    const contracts = getMuriContracts(parseDeployment(valid).contracts, c);
    assert.equal(contracts.maguRegistry.address, valid.contracts.maguRegistry);
    assert.equal(contracts.maguRegistry.abi, muriAbis.maguRegistry);
    assert.equal(typeof contracts.maguRegistry.write.formMagu, "function");
  });

  test("rejects a bad URL, chain id or key without echoing the key", () => {
    assert.throws(() => createChainClients({ rpcUrl: "127.0.0.1:8545", chainId: 1 }), InvalidChainOptionError);
    assert.throws(() => createChainClients({ rpcUrl: "http://x", chainId: 0 }), /chainId=0/);
    assert.throws(
      () => createChainClients({ rpcUrl: "http://x", chainId: 1, privateKey: "0xsecret" }),
      (err: unknown) => err instanceof InvalidChainOptionError && !err.message.includes("secret"),
    );
  });
});

describe("serialSend: one wallet's submissions, one at a time, proofs first", () => {
  test("while one runs, waiting submissions go by priority, then call order; a failure does not hold the queue", async () => {
    const wallet = {};
    const order: string[] = [];
    let release!: () => void;
    const first = serialSend(wallet, () => new Promise<string>((resolve) => (release = () => resolve("first"))), "task");
    const later = [
      serialSend(wallet, async () => void order.push("task 1"), "task"),
      serialSend(wallet, async () => void order.push("normal"), "normal"),
      serialSend(wallet, async () => {
        order.push("proof 1 (fails)");
        throw new Error("reverted");
      }, "proof"),
      serialSend(wallet, async () => void order.push("task 2"), "task"),
      serialSend(wallet, async () => void order.push("proof 2"), "proof"),
    ];
    // Nothing else starts while the first submission is being handed to the RPC.
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(order, []);
    release();
    assert.equal(await first, "first");
    const results = await Promise.allSettled(later);
    assert.deepEqual(order, ["proof 1 (fails)", "proof 2", "normal", "task 1", "task 2"]);
    assert.equal(results[2]!.status, "rejected");
    assert.equal((results[2] as PromiseRejectedResult).reason.message, "reverted");
    // Another wallet has its own queue.
    assert.equal(await serialSend({}, async () => "other"), "other");
  });

  test("two wallet clients of one key share a queue; another key or chain has its own", async () => {
    const key = "0x" + "11".repeat(32);
    const a = createChainClients({ rpcUrl: "http://127.0.0.1:1", chainId: 31337, privateKey: key as `0x${string}` }).walletClient;
    const b = createChainClients({ rpcUrl: "http://127.0.0.1:2", chainId: 31337, privateKey: key as `0x${string}` }).walletClient;
    const other = createChainClients({ rpcUrl: "http://127.0.0.1:1", chainId: 31337, privateKey: ("0x" + "22".repeat(32)) as `0x${string}` }).walletClient;
    const otherChain = createChainClients({ rpcUrl: "http://127.0.0.1:1", chainId: 4242, privateKey: key as `0x${string}` }).walletClient;
    let release!: () => void;
    const order: string[] = [];
    const first = serialSend(a, () => new Promise<void>((resolve) => (release = resolve)));
    const same = serialSend(b, async () => void order.push("same key, other client"));
    await serialSend(other, async () => void order.push("other key"));
    await serialSend(otherChain, async () => void order.push("other chain"));
    // The second client of the key waits for the first's submission.
    assert.deepEqual(order, ["other key", "other chain"]);
    release();
    await first;
    await same;
    assert.deepEqual(order, ["other key", "other chain", "same key, other client"]);
  });
});
