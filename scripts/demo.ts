// `npm start`: starts a local Hardhat chain, deploys the contracts with Ignition, runs the on-chain
// demo (scripts/demo-flow.ts) against it and stops the chain. Everything it starts, it stops.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";

const dir = process.env.MURI_DEMO_DIR ?? ".devnet";
await mkdir(dir, { recursive: true });

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function waitForRpc(url: string, chain: ChildProcess, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (chain.exitCode !== null) throw new Error(`hardhat node exited with code ${chain.exitCode}`);
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      });
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`hardhat node did not answer at ${url} within ${timeoutMs} ms`);
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: "inherit", env });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")} exited with ${code}`))));
  });
}

const port = await freePort();
const rpcUrl = `http://127.0.0.1:${port}`;
const chain = spawn("hardhat", ["node", "--hostname", "127.0.0.1", "--port", String(port)], {
  stdio: ["ignore", "ignore", "inherit"],
  detached: false,
});
const stop = () => {
  if (chain.exitCode === null) chain.kill("SIGTERM");
};
process.once("SIGINT", () => (stop(), process.exit(130)));
process.once("SIGTERM", () => (stop(), process.exit(143)));

try {
  await waitForRpc(rpcUrl, chain);
  console.log(`chain: hardhat node at ${rpcUrl}`);
  const env = { ...process.env, MURI_RPC_URL: rpcUrl, MURI_DEPLOYMENT_FILE: `${dir}/deployment.json` };
  await run("hardhat", ["run", "scripts/deploy-local.ts", "--network", "localhost"], env);
  await run("hardhat", ["run", "scripts/demo-flow.ts", "--network", "localhost"], env);
  console.log("demo finished; chain stopped");
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  stop();
}
