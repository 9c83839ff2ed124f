#!/usr/bin/env node
// The `muri` command: runs agents/cli/main.ts under Node >= 22. On an older node it re-executes
// itself with the Node 22 that scripts/node22.sh installs into .tools/, if present.
// TypeScript is loaded by the in-thread hooks of ts-hooks.mjs.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { loadTypeScript } from "./ts-hooks.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const major = Number(process.versions.node.split(".")[0]);

if (major < 22) {
  const tool = join(root, ".tools", "node-22.23.3", "node_modules", "node", "bin", "node");
  if (!existsSync(tool)) {
    console.error(
      `muri: needs Node >= 22 (this is ${process.version}): run it as \`bash scripts/node22.sh npx muri ...\` (it installs Node 22 into .tools/ once)`,
    );
    process.exit(1);
  }
  const child = spawn(tool, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? (signal === "SIGINT" ? 130 : 143)));
} else {
  const mainTs = join(root, "agents", "cli", "main.ts");
  if (!(await loadTypeScript(root, [mainTs]))) {
    console.error(`muri: dependencies are not installed: run \`npm install\` (or \`bash scripts/node22.sh true\`) in ${root}`);
    process.exit(1);
  }
  const { main } = await import(pathToFileURL(mainTs).href);
  await main(process.argv.slice(2));
}
