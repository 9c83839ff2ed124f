/**
 * `muri keystore new --out FILE [--password-file FILE] [--key HEX]`: writes an agent account's key as
 * an encrypted keystore (Web3 secret storage v3, scrypt) for `muri node|validator --keystore FILE`,
 * so the key never appears on a command line. Without --key a new key is generated.
 */
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { encryptKeystore, KEYSTORE_SCRYPT_N } from "../../chain/index.js";
import { createKeyFile } from "../../store/key-file.js";
import type { LocalCommand } from "../devnet/local-command.js";
import { ExitCode, UsageError } from "../errors.js";
import { canPrompt, promptNewPassphrase } from "../prompt.js";
import { parseInteger, parseKey, readPassphraseFile } from "../values.js";

export const keystoreNewCommand: LocalCommand = {
  path: ["keystore", "new"],
  summary: "write an agent account's key as an encrypted keystore file (for --keystore)",
  usage: "muri keystore new --out FILE [--password-file FILE] [--key HEX] [--scrypt-n N]",
  help: [
    "  --out FILE           the keystore to write (mode 0600; an existing file is never replaced)",
    "  --password-file FILE the passphrase (its first line); without it, asked twice at the terminal",
    "  --key HEX            the key to store (default: a new one)",
    `  --scrypt-n N         scrypt cost, a power of two (default ${KEYSTORE_SCRYPT_N}: about a second and 256 MiB per unlock)`,
  ],
  options: { out: { type: "string" }, "password-file": { type: "string" }, "scrypt-n": { type: "string" } },
  signs: false,
  prepare(args) {
    args.required("out", "the keystore file to write");
    return async () => {
      throw new Error('"muri keystore new" runs without a chain context');
    };
  },
  async runLocal(args, json) {
    const out = args.required("out", "the keystore file to write");
    const passwordFile = args.string("password-file");
    const hint = "give --password-file FILE (a file holding the passphrase), or run it at a terminal to be asked";
    if (passwordFile === undefined && !canPrompt()) throw new UsageError(hint);
    const keyOption = args.string("key");
    const key = keyOption !== undefined ? parseKey(keyOption, "--key") : generatePrivateKey();
    const nOption = args.string("scrypt-n");
    const n = nOption === undefined ? KEYSTORE_SCRYPT_N : Number(parseInteger(nOption, "--scrypt-n", { max: 1n << 24n }));
    if (n < 1024 || (n & (n - 1)) !== 0) throw new UsageError(`--scrypt-n: ${n} is not a power of two of at least 1024`);
    const passphrase = passwordFile !== undefined ? await readPassphraseFile(passwordFile, "--password-file") : await promptNewPassphrase(hint);
    if (passphrase.length === 0) throw new UsageError("--password-file: the passphrase is empty");
    try {
      await createKeyFile(out, Buffer.from(encryptKeystore(key, passphrase, { n })));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new UsageError(`--out: ${out} exists; a keystore is never replaced (move it away first)`);
      throw err;
    }
    const address = privateKeyToAddress(key);
    process.stdout.write(json ? `${JSON.stringify({ address, keystore: out })}\n` : `keystore of ${address} written to ${out}\n`);
    return ExitCode.ok;
  },
};
