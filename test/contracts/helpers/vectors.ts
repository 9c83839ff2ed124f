import { createHash } from "node:crypto";
import type { NetworkConnection } from "hardhat/types/network";

/**
 * Produces the shared test vectors (test/vectors/*.json) from the Solidity side: the
 * EncodingHarness builds the trees and placements, ChallengeManager.deriveChallenge the challenges.
 * `npm run vectors` writes them; test/contracts/vectors.test.ts checks the committed files still
 * match the contracts; the agents' tests reproduce them in TypeScript.
 */

/** Deterministic bytes: sha256(label ‖ counter) blocks. */
export function seededBytes(label: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let off = 0, i = 0; off < size; off += 32, i++) {
    createHash("sha256").update(`${label}:${i}`).digest().copy(out, off, 0, Math.min(32, size - off));
  }
  return out;
}

const hex = (b: Uint8Array) => "0x" + Buffer.from(b).toString("hex");
const seed32 = (label: string) => hex(seededBytes(label, 32));

export async function generateVectors(connection: NetworkConnection<"generic">) {
  const { ethers } = connection as any;
  const harness = await ethers.deployContract("EncodingHarness");
  const challengeManager = await deployChallengeView(ethers);

  // ---- merkle
  const sizes = [0, 1, 1023, 1024, 1025, 3072, 4096, 5000, 9216];
  const fragments = [];
  for (const size of sizes) {
    const data = seededBytes(`fragment-${size}`, size);
    const leafCount = Math.max(1, Math.ceil(size / 1024));
    const indices = [...new Set([0, Math.floor(leafCount / 2), leafCount - 1])];
    const proofs = [];
    let treeRoot = "";
    let fragmentRoot = "";
    for (const index of indices) {
      const r = await harness.fragmentTree(data, index);
      treeRoot = r.treeRoot;
      fragmentRoot = r.fragmentRoot;
      proofs.push({ index, leafHash: r.leafHash, proof: [...r.proof] });
    }
    fragments.push({ size, data: hex(data), leafCount, treeRoot, fragmentRoot, proofs });
  }
  const magus = [];
  for (const count of [1, 2, 3, 5, 8, 9]) {
    const roots = fragments.slice(0, count).map((f) => f.fragmentRoot);
    while (roots.length < count) roots.push(seed32(`root-${roots.length}`));
    const proofs = [];
    let root = "";
    for (let index = 0; index < count; index++) {
      const r = await harness.maguTree(roots, index);
      root = r.root;
      proofs.push({ index, proof: [...r.proof] });
    }
    magus.push({ fragmentRoots: roots, root, proofs });
  }
  const a = seed32("left");
  const b = seed32("right");
  const merkle = {
    description: "docs/ENCODING.md Merkle encoding, generated from contracts/test/EncodingHarness.sol",
    leafSize: 1024,
    hashes: {
      leafOfZeroChunk: await harness.hashLeaf(new Uint8Array(1024)),
      node: { left: a, right: b, hash: await harness.hashNode(a, b) },
      fragmentRoot: { size: 5000, treeRoot: a, hash: await harness.hashFragmentRoot(5000, a) },
    },
    fragments,
    magus,
  };

  // ---- placement
  const vector = [];
  for (const [maguId, slots, replication] of [
    [1, 5, 2],
    [7, 3, 1],
    [42, 8, 3],
    [123456789, 16, 2],
  ]) {
    const groups = [];
    for (let g = 0; g < 12; g++) {
      const top = await harness.topSlots(maguId, g, slots, replication);
      groups.push({ fragment: g, holders: top.map(Number) });
    }
    vector.push({ maguId, slots, replication, groups });
  }
  const blob = [];
  for (const [maguId, slots, k, m] of [
    [2, 5, 3, 2],
    [9, 7, 4, 2],
  ]) {
    const w = k + m;
    const holders = [];
    for (let f = 0; f < 3 * w; f++) {
      const top = await harness.topSlots(maguId, Math.floor(f / w), slots, w);
      holders.push({ fragment: f, holder: Number(top[f % w]) });
    }
    blob.push({ maguId, slots, dataShards: k, parityShards: m, holders });
  }
  const scores = [];
  for (const [maguId, group, slot] of [
    [1, 0, 0],
    [1, 0, 4],
    [99, 12345, 3],
  ]) {
    scores.push({ maguId, group, slot, score: "0x" + (await harness.score(maguId, group, slot)).toString(16).padStart(64, "0") });
  }
  const placement = {
    description: "docs/ENCODING.md rendezvous placement, generated from PlacementLib via EncodingHarness",
    scores,
    vector,
    blob,
  };

  // ---- challenges
  const member = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
  const challenges = [];
  for (const [label, maguId, period, slot, slots, replication, stripeWidth, fragmentCount] of [
    ["vector-small", 1, 3, 0, 5, 2, 0, 10],
    ["vector-large", 5, 17, 3, 5, 2, 0, 1000],
    ["blob", 2, 8, 4, 5, 0, 5, 25],
    ["blob-narrow", 3, 2, 1, 7, 0, 4, 40],
    ["single", 4, 0, 0, 1, 1, 0, 1],
  ] as const) {
    const periodSeed = seed32(`period-${label}`);
    const items = await challengeManager.deriveChallenge(
      periodSeed, maguId, member, period, slot, slots, replication, stripeWidth, fragmentCount,
    );
    challenges.push({
      label, periodSeed, maguId, member, period, slot, slots, replication, stripeWidth, fragmentCount,
      items: items.map((it: any) => ({ fragment: Number(it.fragment), leafSeed: it.leafSeed.toString() })),
    });
  }
  const challenge = {
    description: "docs/ENCODING.md challenge derivation, generated from ChallengeManager.deriveChallenge (S = 4)",
    samples: 4,
    maxTries: 64,
    cases: challenges,
  };

  return { merkle, placement, challenge };
}

/** A ChallengeManager over a MaguRegistry stub-free deployment, only to call its pure derivation. */
async function deployChallengeView(ethers: any) {
  const [admin] = await ethers.getSigners();
  const token = await ethers.deployContract("MuriToken", [admin.address, admin.address, 0n]);
  const nodes = await ethers.deployContract("NodeRegistry", [
    { token: await token.getAddress(), minStake: 1n, unbondingBlocks: 1n, maxNodes: 8n, selectionEpochBlocks: 2n, reputationDecayBlocks: 0n },
    admin.address,
  ]);
  const magus = await ethers.deployContract("MaguRegistry", [
    {
      token: await token.getAddress(), nodeRegistry: await nodes.getAddress(), genesisBlock: 0n, periodBlocks: 10n,
      stakePerMember: 1n, repairBounty: 1n, maxMembers: 8n, maxFragments: 1024n, maxDurationPeriods: 100n, bountySink: admin.address, fetchFragmentsPerPeriod: 64n,
      formationDeposit: 0n,
      settleDelayBlocks: 30n,
    },
    admin.address,
  ]);
  return ethers.deployContract("ChallengeManager", [
    {
      maguRegistry: await magus.getAddress(), nodeRegistry: await nodes.getAddress(), slashSink: admin.address,
      samples: 4n, slashBps: 500n, markerBps: 5000n, maxMisses: 3n, graceBlocks: 0n, markWindowBlocks: 30n,
    },
  ]);
}
