import { network } from "hardhat";
import MuriData from "../../../deploy/MuriData.js";
import type {
  ChallengeManager,
  MaguRegistry,
  MuriToken,
  NodeRegistry,
  Rewards,
} from "../../../typechain-types/index.js";

export const E18 = 10n ** 18n;

/** One in-process Hardhat network with the Ignition module deployed, typed by typechain. */
export async function deployAll(parameters: Record<string, bigint | number> = {}) {
  const connection = await network.create();
  const { ethers, ignition, networkHelpers } = connection;
  const deployed = await ignition.deploy(MuriData, { parameters: { MuriData: parameters } });
  const signers = await ethers.getSigners();
  return {
    connection,
    ethers,
    networkHelpers,
    signers,
    token: deployed.token as unknown as MuriToken,
    nodeRegistry: deployed.nodeRegistry as unknown as NodeRegistry,
    rewards: deployed.rewards as unknown as Rewards,
    maguRegistry: deployed.maguRegistry as unknown as MaguRegistry,
    challengeManager: deployed.challengeManager as unknown as ChallengeManager,
  };
}

export type Deployment = Awaited<ReturnType<typeof deployAll>>;
