import { createRequire } from "node:module";
import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { defineConfig } from "hardhat/config";

const require = createRequire(import.meta.url);

// Solidity compiles offline: solc comes from the npm `solc` package (pinned in package.json),
// never from a download.
const SOLC_VERSION = "0.8.28";

export default defineConfig({
  plugins: [hardhatToolboxMochaEthers],
  solidity: {
    version: SOLC_VERSION,
    path: require.resolve("solc/soljson.js"),
    settings: {
      optimizer: { enabled: true, runs: 1000 },
      viaIR: true,
      evmVersion: "cancun",
    },
  },
  paths: {
    tests: {
      solidity: "test/solidity",
      mocha: "test/contracts",
    },
  },
  typechain: {
    outDir: "typechain-types",
  },
  test: {
    solidity: {
      fuzz: { runs: 256 },
      invariant: { runs: 48, depth: 24, failOnRevert: false },
    },
  },
  networks: {
    localhost: {
      type: "http",
      chainType: "l1",
      url: process.env.MURI_RPC_URL ?? "http://127.0.0.1:8545",
    },
  },
});
