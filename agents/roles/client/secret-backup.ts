/**
 * A client's secret (`<client dir>/secret.key`, the only key to its encrypted data) as 24 BIP-39
 * words to write down, and back: the 32 bytes are the mnemonic's entropy (its checksum catches a
 * mistyped word).
 */
import { entropyToMnemonic, mnemonicToEntropy, validateMnemonic } from "@scure/bip39";
import { wordlist } from "@scure/bip39/wordlists/english";

/** Bytes of a client secret. */
const SECRET_BYTES = 32;

/** The 24 words of a 32-byte secret. */
export function secretToWords(secret: Uint8Array): string {
  if (secret.length !== SECRET_BYTES) throw new Error(`a client secret is ${SECRET_BYTES} bytes, got ${secret.length}`);
  return entropyToMnemonic(secret, wordlist);
}

/** The secret of 24 words (any spacing or case); the error says what is wrong with them. */
export function wordsToSecret(words: string): Buffer {
  const normalised = words.trim().toLowerCase().split(/\s+/).join(" ");
  const list = normalised === "" ? [] : normalised.split(" ");
  if (list.length !== 24) throw new Error(`a client secret is 24 words, got ${list.length}`);
  const unknown = list.filter((w) => !wordlist.includes(w));
  if (unknown.length > 0) throw new Error(`not BIP-39 English words: ${unknown.join(", ")}`);
  if (!validateMnemonic(normalised, wordlist)) throw new Error("the words' checksum does not match: a word is wrong or out of order");
  return Buffer.from(mnemonicToEntropy(normalised, wordlist));
}
