import { expect } from "chai";
import { id } from "ethers";
import { deployAll } from "./helpers/fixture.js";

describe("Ignition deployment", () => {
  it("deploys the six contracts with their roles granted", async () => {
    const d = await deployAll();
    const [rewards, magu, challenge, search] = await Promise.all([
      d.rewards.getAddress(),
      d.maguRegistry.getAddress(),
      d.challengeManager.getAddress(),
      d.searchMarket.getAddress(),
    ]);
    expect(await d.token.hasRole(id("MINTER_ROLE"), rewards)).to.equal(true);
    expect(await d.token.hasRole(id("MINTER_ROLE"), d.signers[0].address)).to.equal(false);
    expect(await d.nodeRegistry.hasRole(id("MODULE_ROLE"), magu)).to.equal(true);
    expect(await d.nodeRegistry.hasRole(id("SLASHER_ROLE"), challenge)).to.equal(true);
    expect(await d.nodeRegistry.hasRole(id("REPUTATION_ROLE"), challenge)).to.equal(true);
    expect(await d.maguRegistry.hasRole(id("CHALLENGE_ROLE"), challenge)).to.equal(true);
    expect((await d.challengeManager.config()).slashSink).to.equal(rewards);
    expect(await d.nodeRegistry.hasRole(id("SLASHER_ROLE"), search)).to.equal(true);
    expect(await d.nodeRegistry.hasRole(id("REPUTATION_ROLE"), search)).to.equal(true);
    expect(await d.nodeRegistry.hasRole(id("MODULE_ROLE"), search)).to.equal(false);
    const c = await d.searchMarket.config();
    expect([c.token, c.nodeRegistry, c.maguRegistry]).to.deep.equal([
      await d.token.getAddress(),
      await d.nodeRegistry.getAddress(),
      magu,
    ]);
    expect([c.commitBlocks, c.revealBlocks, c.disputeBlocks, c.maxK]).to.deep.equal([8n, 8n, 8n, 100n]);
    expect(c.disputeSlash).to.equal(50n * 10n ** 18n);
    expect(c.disputerBps).to.equal(5_000n);
    expect(c.slashSink).to.equal(rewards);
    expect((await d.challengeManager.config()).markWindowBlocks).to.equal(30n);
    expect(c.revealPenalty).to.equal(10n);
  });
});
