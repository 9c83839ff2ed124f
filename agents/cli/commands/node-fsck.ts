/**
 * `muri node fsck --dir DIR [--deep] [--drop-unreferenced]`: checks a stopped node's fragment store
 * against its metadata (agents/store/fragment-store.ts `fsck`): files without an entry are adopted
 * when they verify, else quarantined; entries without a file are dropped; `--deep` re-hashes every
 * file. It then counts the raw fragments no Magu in the node's Magu index holds (left Magus, batches
 * never committed) and, with `--drop-unreferenced`, deletes them. The node must be stopped: its
 * metadata database is locked while it runs.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { RAW_CODEC } from "../../data/constants.js";
import { createMaguIndex, heldCids } from "../../roles/shared/magu-index.js";
import { openFragmentStore, openMetaDb } from "../../store/index.js";
import type { LocalCommand } from "../devnet/local-command.js";
import { ExitCode, UsageError } from "../errors.js";

export const nodeFsckCommand: LocalCommand = {
  path: ["node", "fsck"],
  summary: "check and repair a stopped node's fragment store; count (or drop) fragments no Magu holds",
  usage: "muri node fsck --dir DIR [--deep] [--drop-unreferenced]",
  help: [
    "  --dir DIR             the node's data directory (the node must be stopped)",
    "  --deep                also re-hash every fragment file against its CID",
    "  --drop-unreferenced   delete raw fragments no Magu in the node's index holds (left Magus, uncommitted batches)",
  ],
  options: {
    dir: { type: "string" },
    deep: { type: "boolean" },
    "drop-unreferenced": { type: "boolean" },
  },
  signs: false,
  prepare(args) {
    args.required("dir", "the node's data directory");
    return async () => {
      throw new Error('"muri node fsck" runs without a chain context');
    };
  },
  async runLocal(args, json) {
    const dir = args.required("dir", "the node's data directory");
    if (!existsSync(join(dir, "meta"))) throw new UsageError(`--dir: ${dir} is not a node's data directory (no meta/ in it)`);
    const meta = await openMetaDb(join(dir, "meta"));
    try {
      const store = await openFragmentStore({ dir, quotaBytes: Number.MAX_SAFE_INTEGER, metaDb: meta });
      try {
        const report = await store.fsck({ deep: args.flag("deep") });
        const held = await heldCids(createMaguIndex({}, { metaDb: meta }));
        const unreferenced = [];
        for await (const cid of store.list()) if (cid.code === RAW_CODEC && !held.has(cid.toString())) unreferenced.push(cid);
        let dropped = 0;
        if (args.flag("drop-unreferenced")) for (const cid of unreferenced) if (await store.delete(cid)) dropped++;
        const out = { ...report, unreferenced: unreferenced.length, dropped, fragments: store.stats().count };
        if (json) process.stdout.write(`${JSON.stringify(out)}\n`);
        else {
          process.stdout.write(
            `checked ${out.checked} entries: adopted ${out.adopted} orphan files, quarantined ${out.quarantined}, ` +
              `dropped ${out.droppedMissing} entries without a file, removed ${out.removedOrphans} stray files\n` +
              `${out.unreferenced} raw fragments no Magu holds${args.flag("drop-unreferenced") ? `: ${dropped} deleted` : " (--drop-unreferenced deletes them)"}; ${out.fragments} fragments now\n`,
          );
        }
      } finally {
        await store.close();
      }
    } finally {
      await meta.close();
    }
    return ExitCode.ok;
  },
};
