import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import hardhatToolboxMochaEthers from "@nomicfoundation/hardhat-toolbox-mocha-ethers";
import { configVariable, defineConfig } from "hardhat/config";
import type { HardhatPlugin } from "hardhat/types/plugins";

const require = createRequire(import.meta.url);

// Solidity compiles offline: solc comes from the npm `solc` package (pinned in package.json),
// never from a download.
const SOLC_VERSION = "0.8.28";
const SOLC_PATH = require.resolve("solc/soljson.js");

/** The contracts' settings: what is deployed, gas-snapshotted and tested. */
const CONTRACTS_SOLC = {
  version: SOLC_VERSION,
  path: SOLC_PATH,
  settings: {
    optimizer: { enabled: true, runs: 1000 },
    viaIR: true,
    evmVersion: "cancun",
  },
};

/**
 * The Solidity tests' own code compiles with the legacy pipeline and without the optimizer. The
 * tests deploy the contracts from their artifacts (`vm.getCode`, built with CONTRACTS_SOLC), so the
 * bytecode under test is the bytecode that ships, and call them through interfaces
 * (test/solidity/utils/Deployed.sol), so the test build never compiles the contracts themselves.
 * Wasm solc, CPU: the contracts ~85 s; the tests ~38 s (~230 s through the IR pipeline, which a
 * fresh-clone CI run paid beside the agents' tests). The legacy pipeline reaches 16 stack slots
 * only: a test function with more live values moves some into a helper or a memory array.
 */
const TEST_SOLC = {
  version: SOLC_VERSION,
  path: SOLC_PATH,
  settings: { optimizer: { enabled: false }, viaIR: false, evmVersion: "cancun" },
};

/** Every Solidity file under test/solidity (each is a root of the test build). */
function solidityTestFiles(dir = "test/solidity"): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? solidityTestFiles(`${dir}/${e.name}`) : e.name.endsWith(".sol") ? [`${dir}/${e.name}`] : [],
  );
}

/**
 * Hardhat merges compilation jobs only when their solc configs are the same object, and it resolves
 * each override into an object of its own: every test file would be a job of its own, each
 * compiling all the contracts it imports again. This plugin makes the resolved overrides share
 * one object, so the tests build as one job.
 */
const sharedTestCompilerConfig: HardhatPlugin = {
  id: "muri:shared-test-compiler-config",
  hookHandlers: {
    config: async () => ({
      default: async () => ({
        resolveUserConfig: async (userConfig, resolveConfigurationVariable, next) => {
          const resolved = await next(userConfig, resolveConfigurationVariable);
          for (const profile of Object.values(resolved.solidity.profiles)) {
            const [first, ...rest] = Object.values(profile.overrides);
            if (first === undefined) continue;
            const same = rest.every((c) => JSON.stringify(c) === JSON.stringify(first));
            if (same) for (const file of Object.keys(profile.overrides)) profile.overrides[file] = first;
          }
          return resolved;
        },
      }),
    }),
  },
};

export default defineConfig({
  plugins: [hardhatToolboxMochaEthers, sharedTestCompilerConfig],
  solidity: {
    compilers: [CONTRACTS_SOLC],
    overrides: Object.fromEntries(solidityTestFiles().map((file) => [file, TEST_SOLC])),
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
      // Tests deploy the contracts from their artifacts (vm.getCode), i.e. the bytecode that ships.
      // ... and the selection gas test writes its figures beside the gas snapshot.
      fsPermissions: { readDirectory: ["artifacts"], writeFile: ["snapshots/selection-gas.json"] },
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
    // Any other EVM chain (a testnet, a node of your own; docs/DEPLOY.md): its RPC URL and the
    // deployer's key are configuration variables, read from the environment or from the keystore
    // (`npx hardhat keystore set MURI_DEPLOYER_KEY`), and only when this network is used.
    muri: {
      type: "http",
      chainType: "l1",
      url: configVariable("MURI_RPC_URL"),
      accounts: [configVariable("MURI_DEPLOYER_KEY")],
    },
  },
});
