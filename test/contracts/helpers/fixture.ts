import { network } from "hardhat";
import MuriData from "../../../deploy/MuriData.js";
import type {
  ChallengeManager,
  MaguAccess,
  MaguRegistry,
  MuriTimelock,
  MuriToken,
  NodeRegistry,
  Rewards,
  SearchMarket,
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
    searchMarket: deployed.searchMarket as unknown as SearchMarket,
    maguAccess: deployed.maguAccess as unknown as MaguAccess,
    timelock: deployed.timelock as unknown as MuriTimelock,
  };
}

export type Deployment = Awaited<ReturnType<typeof deployAll>>;

/** The same handles over contracts already deployed (e.g. by scripts/deploy-local.ts to a node). */
export async function attachAll(addresses: Record<string, string>) {
  const connection = await network.getOrCreate();
  const { ethers, networkHelpers } = connection;
  const at = async <T>(name: string, key: string) => (await ethers.getContractAt(name, addresses[key]!)) as unknown as T;
  return {
    connection,
    ethers,
    networkHelpers,
    signers: await ethers.getSigners(),
    token: await at<MuriToken>("MuriToken", "token"),
    nodeRegistry: await at<NodeRegistry>("NodeRegistry", "nodeRegistry"),
    rewards: await at<Rewards>("Rewards", "rewards"),
    maguRegistry: await at<MaguRegistry>("MaguRegistry", "maguRegistry"),
    challengeManager: await at<ChallengeManager>("ChallengeManager", "challengeManager"),
    searchMarket: await at<SearchMarket>("SearchMarket", "searchMarket"),
    maguAccess: await at<MaguAccess>("MaguAccess", "maguAccess"),
    timelock: await at<MuriTimelock>("MuriTimelock", "timelock"),
  } satisfies Deployment;
}
