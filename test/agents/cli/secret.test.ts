/**
 * `muri secret backup` / `muri secret restore` through the real `bin/muri.js`: the client's secret
 * as 24 words and back into another client directory byte for byte (0600), refusing mistyped,
 * missing or reordered words and never replacing another secret.
 */
import assert from "node:assert/strict";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { loadOrCreateSecret } from "../../../agents/roles/client/client.js";
import { cleanup, tempDir } from "../chain/harness.js";
import { muri } from "./run-muri.js";

after(cleanup);

describe("muri secret backup / restore", () => {
  test("24 words back to the same secret elsewhere; wrong words and another secret refused", async () => {
    const a = await tempDir("muri-secret-a-");
    const secret = await loadOrCreateSecret(join(a, "secret.key"));
    const backup = await muri(["secret", "backup", "--client-dir", a, "--json"]);
    assert.equal(backup.code, 0, backup.stderr);
    const words = (JSON.parse(backup.stdout) as { words: string }).words;
    assert.equal(words.split(" ").length, 24);

    const b = await tempDir("muri-secret-b-");
    const file = join(await tempDir("muri-secret-words-"), "words.txt");
    await writeFile(file, `  ${words.toUpperCase().split(" ").join("\n")}\n`);
    const restored = await muri(["secret", "restore", "--client-dir", b, "--words-file", file]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(await readFile(join(b, "secret.key")), secret);
    assert.equal((await stat(join(b, "secret.key"))).mode & 0o777, 0o600);
    assert.equal((await muri(["secret", "restore", "--client-dir", b, "--words", words])).code, 0, "the same secret again: fine");

    const list = words.split(" ");
    const swapped = [list[1], list[0], ...list.slice(2)].join(" ");
    const cases: Array<[string, RegExp]> = [
      [swapped, /--words: the words' checksum does not match: a word is wrong or out of order/],
      [list.slice(1).join(" "), /--words: a client secret is 24 words, got 23/],
      [["zzzz", ...list.slice(1)].join(" "), /--words: not BIP-39 English words: zzzz/],
    ];
    const c = await tempDir("muri-secret-c-");
    for (const [bad, why] of cases) {
      const run = await muri(["secret", "restore", "--client-dir", c, "--words", bad]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, why);
    }
    await loadOrCreateSecret(join(c, "secret.key")); // another secret
    const clash = await muri(["secret", "restore", "--client-dir", c, "--words", words]);
    assert.equal(clash.code, 2);
    assert.match(clash.stderr, /holds another secret: move it away first/);
    assert.notDeepEqual(await readFile(join(c, "secret.key")), secret, "the other secret is untouched");

    const empty = await muri(["secret", "backup", "--client-dir", await tempDir("muri-secret-none-")]);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /no secret in .* \(secret\.key\)/);
  });
});
