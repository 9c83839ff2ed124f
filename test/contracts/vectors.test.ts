import { expect } from "chai";
import { readFile } from "node:fs/promises";
import { network } from "hardhat";
import { generateVectors } from "./helpers/vectors.js";

describe("shared test vectors", () => {
  it("the committed test/vectors/*.json are what the contracts compute today", async () => {
    const connection = await network.create();
    const fresh = await generateVectors(connection);
    for (const [name, body] of Object.entries(fresh)) {
      const committed = JSON.parse(await readFile(new URL(`../vectors/${name}.json`, import.meta.url), "utf8"));
      expect(JSON.parse(JSON.stringify(body)), `test/vectors/${name}.json is stale: run npm run vectors`).to.deep.equal(committed);
    }
    await connection.close();
  });
});
