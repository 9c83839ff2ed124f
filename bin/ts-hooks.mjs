// The project's TypeScript loader, for `bin/muri.js` and, through `bin/ts-register.mjs`
// (`node --import <it>`), for the agent processes and test files: in-thread module hooks
// (module.registerHooks, Node >= 22.15) that only touch the project's own .ts files (esbuild, as
// tsx uses it). Several times faster to start than tsx's off-thread hooks, which see every one of
// viem's modules. Older 22.x fall back to tsx.
// Each file's JavaScript is cached under node_modules/.cache/muri-ts/, keyed by its path and
// content: esbuild's transform (a round trip to its service per file) was 1.1 s of the 2.8 s that
// `muri --help` took, on every run.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import module, { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** Installs a loader for the .ts files of the checkout at `root`; false when neither esbuild nor tsx is installed. */
export async function loadTypeScript(root) {
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
    module.registerHooks({
      resolve(specifier, context, nextResolve) {
        // `./x.js` in a .ts file names ./x.ts (TypeScript's node16 resolution).
        if (context.parentURL && isOwn(context.parentURL) && /^\.{1,2}\/.*\.js$/.test(specifier)) {
          const ts = new URL(specifier.replace(/\.js$/, ".ts"), context.parentURL);
          if (existsSync(fileURLToPath(ts))) return { url: ts.href, shortCircuit: true };
        }
        return nextResolve(specifier, context);
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
