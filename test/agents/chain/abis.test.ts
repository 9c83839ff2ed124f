import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { ABIS_FILE, renderAbisModule } from "../../../scripts/gen-abis.js";
import { maguAccessAbi, maguRegistryAbi, muriAbis, muriContractNames, searchMarketAbi } from "../../../agents/chain/abis.js";

test("agents/chain/abis.ts matches the current artifacts (regenerate with scripts/gen-abis.ts)", async () => {
  const expected = await renderAbisModule();
  const actual = await readFile(ABIS_FILE, "utf8");
  assert.ok(
    actual === expected,
    "agents/chain/abis.ts is stale: run `bash scripts/node22.sh hardhat build && bash scripts/node22.sh tsx scripts/gen-abis.ts`",
  );
});

test("the generated ABIs name the seven core contracts and their events and errors", () => {
  assert.deepEqual(Object.keys(muriAbis).sort(), ["challengeManager", "maguAccess", "maguRegistry", "nodeRegistry", "rewards", "searchMarket", "token"]);
  assert.equal(muriContractNames.maguRegistry, "MaguRegistry");
  const names = new Set(maguRegistryAbi.map((item) => `${item.type}:${"name" in item ? item.name : ""}`));
  for (const n of ["event:MaguRequested", "error:MaguUnknown", "function:formMagu"]) assert.ok(names.has(n), `${n} missing`);
  assert.equal(muriContractNames.searchMarket, "SearchMarket");
  const search = new Set(searchMarketAbi.map((item) => `${item.type}:${"name" in item ? item.name : ""}`));
  for (const n of ["event:TaskFinalized", "error:SearchDisputeRejected", "function:finalize"]) assert.ok(search.has(n), `${n} missing`);
  assert.equal(muriContractNames.maguAccess, "MaguAccess");
  const access = new Set(maguAccessAbi.map((item) => `${item.type}:${"name" in item ? item.name : ""}`));
  for (const n of ["event:SearchSettled", "error:AccessVoucherStale", "function:checkGrant"]) assert.ok(access.has(n), `${n} missing`);
});

test("renderAbisModule names the missing artifact and how to build it", async () => {
  await assert.rejects(renderAbisModule("/nonexistent/artifacts"), /MuriToken\.json is missing: run `bash scripts\/node22.sh hardhat build`/);
});
