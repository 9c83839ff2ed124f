import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { generatePrivateKey } from "viem/accounts";
import {
  ChainIdMismatchError,
  ContractRevertError,
  InsufficientGasFundsError,
  RpcUnavailableError,
  createChainClients,
  describeError,
  getMuriContracts,
  toChainError,
  verifyChain,
  type Deployment,
} from "../../../agents/chain/index.js";
import { cleanup, deployLocal, freePort, startFreshHardhatNode, type HardhatChain } from "./harness.js";

after(cleanup);

describe("describeError without a chain", () => {
  test("an unreachable RPC: one line with the URL, the cause and what to do", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const { publicClient } = createChainClients({ rpcUrl: url, chainId: 31337, retryCount: 0 });
    const err = await publicClient.getBlockNumber().then(
      () => assert.fail("nothing listens there"),
      (e: unknown) => e,
    );
    const line = describeError(err);
    assert.equal(line, `RPC ${url} is not reachable (connect ECONNREFUSED): start a chain or pass --rpc`);
    const chainErr = toChainError(err);
    assert.ok(chainErr instanceof RpcUnavailableError);
    assert.equal(chainErr.code, "ERR_RPC_UNAVAILABLE");
    assert.deepEqual(chainErr.context, { url, reason: "connect ECONNREFUSED" });
    await assert.rejects(verifyChain(publicClient, 31337, url), RpcUnavailableError);
  });

  test("anything else still gives one line", () => {
    assert.equal(describeError(new Error("first\nsecond")), "first");
    assert.equal(describeError("plain"), "plain");
    assert.equal(toChainError(new Error("x")), undefined);
  });
});

describe("describeError against a hardhat node", () => {
  let chain: HardhatChain;
  let d: Deployment;

  before(async () => {
    chain = await startFreshHardhatNode();
    d = await deployLocal(chain.rpcUrl);
  });

  test("a revert names the contract, function, custom error and its arguments", async () => {
    const c = createChainClients({ rpcUrl: chain.rpcUrl, chainId: d.chainId, privateKey: chain.keys[1]!, retryCount: 0 });
    const magu = getMuriContracts(d.contracts, c).maguRegistry;
    const err = await magu.simulate.formMagu([999n]).then(
      () => assert.fail("Magu 999 does not exist"),
      (e: unknown) => e,
    );
    assert.equal(describeError(err), "MaguRegistry.formMagu reverted MaguUnknown(magu=999)");
    const chainErr = toChainError(err);
    assert.ok(chainErr instanceof ContractRevertError);
    assert.equal(chainErr.context.errorName, "MaguUnknown");
    assert.deepEqual(chainErr.context.args, [999n]);
    assert.equal(chainErr.context.address, d.contracts.maguRegistry);

    // bytes32 labels are shown as text.
    const invalid = await magu.simulate
      .createMagu([
        {
          kind: 0,
          metric: 0,
          dimension: 0,
          members: 0,
          replication: 0,
          dataShards: 1,
          parityShards: 0,
          maxFragments: 1,
          durationPeriods: 1n,
          pricePerFragmentPeriod: 1n,
        },
      ])
      .then(() => assert.fail("zero members is invalid"), (e: unknown) => e);
    assert.equal(describeError(invalid), 'MaguRegistry.createMagu reverted MaguInvalidParams(field="members", value=0)');
  });

  test("a fresh key with no ETH: the account has no funds for gas", async () => {
    const c = createChainClients({ rpcUrl: chain.rpcUrl, chainId: d.chainId, privateKey: generatePrivateKey(), retryCount: 0 });
    const token = getMuriContracts(d.contracts, c).token;
    const err = await token.write.approve([d.contracts.maguRegistry, 1n]).then(
      () => assert.fail("an unfunded account cannot send"),
      (e: unknown) => e,
    );
    const line = describeError(err);
    assert.match(line, new RegExp(`^account ${c.account.address} has no funds for gas \\(balance 0 wei, needs \\d+ wei\\): fund it with ETH first$`));
    const chainErr = toChainError(err);
    assert.ok(chainErr instanceof InsufficientGasFundsError);
    assert.equal(chainErr.context.balance, 0n);

    // A plain transfer (no contract in the error) still finds the sender.
    const plain = await c.walletClient.sendTransaction({ to: c.account.address, value: 1n }).then(
      () => assert.fail("an unfunded account cannot send"),
      (e: unknown) => e,
    );
    assert.match(describeError(plain), new RegExp(`^account ${c.account.address} has no funds for gas`));
  });

  test("a chain id that does not match the deployment", async () => {
    const { publicClient } = createChainClients({ rpcUrl: chain.rpcUrl, chainId: 1, retryCount: 0 });
    await assert.rejects(verifyChain(publicClient, 1, chain.rpcUrl), (err: unknown) => {
      assert.ok(err instanceof ChainIdMismatchError);
      assert.equal(err.message, `RPC ${chain.rpcUrl} serves chain 31337, expected chain 1: point --rpc at the chain the deployment file describes`);
      return true;
    });
    await verifyChain(createChainClients({ rpcUrl: chain.rpcUrl, chainId: 31337 }).publicClient, 31337);
  });
});
