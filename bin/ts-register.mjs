// `node --import <this file> script.ts`: loads the project's TypeScript with the in-thread hooks of
// ts-hooks.mjs (the agent processes, their index workers and the test files run so; see there).
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadTypeScript } from "./ts-hooks.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
if (!(await loadTypeScript(root))) {
  throw new Error(`muri: dependencies are not installed: run \`npm install\` (or \`bash scripts/node22.sh true\`) in ${root}`);
}
