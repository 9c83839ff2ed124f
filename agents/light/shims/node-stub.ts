/**
 * What the browser bundle gets for the other `node:` modules agents/data imports at the top of a
 * file (agents/light/bundle.ts maps them here): enough to load those files, nothing to call. The
 * light client never reads files or loads native addons; a call that would throws.
 */
function missing(name: string): () => never {
  return () => {
    throw new Error(`${name} is not available in the light client`);
  };
}

/** No native SHA-256 addon in a browser: hash-backend.ts falls back to its reference backend. */
export const existsSync = (): boolean => false;
/** erasure.ts loads Reed-Solomon at the top; the light client never erasure-codes. */
export const createRequire = (): ((id: string) => unknown) => () => ({});
export const fileURLToPath = (url: string | URL): string => new URL(url).pathname;
export const endianness = (): "LE" => "LE";
export const posix = { normalize: (p: string) => p, join: (...p: string[]) => p.join("/") };
export const extname = (p: string): string => /\.[^./]*$/.exec(p)?.[0] ?? "";
export const join = (...p: string[]): string => p.join("/");
export const open = missing("node:fs/promises open");
export const writeFile = missing("node:fs/promises writeFile");
export const createReadStream = missing("node:fs createReadStream");
export const createInterface = missing("node:readline createInterface");
export class Transform {
  constructor() {
    throw new Error("node:stream is not available in the light client");
  }
}
export default {};
