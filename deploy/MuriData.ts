import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { id } from "ethers";

/**
 * Deploys the seven core contracts and wires their roles (MaguAccess needs none):
 * - MuriToken MINTER_ROLE -> Rewards (the only minter)
 * - NodeRegistry MODULE_ROLE, SLASHER_ROLE -> MaguRegistry; SLASHER_ROLE, REPUTATION_ROLE -> ChallengeManager
 *   and SearchMarket
 * - MaguRegistry CHALLENGE_ROLE -> ChallengeManager
 * - ChallengeManager sends the slashed stake the marker does not get to Rewards; MaguRegistry sends it
 *   the repair bounties nobody earned.
 * Then administration goes to a MuriTimelock: it receives DEFAULT_ADMIN_ROLE of MuriToken, NodeRegistry
 * and MaguRegistry and the deployer renounces its own, so every later role change is scheduled in
 * public and waits `adminDelaySeconds` (the deployer stays the timelock's proposer and executor).
 * Every number is an Ignition parameter (see deploy/parameters/*.json); the defaults suit a devnet.
 */
export default buildModule("MuriData", (m) => {
  const deployer = m.getAccount(0);
  const E18 = 10n ** 18n;

  const token = m.contract("MuriToken", [deployer, deployer, m.getParameter("initialSupply", 1_000_000_000n * E18)]);

  const nodeRegistry = m.contract("NodeRegistry", [
    {
      token,
      minStake: m.getParameter("minStake", 1_000n * E18),
      unbondingBlocks: m.getParameter("unbondingBlocks", 20n),
      maxNodes: m.getParameter("maxNodes", 16_384n),
      // A Magu is drawn in the selection epoch after its request: 8 blocks leave a client 6 or 7
      // blocks to land formMagu (a re-request costs the formation deposit).
      selectionEpochBlocks: m.getParameter("selectionEpochBlocks", 8n),
      // A reputation fades one point toward 0 every 100 blocks (10 periods): a node excluded for
      // misses (-50) is drafted again, at half weight, 100 blocks after its last penalty.
      reputationDecayBlocks: m.getParameter("reputationDecayBlocks", 100n),
    },
    deployer,
  ]);

  const rewards = m.contract("Rewards", [
    {
      token,
      nodeRegistry,
      genesisBlock: 0n,
      epochBlocks: m.getParameter("epochBlocks", 40n),
      emissionPerEpoch: m.getParameter("emissionPerEpoch", 10_000n * E18),
      validatorShareBps: m.getParameter("validatorShareBps", 1_800n),
      // maxValidatorsPerEpoch x maxWeights is capped at 512 entries by the contract: finalizeEpoch's
      // cost at that bound is in snapshots/gas.json ("Rewards.finalizeEpoch(at the bound: ...)").
      maxWeights: m.getParameter("maxWeights", 32n),
      maxValidatorsPerEpoch: m.getParameter("maxValidatorsPerEpoch", 16n),
      // An epoch is distributed if its validators' stake reaches half the largest stake counted by
      // the 8 epochs before it, and at least one minimum stake (see IRewards, ARCHITECTURE.md).
      quorumBps: m.getParameter("quorumBps", 5_000n),
      quorumLookbackEpochs: m.getParameter("quorumLookbackEpochs", 8n),
      minQuorumStake: m.getParameter("minQuorumStake", 1_000n * E18),
    },
  ]);

  const maguRegistry = m.contract("MaguRegistry", [
    {
      token,
      nodeRegistry,
      genesisBlock: 0n,
      periodBlocks: m.getParameter("periodBlocks", 10n),
      stakePerMember: m.getParameter("stakePerMember", 100n * E18),
      repairBounty: m.getParameter("repairBounty", 50n * E18),
      maxMembers: m.getParameter("maxMembers", 32n),
      maxFragments: m.getParameter("maxFragments", 1_048_576n),
      maxDurationPeriods: m.getParameter("maxDurationPeriods", 1_000_000n),
      bountySink: rewards,
      fetchFragmentsPerPeriod: m.getParameter("fetchFragmentsPerPeriod", 256n),
      formationDeposit: m.getParameter("formationDeposit", 10n * E18),
      // At least graceBlocks + markWindowBlocks (ChallengeManager's constructor checks it).
      settleDelayBlocks: m.getParameter("settleDelayBlocks", 30n),
    },
    deployer,
  ]);

  const challengeManager = m.contract("ChallengeManager", [
    {
      maguRegistry,
      nodeRegistry,
      slashSink: rewards,
      samples: m.getParameter("samples", 4n),
      slashBps: m.getParameter("slashBps", 500n),
      markerBps: m.getParameter("markerBps", 1_000n),
      maxMisses: m.getParameter("maxMisses", 3n),
      graceBlocks: m.getParameter("graceBlocks", 0n),
      markWindowBlocks: m.getParameter("markWindowBlocks", 30n),
    },
  ]);

  const searchMarket = m.contract("SearchMarket", [
    {
      token,
      nodeRegistry,
      maguRegistry,
      commitBlocks: m.getParameter("commitBlocks", 8n),
      revealBlocks: m.getParameter("revealBlocks", 8n),
      disputeBlocks: m.getParameter("disputeBlocks", 8n),
      maxK: m.getParameter("maxK", 100n),
      disputeSlash: m.getParameter("disputeSlash", 50n * E18),
      disputerBps: m.getParameter("disputerBps", 5_000n),
      slashSink: rewards,
      revealPenalty: m.getParameter("revealPenalty", 10n),
    },
  ]);

  // No roles: MaguAccess reads owners and memberships from MaguRegistry and holds only deposits.
  const maguAccess = m.contract("MaguAccess", [
    {
      token,
      maguRegistry,
      // Blocks between a payer's requestWithdraw and its withdraw: members settle their vouchers
      // within them, so a payer cannot search and leave unpaid.
      withdrawDelayBlocks: m.getParameter("withdrawDelayBlocks", 20n),
    },
  ]);

  const wiring = [
    m.call(token, "grantRole", [id("MINTER_ROLE"), rewards], { id: "grantMinterToRewards" }),
    m.call(nodeRegistry, "grantRole", [id("MODULE_ROLE"), maguRegistry], { id: "grantModuleToMagu" }),
    m.call(nodeRegistry, "grantRole", [id("SLASHER_ROLE"), maguRegistry], { id: "grantSlasherToMagu" }),
    m.call(nodeRegistry, "grantRole", [id("SLASHER_ROLE"), challengeManager], { id: "grantSlasherToChallenge" }),
    m.call(nodeRegistry, "grantRole", [id("REPUTATION_ROLE"), challengeManager], { id: "grantReputationToChallenge" }),
    m.call(maguRegistry, "grantRole", [id("CHALLENGE_ROLE"), challengeManager], { id: "grantChallengeToManager" }),
    m.call(nodeRegistry, "grantRole", [id("SLASHER_ROLE"), searchMarket], { id: "grantSlasherToSearch" }),
    m.call(nodeRegistry, "grantRole", [id("REPUTATION_ROLE"), searchMarket], { id: "grantReputationToSearch" }),
  ];

  // Administration to the timelock, then the deployer lets go of its own.
  const timelock = m.contract("MuriTimelock", [m.getParameter("adminDelaySeconds", 172_800n), [deployer], [deployer]]);
  const ADMIN = "0x0000000000000000000000000000000000000000000000000000000000000000";
  for (const [name, contract] of [["Token", token], ["Nodes", nodeRegistry], ["Magus", maguRegistry]] as const) {
    const handOver = m.call(contract, "grantRole", [ADMIN, timelock], { id: `grantAdminToTimelock${name}`, after: wiring });
    m.call(contract, "renounceRole", [ADMIN, deployer], { id: `renounceDeployerAdmin${name}`, after: [handOver] });
  }

  return { token, nodeRegistry, rewards, maguRegistry, challengeManager, searchMarket, maguAccess, timelock };
});
