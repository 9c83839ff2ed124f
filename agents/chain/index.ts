/**
 * chain/: viem clients and typed contract handles for the six core contracts, the deployment
 * file, errors decoded into one class per condition, and the event follower.
 */
export * from "./abis.js";
export * from "./access.js";
export * from "./batches.js";
export * from "./constants.js";
export * from "./errors.js";
export * from "./keystore.js";
export * from "./public-key.js";
export * from "./selection.js";
export {
  MURI_CONTRACT_KEYS,
  createChainClients,
  getMuriContracts,
  loadDeployment,
  muriChain,
  parseDeployment,
  rpcUrlList,
  serialSend,
  verifyChain,
  type ChainClients,
  type ChainClientsInit,
  type Deployment,
  type MuriContractKey,
  type MuriContracts,
  type MuriContractsOptions,
  type MuriPublicClient,
  type MuriWalletClient,
  type SendPriority,
  type SigningChainClients,
} from "./clients.js";
export {
  DeploymentNotOnChainError,
  describeNetwork,
  networkKey,
  readNetworkIdentity,
  sameNetwork,
  type NetworkIdentity,
} from "./network.js";
export {
  createEventFollower,
  pause,
  type ChainEvent,
  type EventArgs,
  type EventFollower,
  type EventFollowerComponents,
  type EventFollowerInit,
  type EventHandler,
  type FollowedContract,
  type FollowerReorg,
  type FollowerState,
  type FollowerStatus,
} from "./follower.js";
