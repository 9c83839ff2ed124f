/**
 * bin/ts-hooks.mjs serves the CLI's and the agents' entry points as one cached esbuild bundle,
 * loaded from its file so that V8's compile cache serves its code. A bundle must behave as the files
 * it replaces (a source file's `import.meta.url` is still its own URL), be rebuilt when any file in
 * it or the installed dependencies change, and be built by one process at a time. The real entry
 * points must bundle and be served from the compile cache: a failure would only fall back to the
 * per-file loader or a full compile, silently and slower.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { ROOT } from "./run-muri.js";

interface TsHooks {
  BUNDLED_ENTRIES: string[];
  bundleFor(root: string, esbuild: unknown, entry: string): Promise<string | undefined>;
}
const hooks = (await import(pathToFileURL(join(ROOT, "bin", "ts-hooks.mjs")).href)) as TsHooks;
const require = createRequire(join(ROOT, "package.json"));
const esbuild: unknown = require(require.resolve("esbuild", { paths: [join(ROOT, "node_modules", "tsx")] }));

let work: string | undefined;
after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** A checkout of two files: main.ts imports ./here.js (here.ts), which reports its own URL. */
async function project(): Promise<{ root: string; entry: string; bundles: string }> {
  work ??= await mkdtemp(join(tmpdir(), "muri-ts-bundle-"));
  const root = await mkdtemp(join(work, "p-"));
  await mkdir(join(root, "src"), { recursive: true });
  await writeFile(join(root, "package-lock.json"), '{"lockfileVersion":3}');
  await writeFile(
    join(root, "src", "here.ts"),
    'export const here: string = import.meta.url;\nexport const where = [import.meta.filename, import.meta.dirname, import.meta.resolve("./main.ts")];\nexport const version = 1;\n',
  );
  await writeFile(join(root, "src", "main.ts"), 'import * as h from "./here.js";\nexport const report = { ...h };\n');
  return { root, entry: join(root, "src", "main.ts"), bundles: join(root, "node_modules", ".cache", "muri-ts", "bundles") };
}

/** Imports a copy of a bundle (a fresh URL each time: the module cache keeps the first import of a path). */
async function run(root: string, bundle: string, n: number): Promise<{ here: string; version: number; where?: string[] }> {
  const file = join(root, "src", `bundle-${n}.mjs`);
  await writeFile(file, readFileSync(bundle));
  return ((await import(pathToFileURL(file).href)) as { report: { here: string; version: number; where?: string[] } }).report;
}

