// Lint for the TypeScript tree (agents, scripts, tests, benchmarks, deployment); run by `npm test`
// through `npm run lint`. typescript-eslint's recommended rules, without type information (tsc
// already typechecks), plus a few rules that catch real bugs in async agent code.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: ["node_modules/", ".tools/", "artifacts/", "cache/", "typechain-types/", "types/", "coverage/", ".devnet/", "agents/data/native/build/", "bench/results/", ".stryker-tmp/", "reports/"],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: "module",
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        setImmediate: "readonly",
        queueMicrotask: "readonly",
        AbortController: "readonly",
        AbortSignal: "readonly",
        performance: "readonly",
        URL: "readonly",
        TextEncoder: "readonly",
        TextDecoder: "readonly",
        structuredClone: "readonly",
        fetch: "readonly",
      },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      "no-constant-condition": ["error", { checkLoops: false }],
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-return-await": "off",
      "prefer-const": "error",
    },
  },
  {
    // The dashboard page (served as is to a browser, no build step).
    files: ["agents/roles/shared/dashboard/**/*.js"],
    languageOptions: { globals: { document: "readonly", Node: "readonly", window: "readonly" } },
  },
  {
    // The agents' async code: a promise nobody awaits or catches loses its error (and can crash
    // the process on rejection). These two rules need type information.
    files: ["agents/**/*.ts"],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      // viem caches the block number for the client's polling interval (4 s over HTTP): a wait for
      // a block that reads it without `{ cacheTime: 0 }` sees a stale head (it cost a put 3 s).
      "no-restricted-syntax": [
        "error",
        {
          selector: "CallExpression[callee.property.name='getBlockNumber'][arguments.length=0]",
          message: "getBlockNumber() returns a cached head: pass { cacheTime: 0 }",
        },
      ],
    },
  },
  // Layers: data/, store/, p2p/, chain/ and index/ never import roles/, light/ or cli/; inside
  // roles/, each role folder (node/, validator/, client/) builds on shared/ and never on another
  // role; light/ (the browser light client) builds on data/, p2p/, chain/ and roles/shared/ but not
  // on store/ or index/ (LevelDB, hnswlib: not in a browser) nor on a role; sdk/ on nothing of the agents.
  ...[
    { files: ["agents/{data,store,p2p,chain,index}/**/*.ts"], banned: ["**/roles/**", "**/cli/**", "**/light/**"] },
    { files: ["agents/roles/shared/**/*.ts"], banned: ["../node/*", "../validator/*", "../client/*", "**/cli/**", "**/light/**"] },
    { files: ["agents/roles/node/**/*.ts"], banned: ["../validator/*", "../client/*", "**/cli/**", "**/light/**"] },
    { files: ["agents/roles/validator/**/*.ts"], banned: ["../node/*", "../client/*", "**/cli/**", "**/light/**"] },
    { files: ["agents/roles/client/**/*.ts"], banned: ["../node/*", "../validator/*", "**/cli/**", "**/light/**"] },
    { files: ["agents/light/**/*.ts"], banned: ["**/store/**", "**/index/**", "**/roles/node/**", "**/roles/validator/**", "**/roles/client/**", "**/cli/**"] },
    // The SDK (agents/sdk) talks to muri serve over HTTP alone: it imports nothing of the agents.
    { files: ["agents/sdk/**/*.ts"], banned: ["../*", "../**"] },
  ].map(({ files, banned }) => ({
    files,
    rules: {
      "no-restricted-imports": ["error", { patterns: [{ group: banned, message: "a lower layer (or another role) may not import this; see docs/ARCHITECTURE.md" }] }],
    },
  })),
  {
    // Scripts, benchmarks and tests read the JSON that `muri --json` and other processes print.
    files: ["scripts/**", "bench/**", "test/**"],
    rules: { "@typescript-eslint/no-explicit-any": "off" },
  },
);
