/**
 * How the tests start a TypeScript child process: `node --import TS_LOADER script.ts`, with the
 * project's in-thread loader (bin/ts-register.mjs, as `muri` and `npm test` use it), which starts
 * in about half the CPU time of `--import tsx`.
 */
import { fileURLToPath, pathToFileURL } from "node:url";

export const TS_LOADER = pathToFileURL(fileURLToPath(new URL("../../bin/ts-register.mjs", import.meta.url))).href;
