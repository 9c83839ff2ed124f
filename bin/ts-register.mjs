// `node --import <this file> script.ts`: loads the project's TypeScript with the in-thread hooks of
// ts-hooks.mjs (the agent processes, their index workers and the test files run so; see there).
// A script among the bundled entry points (the node and validator agents) is served as one bundle.
import { resolve, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isMainThread } from "node:worker_threads";
import { loadTypeScript } from "./ts-hooks.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const entry = isMainThread && process.argv[1] !== undefined ? [resolve(process.argv[1])] : [];
if (!(await loadTypeScript(root, entry))) {
  throw new Error(`muri: dependencies are not installed: run \`npm install\` (or \`bash scripts/node22.sh true\`) in ${root}`);
}
