/**
 * Encrypted keystores (chain/keystore.ts, Web3 secret storage v3), checked against an independent
 * implementation (ethers): each decrypts what the other wrote; a wrong passphrase, a damaged MAC and
 * a key that is not the file's address are refused. Then through bin/muri.js: `muri keystore new`
 * writes one (0600, never over another), and `muri node --keystore` unlocks it - a wrong passphrase
 * or none fails with one line before anything else happens. At a terminal (a pseudo-terminal made
 * by python3's pty module) both ask for the passphrase instead, without echoing it.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { Wallet, encryptKeystoreJsonSync } from "ethers";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { decryptKeystore, encryptKeystore, KeystoreError } from "../../../agents/chain/index.js";
import { cleanup, tempDir } from "../chain/harness.js";
import { MURI_BIN, ROOT, muri } from "./run-muri.js";

/**
 * Runs `muri ...args` on a pseudo-terminal and types each answer after its prompt appears; returns
 * everything the terminal showed and the exit code. Bounded: 60 s per prompt.
 */
function muriAtTerminal(args: string[], answers: Array<{ after: string; type: string }>): Promise<{ code: number; screen: string }> {
  const driver = `
import json, os, pty, select, sys, time
argv, answers = json.loads(sys.argv[1]), json.loads(sys.argv[2])
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
screen = b""
def read_until(text, seconds):
    global screen
    end = time.time() + seconds
    while (text is None or text.encode() not in screen) and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try: chunk = os.read(fd, 4096)
            except OSError: return
            if not chunk: return
            screen += chunk
for a in answers:
    read_until(a["after"], 60)
    os.write(fd, (a["type"] + "\\r").encode())
read_until(None, 60)
_, status = os.waitpid(pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "screen": screen.decode(errors="replace")}))
`;
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("MURI_")));
  return new Promise((resolve, reject) => {
    execFile("python3", ["-c", driver, JSON.stringify([process.execPath, MURI_BIN, ...args]), JSON.stringify(answers)], { cwd: ROOT, env: clean, timeout: 240_000 }, (err, stdout) => {
      if (err) reject(err);
      else resolve(JSON.parse(stdout) as { code: number; screen: string });
    });
  });
}

after(cleanup);