describe("bundled entry points (bin/ts-hooks.mjs)", () => {
  test("a bundle keeps each file's own import.meta.url, is cached, and is rebuilt when a file in it changes", async () => {
    const { root, entry, bundles } = await project();
    const first = await hooks.bundleFor(root, esbuild, entry);
    assert.ok(first !== undefined);
    const here = join(root, "src", "here.ts");
    assert.deepEqual(await run(root, first, 1), { here: pathToFileURL(here).href, version: 1, where: [here, join(root, "src"), pathToFileURL(join(root, "src", "main.ts")).href] });
    const files = await readdir(bundles);
    const manifest = files.find((f) => f.endsWith(".json"))!;
    const bundle = files.find((f) => f.endsWith(".mjs"))!;
    assert.deepEqual(Object.keys((JSON.parse(readFileSync(join(bundles, manifest), "utf8")) as { inputs: object }).inputs).sort(), [join(root, "src", "here.ts"), join(root, "src", "main.ts")]);

    // Unchanged: the cached bundle, not a new build.
    const past = new Date(Date.now() - 60_000);
    await utimes(join(bundles, bundle), past, past);
    assert.equal(await hooks.bundleFor(root, esbuild, entry), first);
    assert.ok(Math.abs(statSync(join(bundles, bundle)).mtimeMs - past.getTime()) < 1, "the bundle was not written again");

    // A file the entry imports changes (same size, same mtime would not fool a content hash).
    await writeFile(join(root, "src", "here.ts"), 'export const here: string = import.meta.url;\nexport const version = 2;\n');
    const second = await hooks.bundleFor(root, esbuild, entry);
    assert.equal((await run(root, second!, 2)).version, 2);

    // The installed dependencies change: rebuilt too.
    await utimes(join(bundles, bundle), past, past);
    await writeFile(join(root, "package-lock.json"), '{"lockfileVersion":3,"packages":{}}');
    assert.equal(await hooks.bundleFor(root, esbuild, entry), second);
    assert.ok(statSync(join(bundles, bundle)).mtimeMs > past.getTime(), "rebuilt after the lockfile changed");
  });

  test("one builder at a time: a fresh lock leaves the entry to the per-file loader; a stale one is taken over", async () => {
    const { root, entry, bundles } = await project();
    assert.ok((await hooks.bundleFor(root, esbuild, entry)) !== undefined);
    const name = (await readdir(bundles)).find((f) => f.endsWith(".mjs"))!.replace(/\.mjs$/, "");
    await writeFile(join(root, "src", "here.ts"), "export const here = 'x';\nexport const version = 3;\n");
    const lock = join(bundles, `${name}.lock`);
    await writeFile(lock, "");
    assert.equal(await hooks.bundleFor(root, esbuild, entry), undefined, "another process is building");
    const old = new Date(Date.now() - 10 * 60_000);
    await utimes(lock, old, old);
    const code = await hooks.bundleFor(root, esbuild, entry);
    assert.equal((await run(root, code!, 3)).version, 3);
    assert.equal(existsSync(lock), false, "the lock is released");
  });

  test("a build removes the bundles of entry points that are gone (a deleted checkout)", async () => {
    const { root, entry, bundles } = await project();
    await writeFile(join(root, "src", "other.ts"), "export const other = 1;\n");
    await hooks.bundleFor(root, esbuild, entry);
    await hooks.bundleFor(root, esbuild, join(root, "src", "other.ts"));
    assert.equal((await readdir(bundles)).filter((f) => f.endsWith(".json")).length, 2);
    await rm(join(root, "src", "other.ts"));
    await writeFile(join(root, "src", "here.ts"), "export const here = 'y';\nexport const version = 4;\n");
    assert.equal((await run(root, (await hooks.bundleFor(root, esbuild, entry))!, 4)).version, 4);
    const left = await readdir(bundles);
    assert.equal(left.filter((f) => f.endsWith(".json")).length, 1, left.join(" "));
    assert.equal(left.filter((f) => f.endsWith(".mjs") || f.endsWith(".map")).length, 2, "main.ts's bundle and map are kept");
  });

  test("a file that does not compile is an error (the loader then falls back to loading file by file)", async () => {
    const { root, entry } = await project();
    await writeFile(join(root, "src", "here.ts"), "export const here = ;\n");
    await assert.rejects(hooks.bundleFor(root, esbuild, entry), /Expected expression|Unexpected/);
  });

  test("the CLI and both agents bundle", async () => {
    for (const entry of hooks.BUNDLED_ENTRIES) {
      const file = await hooks.bundleFor(ROOT, esbuild, join(ROOT, entry));
      // Undefined only while another process (a parallel test lane) builds the same bundle.
      if (file !== undefined) assert.match(readFileSync(file, "utf8"), /__muriMetaResolve/, entry);
    }
  });

  test("a muri command loads its bundle from the file, through V8's compile cache", () => {
    const muri = (): string => {
      const run = spawnSync(process.execPath, [join(ROOT, "bin", "muri.js"), "--help"], { env: { ...process.env, NODE_DEBUG_NATIVE: "COMPILE_CACHE" }, encoding: "utf8" });
      assert.equal(run.status, 0, run.stderr);
      return run.stderr;
    };
    // The first run may build the bundle or write its cache; a later one reads both. A run that
    // meets another process building the bundle loads file by file: a few more tries then.
    const accepted = /cache for file:\/\/\S+\/muri-ts\/bundles\/\w+\.mjs was accepted/;
    let log = muri();
    for (let i = 0; i < 5 && !accepted.test(log); i++) log = muri();
    assert.match(log, accepted, log.split("\n").filter((l) => l.includes("bundles")).join("\n"));
  });
});
