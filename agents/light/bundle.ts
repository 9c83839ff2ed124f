/**
 * Builds the light client's browser bundle (page/main.ts and what it imports) with esbuild, in
 * memory, the first time the page is asked for: nothing generated is committed. The agents' data
 * code is shared as it is: `Buffer` is injected from the `buffer` package, and the `node:` modules
 * agents/data imports are mapped to shims/ (SHA-256 from @noble/hashes; the rest loads but throws
 * if called, which the light client never does). `process.env.MURI_SHA256_BACKEND` is fixed to
 * `node`, so hash-backend.ts never looks for its native addon.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";
import type { Deployment } from "../chain/index.js";
import type { DashboardLightClient } from "../roles/shared/dashboard.js";

const HERE = dirname(fileURLToPath(import.meta.url));
/** The page's static file (served as `/light`). */
export const LIGHT_PAGE_HTML = join(HERE, "page", "index.html");

const nodeShims: Plugin = {
  name: "muri-node-shims",
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: join(HERE, "shims", args.path === "node:crypto" ? "node-crypto.ts" : "node-stub.ts") }));
  },
};

/**
 * `entry` and what it imports as one browser ES module, in memory, with the shims above (the light
 * page's bundle; bench/light-index.ts bundles its own page the same way).
 */
export async function bundleForBrowser(entry: string): Promise<string> {
  const r = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    sourcemap: false,
    legalComments: "none",
    inject: [join(HERE, "shims", "buffer.ts")],
    define: { "process.env.MURI_SHA256_BACKEND": '"node"', global: "globalThis" },
    plugins: [nodeShims],
    logLevel: "silent",
  });
  return r.outputFiles[0]!.text;
}

let bundled: Promise<string> | undefined;

/** The bundle's JavaScript (an ES module), built once per process. */
export function lightBundle(): Promise<string> {
  bundled ??= bundleForBrowser(join(HERE, "page", "main.ts"));
  bundled.catch(() => (bundled = undefined));
  return bundled;
}

/** The light client as the dashboard server carries it (`/light`), reading `deployment` through `rpcUrl`. */
export function lightClientPage(deployment: Deployment, rpcUrl: string): DashboardLightClient {
  const { nodeRegistry, maguRegistry, maguAccess } = deployment.contracts;
  return { page: LIGHT_PAGE_HTML, script: lightBundle, config: { rpcUrl, chainId: deployment.chainId, contracts: { nodeRegistry, maguRegistry, maguAccess } } };
}
