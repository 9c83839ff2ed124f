// `npm start`: the main job. Starts `muri devnet` (a local Hardhat chain, the contracts, 5 node
// processes and a validator), uploads a file with `muri put`, downloads it with `muri get` and checks
// the bytes; creates a vector Magu (r = 2), adds 5,000 vectors with `muri vectors add`, searches it
// off-chain (every hit proven) and as an on-chain task with `muri search` and checks both answers
// against brute force; then watches `muri status` until every member has passed a challenge and rewards have arrived,
// and stops the devnet (which stops everything it started).
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { writeNpy } from "../agents/data/vector-files.js";
import { canonicalDistance, compareHits, quantize } from "../agents/data/vectors.js";

const dir = process.env.MURI_DEMO_DIR ?? ".devnet";
const nodes = Number(process.env.MURI_DEMO_NODES ?? 5);
const waitSeconds = Number(process.env.MURI_DEMO_WAIT_SECONDS ?? 240);
const muri = ["bin/muri.js"];

function runMuri(args: string[]): Promise<any> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...muri, ...args, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.once("exit", (code) => {
      if (code === 0) resolve(JSON.parse(out));
      else reject(new Error(`muri ${args[0]} failed (exit ${code}): ${err.trim().split("\n").pop()}`));
    });
  });
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let devnet: ChildProcess | undefined;
async function stopDevnet() {
  if (!devnet || devnet.exitCode !== null) return;
  const exited = new Promise((r) => devnet!.once("exit", r));
  devnet.kill("SIGTERM");
  await Promise.race([exited, sleep(30_000)]);
}
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => void stopDevnet().then(() => process.exit(130)));
}

