/**
 * The token books of the contracts that hold MURI (docs/ARCHITECTURE.md, "Money and the
 * invariant"), over any contract handles: ethers/typechain contracts in the mocha tests, viem
 * handles (adapted, e.g. bound to one block) in the agents' end-to-end tests. No Hardhat import, so
 * node:test suites can use it without loading a Hardhat runtime.
 */

/** What the books read of each contract; typechain contracts fit as they are. */
export interface BooksContracts {
  token: { balanceOf(account: string): Promise<bigint> };
  nodeRegistry: { getAddress(): Promise<string>; totalHeld(): Promise<bigint> };
  maguRegistry: { getAddress(): Promise<string>; totalHeld(): Promise<bigint> };
  rewards: { getAddress(): Promise<string>; totalClaimable(): Promise<bigint>; pool(): Promise<bigint> };
  /** Counted when the deployment has it. */
  searchMarket?: { getAddress(): Promise<string>; totalHeld(): Promise<bigint> };
}

/** One contract: its MURI balance and what its books say it holds for others. */
export interface ContractBooks {
  held: bigint;
  owed: bigint;
}

export interface TokenBooks extends ContractBooks {
  /**
   * Per contract: NodeRegistry (stakes + unbonding), MaguRegistry (escrows, bounties, claimable),
   * Rewards (claimable + pool), SearchMarket (fees, deposits; when deployed).
   */
  byContract: { nodeRegistry: ContractBooks; maguRegistry: ContractBooks; rewards: ContractBooks; searchMarket?: ContractBooks };
}

/** Sum of MURI held by the contracts that hold tokens, and what their books say they hold (also per contract). */
export async function tokenBooks(d: BooksContracts): Promise<TokenBooks> {
  const held = async (c: { getAddress(): Promise<string> }) => d.token.balanceOf(await c.getAddress());
  const byContract: TokenBooks["byContract"] = {
    nodeRegistry: { held: await held(d.nodeRegistry), owed: await d.nodeRegistry.totalHeld() },
    maguRegistry: { held: await held(d.maguRegistry), owed: await d.maguRegistry.totalHeld() },
    rewards: { held: await held(d.rewards), owed: (await d.rewards.totalClaimable()) + (await d.rewards.pool()) },
  };
  if (d.searchMarket) byContract.searchMarket = { held: await held(d.searchMarket), owed: await d.searchMarket.totalHeld() };
  const all = Object.values(byContract);
  return { held: all.reduce((a, c) => a + c.held, 0n), owed: all.reduce((a, c) => a + c.owed, 0n), byContract };
}
