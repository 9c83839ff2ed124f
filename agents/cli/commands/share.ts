/**
 * `muri share CID --to ADDRESS_OR_PUBKEY`: gives another account one stored file. The token it
 * prints carries the file's own key wrapped to the recipient's public key (agents/data/share.ts:
 * it opens that file only, never the client's secret or its other files) and, for a private Magu,
 * a read grant to the recipient's account; the recipient runs `muri get TOKEN -o FILE` with its own
 * key. `muri account` prints the public key a sharer needs when the recipient's address has sent
 * no transaction yet.
 */
import { bytesToHex, getAddress, isAddress, type Address } from "viem";
import { publicKeyToAddress } from "viem/accounts";
import { RIGHT_READ, accountGrantee, accountPublicKey } from "../../chain/index.js";
import { encodeShareToken, parsePublicKey, uncompressedPublicKey, wrapFileKey } from "../../data/share.js";
import type { Command } from "../command.js";
import { signerOf, type CliContext } from "../context.js";
import { CLIENT_DIR_HELP, clientDir, startClient } from "../devnet/storage-client.js";
import { UsageError } from "../errors.js";
import { ownedMagu, parseExpiry, signGrantToken } from "./access.js";
import { parseStoredRef } from "./get.js";

/** The account a compressed public key belongs to. */
function addressOf(publicKey: Buffer): Address {
  return publicKeyToAddress(bytesToHex(uncompressedPublicKey(publicKey)));
}

/** `--to`: a public key as given, or an address whose key is read from a transaction it sent. */
async function recipientKey(ctx: CliContext, to: string): Promise<{ publicKey: Buffer; account: Address }> {
  if (isAddress(to, { strict: false })) {
    const publicKey = parsePublicKey(await accountPublicKey(ctx.publicClient, getAddress(to)), "--to");
    return { publicKey, account: getAddress(to) };
  }
  const publicKey = parsePublicKey(to, "--to");
  return { publicKey, account: addressOf(publicKey) };
}

export const shareCommand: Command = {
  path: ["share"],
  summary: "give another account one stored file: prints a token its holder's key opens (muri get TOKEN)",
  usage: "muri share CID --to ADDRESS_OR_PUBKEY [--magu ID] [--expires 30d]",
  help: [
    "  CID                  the file's manifest CID (muri put printed it); you must have stored it",
    "  --to X               the recipient: its account address (its public key is read from a transaction it sent)",
    "                       or its public key (muri account prints it), hex",
    "  --magu ID            the Magu holding it (default: the one this client directory recorded it in)",
    "  --expires D          how long the recipient may read the Magu, for a private one: 600s, 90m, 12h, 30d (default 30d)",
    "  The token opens this file only (not your secret, not your other files). muri magu revoke ID --to ADDRESS",
    "  ends the recipient's read access; a key already given cannot be taken back, files you store later have keys of their own.",
    CLIENT_DIR_HELP,
  ],
  options: { to: { type: "string" }, magu: { type: "string" }, expires: { type: "string" }, "client-dir": { type: "string" } },
  positionals: ["CID"],
  signs: true,
  prepare(args) {
    const { manifestCid, givenMagu } = parseStoredRef(args);
    const to = args.required("to", "the recipient (an account address or a public key)").trim();
    const seconds = parseExpiry(args.string("expires") ?? "30d", "--expires");
    const dir = clientDir(args);
    return async (ctx) => {
      const { account } = signerOf(ctx);
      const recipient = await recipientKey(ctx, to);
      if (recipient.account === account) throw new UsageError(`--to: ${recipient.account} is your own account; muri get CID reads your files already`);
      const client = await startClient(args, ctx, dir);
      try {
        const maguId = givenMagu ?? (await client.locate(manifestCid));
        await ownedMagu(ctx, maguId, "share its files");
        const { fileKey } = await client.fileKey({ maguId, manifestCid });
        const isPublic = await ctx.read.maguAccess.read.isPublic([maguId]);
        const grant = isPublic ? undefined : await signGrantToken(ctx, maguId, accountGrantee(recipient.account), RIGHT_READ, seconds);
        const { epk, box } = wrapFileKey(fileKey, recipient.publicKey, { chainId: ctx.deployment.chainId, maguId, manifestCid });
        const token = encodeShareToken({ chainId: ctx.deployment.chainId, maguId, manifestCid, fileId: fileKey.fileId, to: recipient.account, epk, box, ...(grant === undefined ? {} : { grant: grant.token }) });
        return {
          json: { manifestCid: manifestCid.toString(), maguId, to: recipient.account, publicKey: bytesToHex(recipient.publicKey), readUntil: grant?.expires ?? null, token },
          text: [
            `shared ${manifestCid} (Magu ${maguId}) with ${recipient.account}: the token opens this file only`,
            grant === undefined
              ? `  Magu ${maguId} is public: anyone may fetch its fragments; only the token opens this file`
              : `  read access to Magu ${maguId} until ${new Date(Number(grant.expires) * 1000).toISOString()} (chain time); muri magu revoke ${maguId} --to ${recipient.account} ends it`,
            `  give them this token; with their own key they run: muri get TOKEN -o FILE`,
            token,
          ],
        };
      } finally {
        await client.stop();
      }
    };
  },
};

export const accountCommand: Command = {
  path: ["account"],
  summary: "print this key's account address and public key (what others pass to muri share --to)",
  usage: "muri account",
  help: [],
  options: {},
  signs: true,
  prepare() {
    return async (ctx) => {
      const { account, publicKey } = signerOf(ctx);
      const hex = bytesToHex(publicKey);
      return { json: { account, publicKey: hex }, text: [`account     ${account}`, `public key  ${hex}`] };
    };
  },
};