describe("keystore files", () => {
  test("ours and ethers' open each other's; wrong passphrases and damaged files are refused", async () => {
    const key = generatePrivateKey();
    const ours = encryptKeystore(key, "correct horse", { n: 1024 });
    assert.equal((await Wallet.fromEncryptedJson(ours, "correct horse")).privateKey, key, "ethers opens ours");
    const theirs = encryptKeystoreJsonSync({ address: privateKeyToAddress(key), privateKey: key }, "battery staple", { scrypt: { N: 1024 } });
    assert.equal(decryptKeystore(theirs, "battery staple"), key, "we open ethers'");

    assert.throws(() => decryptKeystore(ours, "wrong"), (err: unknown) => err instanceof KeystoreError && err.message === "keystore: wrong passphrase (the MAC does not match)");
    const json = JSON.parse(ours) as { crypto: { ciphertext: string; kdf: string }; address: string };
    const last = (parseInt(json.crypto.ciphertext.slice(-2), 16) ^ 1).toString(16).padStart(2, "0");
    const flipped = { ...json, crypto: { ...json.crypto, ciphertext: `${json.crypto.ciphertext.slice(0, -2)}${last}` } };
    assert.throws(() => decryptKeystore(JSON.stringify(flipped), "correct horse"), /wrong passphrase \(the MAC does not match\)/);
    assert.throws(() => decryptKeystore(JSON.stringify({ ...json, address: "00".repeat(20) }), "correct horse"), /the key is not the one of address/);
    assert.throws(() => decryptKeystore(JSON.stringify({ ...json, crypto: { ...json.crypto, kdf: "argon2" } }), "correct horse"), /key derivation "argon2" is not supported/);
    assert.throws(() => decryptKeystore("{", "x"), /not JSON/);
    assert.throws(() => decryptKeystore(JSON.stringify({ version: 1 }), "x"), /version 1, only version 3/);
  });

  test("muri keystore new, then muri node --keystore unlocks it (and fails in one line when it cannot)", async () => {
    const dir = await tempDir("muri-keystore-");
    const pass = join(dir, "pass.txt");
    await writeFile(pass, "correct horse\n");
    const key = generatePrivateKey();
    const file = join(dir, "node.json");
    const made = await muri(["keystore", "new", "--out", file, "--password-file", pass, "--key", key, "--scrypt-n", "1024", "--json"]);
    assert.equal(made.code, 0, made.stderr);
    assert.equal((JSON.parse(made.stdout) as { address: string }).address, privateKeyToAddress(key));
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal(decryptKeystore(await readFile(file, "utf8"), "correct horse"), key);
    const again = await muri(["keystore", "new", "--out", file, "--password-file", pass, "--scrypt-n", "1024"]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /exists; a keystore is never replaced/);

    const wrong = join(dir, "wrong.txt");
    await writeFile(wrong, "nope\n");
    const node = (extra: string[]) => muri(["node", "--dir", join(dir, "node"), "--rpc", "http://127.0.0.1:9", "--keystore", file, ...extra]);
    const bad = await node(["--password-file", wrong]);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    assert.match(bad.stderr, new RegExp(`--keystore ${file}: wrong passphrase`));
    const none = await node([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--keystore needs its passphrase: --password-file FILE or \$MURI_KEYSTORE_PASSWORD, or run it at a terminal/);
    const both = await node(["--password-file", pass, "--key", key]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--keystore FILE or --key HEX, not both/);
    // The right passphrase unlocks it: the node goes on to find its deployment (none here).
    const right = await node(["--password-file", pass]);
    assert.notEqual(right.code, 0);
    assert.doesNotMatch(right.stderr, /keystore|passphrase/);
    assert.match(right.stderr, /no deployment: pass --devnet DIR or --deployment FILE/);
  });

  test("at a terminal: keystore new asks twice, muri node --keystore asks once, and neither echoes it", async () => {
    const dir = await tempDir("muri-keystore-tty-");
    const file = join(dir, "node.json");
    const secret = "tr0ub4dor&3-typed";
    const made = await muriAtTerminal(["keystore", "new", "--out", file, "--scrypt-n", "1024"], [
      { after: "new keystore passphrase: ", type: secret },
      { after: "the same passphrase again: ", type: secret },
    ]);
    assert.equal(made.code, 0, made.screen);
    assert.doesNotMatch(made.screen, new RegExp(secret), "the passphrase was echoed");
    assert.match(made.screen, /keystore of 0x[0-9a-fA-F]{40} written to/);
    const key = decryptKeystore(await readFile(file, "utf8"), secret);

    const differ = await muriAtTerminal(["keystore", "new", "--out", join(dir, "other.json"), "--scrypt-n", "1024"], [
      { after: "new keystore passphrase: ", type: "one" },
      { after: "the same passphrase again: ", type: "two" },
    ]);
    assert.equal(differ.code, 2);
    assert.match(differ.screen, /the two passphrases differ; nothing was written/);

    const node = await muriAtTerminal(["node", "--dir", join(dir, "node"), "--rpc", "http://127.0.0.1:9", "--keystore", file], [
      { after: `passphrase of ${file}: `, type: secret },
    ]);
    assert.doesNotMatch(node.screen, new RegExp(secret));
    assert.doesNotMatch(node.screen, /wrong passphrase/);
    assert.match(node.screen, /no deployment: pass --devnet DIR or --deployment FILE/, "unlocked, it went on to look for its deployment");
    assert.ok(key.startsWith("0x"));

    // Without a terminal and without a file, keystore new says what to give.
    const none = await muri(["keystore", "new", "--out", join(dir, "third.json")]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /give --password-file FILE .* or run it at a terminal to be asked/);
  });
});
