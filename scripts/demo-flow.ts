// The on-chain half of `npm start`: against the chain deployed by scripts/deploy-local.ts
// (MURI_DEPLOYMENT_FILE), stake five nodes and a validator, create a blob Magu, encode a file
// (encrypt + Reed-Solomon) into shards, commit their Merkle root, answer every member's first
// challenge with real proofs, finalise a rewards epoch, and print what happened.
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { formatEther } from "ethers";
import { encodeFile, type EncodedShard } from "../agents/data/pipeline.js";
import { attachAll, E18 } from "../test/contracts/helpers/fixture.js";
import { buildData, buildProofs, createAndForm, enterPeriod, registerNodes, tokenBooks } from "../test/contracts/helpers/scenario.js";

const deployment = JSON.parse(await readFile(process.env.MURI_DEPLOYMENT_FILE ?? "deployments/31337.json", "utf8"));
const d = await attachAll(deployment.contracts);
const [, ...accounts] = d.signers;
const nodes = accounts.slice(0, 5);
const validator = accounts[5]!;
const client = accounts[6]!;
const short = (a: string) => `${a.slice(0, 8)}…`;

await registerNodes(d, nodes);
await registerNodes(d, [validator], 3_000n * E18, 2);
console.log(`staked: 5 nodes x 2000 MURI, 1 validator x 3000 MURI (${(await d.nodeRegistry.nodeCount())} registered)`);

const k = 3;
const m = 2;
const file = randomBytes(3 * 1024 * 1024 + 12345);
const shards: EncodedShard[] = [];
const encoded = await encodeFile(file, { secret: randomBytes(32), k, m }, (s) => void shards.push(...s));
console.log(`file: ${file.length} bytes -> ${shards.length} shards (k=${k}, m=${m}, encrypted), manifest ${encoded.manifestCid}`);

const { id, info } = await createAndForm(d, client, {
  kind: 0, members: 5, dataShards: k, parityShards: m, maxFragments: shards.length, durationPeriods: 4,
});
console.log(`magu #${id}: formed with members ${info.members.map(short).join(" ")}, periods ${info.startPeriod}..${info.endPeriod - 1n}`);

const data = buildData(shards.map((s) => s.bytes));
await (await d.maguRegistry.connect(client).commitData(id, data.tree.root, shards.length)).wait();
console.log(`commit: root 0x${data.tree.root.toString("hex").slice(0, 16)}… over ${shards.length} fragment roots`);

await enterPeriod(d, info.startPeriod);
for (const member of info.members) {
  const proofs = await buildProofs(d, id, member, info.startPeriod, data);
  await (await d.challengeManager.connect(await d.ethers.getSigner(member)).submitProof(id, info.startPeriod, proofs)).wait();
  console.log(`period ${info.startPeriod}: ${short(member)} proved fragments [${proofs.map((p) => p.fragment).join(", ")}]`);
}

const epoch = await d.rewards.currentEpoch();
const sorted = nodes.map((n) => n.address).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
await (await d.rewards.connect(validator).submitWeights(epoch, sorted, sorted.map(() => 1n))).wait();
const epochBlocks = BigInt(deployment.parameters?.epochBlocks ?? 40);
await d.networkHelpers.mine(Number(epochBlocks));
await (await d.rewards.finalizeEpoch(epoch)).wait();
for (const n of nodes.slice(0, 2)) {
  console.log(`epoch ${epoch}: node ${short(n.address)} earned ${formatEther(await d.rewards.claimable(n.address))} MURI`);
}
console.log(`epoch ${epoch}: validator ${short(validator.address)} earned ${formatEther(await d.rewards.claimable(validator.address))} MURI`);
const { held, owed } = await tokenBooks(d);
console.log(`books: contracts hold ${formatEther(held)} MURI, owe ${formatEther(owed)} MURI (${held === owed ? "balanced" : "MISMATCH"})`);
if (held !== owed) process.exitCode = 1;
