/**
 * `muri secret backup` prints the client's secret (the only key to its encrypted data) as 24
 * BIP-39 words to write down; `muri secret restore --words-file FILE` (or `--words "..."`) puts it
 * back into a client directory on another machine. Neither needs a chain.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { secretToWords, wordsToSecret } from "../../roles/client/secret-backup.js";
import { loadOrCreateSecret } from "../../roles/client/client.js";
import { createKeyFile, readKeyFile } from "../../store/key-file.js";
import type { LocalCommand } from "../devnet/local-command.js";
import { CLIENT_DIR_HELP, clientDir } from "../devnet/storage-client.js";
import { ExitCode, UsageError } from "../errors.js";

const noChain = async (): Promise<never> => {
  throw new Error("runs without a chain context");
};

export const secretBackupCommand: LocalCommand = {
  path: ["secret", "backup"],
  summary: "print the client's encryption secret as 24 words to write down",
  usage: "muri secret backup [--client-dir DIR]",
  help: [CLIENT_DIR_HELP, "  Anyone with the words can read every file this client stored: keep them offline."],
  options: { "client-dir": { type: "string" } },
  signs: false,
  prepare: () => noChain,
  async runLocal(args, json) {
    const dir = clientDir(args);
    let secret: Buffer;
    try {
      secret = await readKeyFile(join(dir, "secret.key"));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new UsageError(`no secret in ${dir} (secret.key): nothing stored from this client directory yet`);
      throw err;
    }
    const words = secretToWords(secret);
    process.stdout.write(json ? `${JSON.stringify({ clientDir: dir, words })}\n` : `${words}\n`);
    if (!json) process.stderr.write("These 24 words are the key to every file this client stored: keep them offline.\n");
    return ExitCode.ok;
  },
};

export const secretRestoreCommand: LocalCommand = {
  path: ["secret", "restore"],
  summary: "put a client's encryption secret back from its 24 words",
  usage: "muri secret restore (--words-file FILE | --words \"w1 w2 ...\") [--client-dir DIR]",
  help: [
    CLIENT_DIR_HELP,
    "  --words-file FILE    a file holding the 24 words (keeps them out of shell history)",
    "  --words \"...\"        the 24 words",
  ],
  options: { "client-dir": { type: "string" }, words: { type: "string" }, "words-file": { type: "string" } },
  signs: false,
  prepare: () => noChain,
  async runLocal(args, json) {
    const dir = clientDir(args);
    const inline = args.string("words");
    const file = args.string("words-file");
    if ((inline === undefined) === (file === undefined)) throw new UsageError("give the 24 words with exactly one of --words-file FILE or --words \"...\"");
    let secret: Buffer;
    try {
      secret = wordsToSecret(inline ?? (await readFile(file!, "utf8")));
    } catch (err) {
      throw new UsageError(`${inline !== undefined ? "--words" : "--words-file"}: ${(err as Error).message}`);
    }
    const path = join(dir, "secret.key");
    try {
      await createKeyFile(path, secret);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const existing = await loadOrCreateSecret(path);
      if (!existing.equals(secret)) throw new UsageError(`${path} holds another secret: move it away first (it is the only key to what was stored with it)`);
    }
    process.stdout.write(json ? `${JSON.stringify({ clientDir: dir, restored: path })}\n` : `secret restored to ${path}\n`);
    return ExitCode.ok;
  },
};
