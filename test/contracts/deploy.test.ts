import { expect } from "chai";
import { id } from "ethers";
import { deployAll } from "./helpers/fixture.js";

describe("Ignition deployment", () => {
  it("deploys the five contracts with their roles granted", async () => {
    const d = await deployAll();
    const [rewards, magu, challenge] = await Promise.all([
      d.rewards.getAddress(),
      d.maguRegistry.getAddress(),
      d.challengeManager.getAddress(),
    ]);
    expect(await d.token.hasRole(id("MINTER_ROLE"), rewards)).to.equal(true);
    expect(await d.token.hasRole(id("MINTER_ROLE"), d.signers[0].address)).to.equal(false);
    expect(await d.nodeRegistry.hasRole(id("MODULE_ROLE"), magu)).to.equal(true);
    expect(await d.nodeRegistry.hasRole(id("SLASHER_ROLE"), challenge)).to.equal(true);
    expect(await d.nodeRegistry.hasRole(id("REPUTATION_ROLE"), challenge)).to.equal(true);
    expect(await d.maguRegistry.hasRole(id("CHALLENGE_ROLE"), challenge)).to.equal(true);
    expect((await d.challengeManager.config()).slashSink).to.equal(rewards);
  });
});
