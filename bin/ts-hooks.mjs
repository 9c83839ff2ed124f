// The project's TypeScript loader, for `bin/muri.js` and, through `bin/ts-register.mjs`
// (`node --import <it>`), for the agent processes and test files: in-thread module hooks
// (module.registerHooks, Node >= 22.15) that only touch the project's own .ts files (esbuild, as
// tsx uses it). Several times faster to start than tsx's off-thread hooks, which see every one of
// viem's modules. Older 22.x fall back to tsx.
// Each file's JavaScript is cached under node_modules/.cache/muri-ts/, keyed by its path and
// content: esbuild's transform (a round trip to its service per file) was 1.1 s of the 2.8 s that
// `muri --help` took, on every run.
// A process's entry point among BUNDLED_ENTRIES (the CLI, the node and validator agents) is served
// as one esbuild bundle of it and the project's code and dependencies it imports: resolving and
// loading some 1,700 modules one by one was most of the 2.3 s of CPU each `muri` command and agent
// process spent before doing anything (0.9 s bundled). The bundle is cached under
// node_modules/.cache/muri-ts/bundles/ with the hash of every project file in it and of the
// installed dependencies, and rebuilt when one changes; `MURI_BUNDLE=0` turns it off. The entry's
// URL resolves to the bundle's file, which Node loads itself, with V8's compile cache
// (node_modules/.cache/muri-ts/v8/): served as a string from a hook, 6 MB were parsed and compiled
// again by every process.
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import module, { createRequire } from "node:module";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** Entry points (relative to the checkout) a process may load as one bundle. */
export const BUNDLED_ENTRIES = ["agents/cli/main.ts", "agents/roles/node/run-node.ts", "agents/roles/validator/run-validator.ts"];
/**
 * Loaded from node_modules rather than bundled: packages with native parts, and esbuild, whose API
 * finds its binary beside its own files (the dashboard bundles the light client's page with it).
 */
const EXTERNAL_PACKAGES = ["classic-level", "hnswlib-node", "@ronomon/reed-solomon", "@chainsafe/libp2p-quic", "esbuild"];
/** A lock older than this is a builder that died; a younger one means another process is building. */
const BUNDLE_LOCK_STALE_MS = 120_000;

const sha256 = (data) => createHash("sha256").update(data).digest("hex");

/**
 * The path of the bundle of `entry` (an absolute .ts path under `root`), from the cache when every
 * project file in it and the installed dependencies are unchanged, else built and cached. Undefined
 * when another process is building it right now (the caller loads the files one by one this time).
 */
export async function bundleFor(root, esbuild, entry) {
  const dir = join(root, "node_modules", ".cache", "muri-ts", "bundles");
  const name = sha256(`esbuild ${esbuild.version} node22\0${entry}`).slice(0, 32);
  const manifestPath = join(dir, `${name}.json`);
  const bundlePath = join(dir, `${name}.mjs`);
  const lockfile = [join(root, "node_modules", ".package-lock.json"), join(root, "package-lock.json")].find((f) => existsSync(f));
  // The installed dependencies, and this file (how bundles are built).
  const deps = sha256(`${lockfile ? sha256(readFileSync(lockfile)) : "none"} ${sha256(readFileSync(fileURLToPath(import.meta.url)))}`);
  try {
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    const current = manifest.deps === deps && Object.entries(manifest.inputs).every(([file, hash]) => existsSync(file) && sha256(readFileSync(file)) === hash);
    if (current && existsSync(bundlePath)) return bundlePath;
  } catch {
    // No bundle yet, or a damaged manifest: build one.
  }
  mkdirSync(dir, { recursive: true });
  const lockPath = join(dir, `${name}.lock`);
  let lock;
  try {
    lock = openSync(lockPath, "wx");
  } catch (err) {
    if (err.code !== "EEXIST") throw err;
    if (Date.now() - statSync(lockPath).mtimeMs < BUNDLE_LOCK_STALE_MS) return undefined;
    unlinkSync(lockPath);
    lock = openSync(lockPath, "wx");
  }
  try {
    const inputs = {};
    // Each project file as the bundle sees it: `import.meta.url` is the file's own URL (not the
    // bundle's), so paths relative to a source file still resolve.
    const ownMeta = {
      name: "muri-own-files",
      setup(build) {
        build.onLoad({ filter: /\.ts$/ }, (args) => {
          if (args.path.includes(`${sep}node_modules${sep}`)) return undefined;
          const source = readFileSync(args.path, "utf8");
          inputs[args.path] = sha256(source);
          const here = JSON.stringify(pathToFileURL(args.path).href);
          const contents = source
            .replaceAll("import.meta.url", here)
            .replaceAll("import.meta.filename", JSON.stringify(args.path))
            .replaceAll("import.meta.dirname", JSON.stringify(dirname(args.path)))
            .replaceAll("import.meta.resolve(", `__muriMetaResolve(${here}, `);
          return { contents, loader: "ts" };
        });
      },
    };
    const result = await esbuild.build({
      entryPoints: [entry],
      absWorkingDir: root,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node22",
      external: EXTERNAL_PACKAGES,
      // Dependencies written as CommonJS call require(): give the bundle one, resolving from the entry.
      banner: {
        js: [
          'import { createRequire as __muriCreateRequire } from "node:module";',
          'import { pathToFileURL as __muriPathToFileURL } from "node:url";',
          "const require = __muriCreateRequire(import.meta.url);",
          "const __muriMetaResolve = (base, specifier) => __muriPathToFileURL(__muriCreateRequire(base).resolve(specifier)).href;",
        ].join("\n"),
      },
      plugins: [ownMeta],
      metafile: true,
      sourcemap: "external",
      outfile: bundlePath,
      write: false,
      logLevel: "silent",
    });
    for (const input of Object.keys(result.metafile.inputs)) {
      const file = resolve(root, input);
      if (!relative(root, file).split(sep).includes("node_modules") && !(file in inputs) && existsSync(file)) inputs[file] = sha256(readFileSync(file));
    }
    const code = result.outputFiles.find((f) => f.path.endsWith(".mjs")).text + `\n//# sourceMappingURL=${pathToFileURL(`${bundlePath}.map`).href}\n`;
    const map = result.outputFiles.find((f) => f.path.endsWith(".map"));
    // Written whole, then renamed, the manifest last: a reader sees an old complete state or the new one.
    const put = (path, data) => {
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, data);
      renameSync(tmp, path);
    };
    if (map) put(`${bundlePath}.map`, map.text);
    put(bundlePath, code);
    put(manifestPath, JSON.stringify({ entry, deps, inputs }));
    pruneBundles(dir);
    return bundlePath;
  } finally {
    closeSync(lock);
    // Gone already if a process took it over as stale (a build over two minutes): nothing to undo.
    rmSync(lockPath, { force: true });
  }
}

