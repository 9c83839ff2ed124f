/** Injected into the browser bundle (agents/light/bundle.ts): `Buffer` for the agents' byte code. */
export { Buffer } from "buffer";
