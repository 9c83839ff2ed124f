/**
 * p2p layer: libp2p node, `/muri/fragment/1.0.0` (fetch/push fragments by CID), DHT provider
 * records, peer bans and the node's persistent identity.
 */
export { createP2PNode } from "./node.js";
export type {
  ConnectionLimits,
  DhtAddressScope,
  DhtInit,
  FindProvidersOptions,
  P2PNode,
  P2PNodeInit,
  P2PServices,
  PeerTarget,
  ProvideOptions,
  ProviderInfo,
  YamuxTuning,
} from "./node.js";
export { FragmentProtocol } from "./fragment-protocol.js";
export type { FragmentLibp2p, FragmentProtocolComponents, FragmentProtocolInit, FragmentTarget } from "./fragment-protocol.js";
export { PeerBanList } from "./ban-list.js";
export type { PeerBan, PeerBanListInit } from "./ban-list.js";
export { loadOrCreatePrivateKey, loadPrivateKey, savePrivateKey } from "./keys.js";
export { createP2PMetrics } from "./metrics.js";
export type { P2PMetrics } from "./metrics.js";
export * from "./errors.js";
export * from "./constants.js";
export {
  Op,
  Status,
  decodeRequestHeader,
  decodeResponseHeader,
  encodeErrorResponse,
  encodeRequestHeader,
  encodeResponseHeader,
  requestHeaderLength,
  statusName,
} from "./framing.js";
export type { RequestHeader, ResponseHeader } from "./framing.js";
export type {
  FetchOptions,
  FragmentSink,
  FragmentSource,
  IncomingFetch,
  IncomingPush,
  P2PLimits,
  PushPolicy,
  ServePolicy,
  PushOptions,
  TransferOptions,
} from "./types.js";
export { SEARCH_LIMITS, SEARCH_PROTOCOL, handleSearchProtocol, searchRequest } from "./search-protocol.js";
export type { SearchProtocolLimits, SearchRequestHandler } from "./search-protocol.js";