/**
 * Removes the bundles of entry points that no longer exist: checkouts that shared this
 * node_modules and are gone (a test's temporary copy, a mutation-testing sandbox), 20 MB each.
 */
function pruneBundles(dir) {
  for (const file of readdirSync(dir)) {
    if (!file.endsWith(".json")) continue;
    const base = join(dir, file.slice(0, -".json".length));
    try {
      if (existsSync(JSON.parse(readFileSync(`${base}.json`, "utf8")).entry)) continue;
      for (const gone of [`${base}.mjs.map`, `${base}.mjs`, `${base}.json`]) rmSync(gone, { force: true });
    } catch {
      // Another process is writing or removing it: leave it for the next build.
    }
  }
}

/**
 * Installs a loader for the .ts files of the checkout at `root`; false when neither esbuild nor
 * tsx is installed. `entries` (absolute .ts paths among BUNDLED_ENTRIES) are served bundled.
 */
export async function loadTypeScript(root, entries = []) {
  const require = createRequire(join(root, "package.json"));
  let esbuild;
  try {
    esbuild = require(require.resolve("esbuild", { paths: [join(root, "node_modules", "tsx")] }));
  } catch {
    esbuild = undefined;
  }
  if (esbuild && typeof module.registerHooks === "function") {
    const ownCode = pathToFileURL(root).href + "/";
    const isOwn = (url) => url.startsWith(ownCode) && !url.includes("/node_modules/");
    const cacheDir = join(root, "node_modules", ".cache", "muri-ts");
    const salt = `esbuild ${esbuild.version} node22 esm inline`;
    // Entry URL -> its bundle's file URL. The bundle is loaded from its file by Node's own loader,
    // so V8's compile cache (enabled below) serves its code: parsing and compiling the 6 MB bundle
    // again was about a fifth of a process's start (0.08 of 0.45 CPU s for `--help`).
    const bundles = new Map();
    if (process.env.MURI_BUNDLE !== "0") {
      for (const entry of entries) {
        if (!BUNDLED_ENTRIES.some((e) => resolve(root, e) === entry)) continue;
        // A bundle that cannot be built leaves the entry to the per-file loader below, as before.
        const file = await bundleFor(root, esbuild, entry).catch(() => undefined);
        if (file !== undefined) bundles.set(pathToFileURL(entry).href, pathToFileURL(file).href);
      }
      if (bundles.size > 0) module.enableCompileCache?.(join(cacheDir, "v8"));
    }
    module.registerHooks({
      resolve(specifier, context, nextResolve) {
        // `./x.js` in a .ts file names ./x.ts (TypeScript's node16 resolution).
        if (context.parentURL && isOwn(context.parentURL) && /^\.{1,2}\/.*\.js$/.test(specifier)) {
          const ts = new URL(specifier.replace(/\.js$/, ".ts"), context.parentURL);
          if (existsSync(fileURLToPath(ts))) return { url: bundles.get(ts.href) ?? ts.href, shortCircuit: true };
        }
        const resolved = nextResolve(specifier, context);
        const bundle = bundles.get(resolved.url);
        return bundle === undefined ? resolved : { ...resolved, url: bundle, format: "module" };
      },
      load(url, context, nextLoad) {
        if (!url.endsWith(".ts") || !isOwn(url)) return nextLoad(url, context);
        const file = fileURLToPath(url);
        const source = readFileSync(file, "utf8");
        const key = createHash("sha256").update(`${salt}\0${file}\0`).update(source).digest("hex");
        const cached = join(cacheDir, `${key}.js`);
        if (existsSync(cached)) return { format: "module", source: readFileSync(cached, "utf8"), shortCircuit: true };
        const { code } = esbuild.transformSync(source, { loader: "ts", format: "esm", target: "node22", sourcemap: "inline", sourcefile: file });
        try {
          // Written whole, then renamed: a concurrent run reads the old state or the complete file.
          mkdirSync(cacheDir, { recursive: true });
          const tmp = `${cached}.${process.pid}.tmp`;
          writeFileSync(tmp, code);
          renameSync(tmp, cached);
        } catch {
          // A read-only install: transform every run.
        }
        return { format: "module", source: code, shortCircuit: true };
      },
    });
    return true;
  }
  const api = join(root, "node_modules", "tsx", "dist", "esm", "api", "index.mjs");
  if (!existsSync(api)) return false;
  const { register } = await import(pathToFileURL(api).href);
  register();
  return true;
}