try {
  await mkdir(dir, { recursive: true });
  devnet = spawn(process.execPath, [...muri, "devnet", "--nodes", String(nodes), "--validators", "1", "--dir", dir, "--json"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const ready = await new Promise<any>((resolve, reject) => {
    const lines = createInterface({ input: devnet!.stdout! });
    lines.on("line", (line) => {
      try {
        const msg = JSON.parse(line);
        if (msg.event === "ready") resolve(msg);
      } catch {
        // not JSON: ignore
      }
    });
    devnet!.once("exit", (code) => reject(new Error(`muri devnet exited with ${code} before it was ready`)));
  });
  const agents = ready.agents ?? [];
  console.log(`devnet: chain ${ready.rpcUrl ?? ""}, ${agents.filter((a: any) => a.role === "node").length} nodes, ${agents.filter((a: any) => a.role === "validator").length} validator(s); ${dir}/devnet.json`);

  const input = join(dir, "demo-input.bin");
  const output = join(dir, "demo-output.bin");
  const file = randomBytes(8 * 1024 * 1024 + 4321);
  await writeFile(input, file);
  let t = Date.now();
  const put = await runMuri(["put", input, "--devnet", dir, "--data-shards", "3", "--parity-shards", "2"]);
  console.log(`put: ${file.length} bytes -> Magu ${put.maguId}, manifest ${put.manifestCid} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  t = Date.now();
  await runMuri(["get", put.manifestCid, "-o", output, "--devnet", dir]);
  const same = sha256(await readFile(output)) === sha256(file);
  console.log(`get: ${same ? "identical bytes" : "BYTES DIFFER"} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  if (!same) throw new Error("the downloaded file differs from the uploaded one");

  // Vectors: a seeded mixture of 16 clusters in 32 dimensions, ids 0..4999.
  const dim = 32;
  const count = 5000;
  let seed = 2026;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const centres = Array.from({ length: 16 }, () => Array.from({ length: dim }, () => gauss() * 0.3));
  const point = () => centres[Math.floor(rand() * centres.length)]!.map((c) => Math.max(-1.9, Math.min(1.9, c + gauss() * 0.2)));
  const data = Array.from({ length: count }, point);
  const vectorsFile = join(dir, "demo-vectors.npy");
  await writeNpy(vectorsFile, data.flat(), dim);
  const magu = await runMuri(["magu", "create", "--kind", "vector", "--dim", String(dim), "--metric", "l2", "--replication", "2", "--members", String(Math.min(5, nodes)), "--fragments", "32", "--periods", "1000", "--price", "0.000001", "--devnet", dir]);
  t = Date.now();
  const added = await runMuri(["vectors", "add", "--magu", String(magu.id), vectorsFile, "--devnet", dir]);
  console.log(`vectors add: ${added.vectors} vectors of dimension ${dim} -> vector Magu ${magu.id}, ${added.fragments} fragments, scale 2^${added.scaleExp}, r = 2 (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  const query = point();
  // Brute force at the Magu's quantization scale (chosen by this first batch, printed by vectors add).
  const scale = 2 ** added.scaleExp;
  const q = quantize(query, dim, 0, scale);
  const truth = data
    .map((v, id) => ({ id: BigInt(id), distance: canonicalDistance("l2", q, quantize(v, dim, id, scale)) }))
    .sort(compareHits)
    .slice(0, 5)
    .map((h) => h.id.toString());
  const sameAsTruth = (results: Array<{ id: string }>) => results.map((r) => r.id).join(",") === truth.join(",");
  let offchain: any;
  for (let attempt = 0; ; attempt++) {
    // the members index their fragments as they arrive: retry briefly until every fragment answers
    offchain = await runMuri(["search", "--magu", String(magu.id), "--vector", JSON.stringify(query), "-k", "5", "--devnet", dir]);
    if (offchain.complete || attempt >= 20) break;
    await sleep(1_000);
  }
  console.log(
    `search (off-chain): top-5 ids ${offchain.results.map((r: any) => r.id).join(", ")} in ${offchain.ms} ms, ` +
      `${offchain.verified ? "every hit's Merkle proof checked against the Magu's root" : "NOT VERIFIED"}, ${sameAsTruth(offchain.results) ? "equal to brute force" : "DIFFERENT FROM BRUTE FORCE"}`,
  );
  if (!offchain.verified || offchain.rejected.length > 0) throw new Error(`the off-chain answer was not verified (rejected: ${JSON.stringify(offchain.rejected)})`);
  const onchain = await runMuri(["search", "--magu", String(magu.id), "--vector", JSON.stringify(query), "-k", "5", "--onchain", "--devnet", dir]);
  console.log(`search (on-chain task ${onchain.task}): top-5 ids ${onchain.results.map((r: any) => r.id).join(", ")}, finalized ${Number(onchain.finalizedBlock) - Number(onchain.submitBlock)} blocks after submit (${(onchain.ms / 1000).toFixed(1)} s), ${sameAsTruth(onchain.results) ? "equal to brute force" : "DIFFERENT FROM BRUTE FORCE"}`);
  if (!sameAsTruth(offchain.results) || !sameAsTruth(onchain.results)) throw new Error("a search answer differs from the brute-force top-5");

  const deadline = Date.now() + waitSeconds * 1000;
  let last = "";
  for (;;) {
    const status = await runMuri(["status", "--devnet", dir]);
    const members = new Set<string>((status.magus?.find((m: any) => String(m.id) === String(put.maguId))?.members ?? []).map((a: string) => a.toLowerCase()));
    const memberNodes = (status.nodes ?? []).filter((n: any) => members.has(String(n.address).toLowerCase()));
    const proved = memberNodes.filter((n: any) => (n.proofs?.passed ?? 0) > 0).length;
    const rewarded = (status.nodes ?? []).filter((n: any) => BigInt(n.claimable?.rewards ?? 0) > 0n).length;
    const line = `period ${status.period} epoch ${status.epoch}: ${proved}/${members.size} members passed a challenge, ${rewarded} accounts with rewards`;
    if (line !== last) console.log(line);
    last = line;
    if (proved === members.size && members.size > 0 && rewarded > 0) break;
    if (Date.now() > deadline) throw new Error(`no full round of proofs and rewards within ${waitSeconds} s`);
    await sleep(5_000);
  }
  console.log("demo finished: upload, download, vector search off-chain and on-chain, proofs passing and rewards arriving");
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await stopDevnet();
  await rm(join(dir, "demo-input.bin"), { force: true });
  await rm(join(dir, "demo-output.bin"), { force: true });
  await rm(join(dir, "demo-vectors.npy"), { force: true });
}
