// Writes test/vectors/{merkle,placement,challenge}.json from the contracts (run: npm run vectors).
import { writeFile } from "node:fs/promises";
import { network } from "hardhat";
import { generateVectors } from "../test/contracts/helpers/vectors.js";

const connection = await network.create();
const vectors = await generateVectors(connection);
for (const [name, body] of Object.entries(vectors)) {
  const path = new URL(`../test/vectors/${name}.json`, import.meta.url);
  await writeFile(path, JSON.stringify(body, null, 2) + "\n");
  console.log(`wrote test/vectors/${name}.json`);
}
await connection.close();
