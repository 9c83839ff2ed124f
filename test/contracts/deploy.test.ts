import { expect } from "chai";
import { ZeroHash, id } from "ethers";
import { deployAll } from "./helpers/fixture.js";

describe("Ignition deployment", () => {
  it("deploys the seven contracts with their roles granted", async () => {
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
    // MaguAccess: no roles, over the token and MaguRegistry, with the default withdrawal delay.
    const a = await d.maguAccess.config();
    expect([a.token, a.maguRegistry, a.withdrawDelayBlocks]).to.deep.equal([await d.token.getAddress(), magu, 20n]);
    const access = await d.maguAccess.getAddress();
    for (const role of ["MODULE_ROLE", "SLASHER_ROLE", "REPUTATION_ROLE"]) {
      expect(await d.nodeRegistry.hasRole(id(role), access)).to.equal(false);
    }
  });

  /**
   * Issue 11.7: the deployer kept DEFAULT_ADMIN_ROLE everywhere and could grant itself minting or
   * slashing at once. Administration now sits with a timelock: the deployer holds no admin role,
   * cannot grant itself MINTER_ROLE, and an operation it schedules through the timelock runs only
   * after the public delay.
   */
  it("hands administration to the timelock: the deployer cannot mint for itself before a public delay", async () => {
    const d = await deployAll();
    const deployer = d.signers[0]!;
    const timelock = await d.timelock.getAddress();
    for (const c of [d.token, d.nodeRegistry, d.maguRegistry]) {
      expect(await c.hasRole(ZeroHash, deployer.address)).to.equal(false);
      expect(await c.hasRole(ZeroHash, timelock)).to.equal(true);
    }
    await expect(d.token.connect(deployer).grantRole(id("MINTER_ROLE"), deployer.address))
      .to.be.revertedWithCustomError(d.token, "AccessControlUnauthorizedAccount")
      .withArgs(deployer.address, ZeroHash);

    const delay = await d.timelock.getMinDelay();
    expect(delay).to.equal(172_800n);
    const call = d.token.interface.encodeFunctionData("grantRole", [id("MINTER_ROLE"), deployer.address]);
    const target = await d.token.getAddress();
    await (await d.timelock.schedule(target, 0n, call, ZeroHash, ZeroHash, delay)).wait();
    await expect(d.timelock.execute(target, 0n, call, ZeroHash, ZeroHash)).to.be.revertedWithCustomError(
      d.timelock,
      "TimelockUnexpectedOperationState",
    );
    expect(await d.token.hasRole(id("MINTER_ROLE"), deployer.address)).to.equal(false);
    await d.networkHelpers.time.increase(delay);
    await (await d.timelock.execute(target, 0n, call, ZeroHash, ZeroHash)).wait();
    expect(await d.token.hasRole(id("MINTER_ROLE"), deployer.address)).to.equal(true);
  });
});
