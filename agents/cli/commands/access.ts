/**
 * Who may read and search a Magu (docs/ARCHITECTURE.md, "Who may read and search a Magu"):
 * `muri magu grant ID --to PEER_OR_ACCOUNT [--rights read,search] [--expires 30d]` prints a signed
 * grant token for the grantee to pass as `--grant`; `muri magu revoke ID --to ...` ends every grant
 * to that grantee at once (MaguAccess nonce); `muri magu visibility ID public|private`. Paid searches
 * (agents/roles/node/search-meter.ts): `muri magu search-price ID MURI` (owner), `muri magu deposit
 * ID MURI` and `muri magu withdraw-deposit ID` (searchers and readers). Paid reads
 * (agents/roles/node/read-meter.ts): `muri magu read-price ID MURI` (owner); readers pay from the
 * same deposit.
 */
import { accessDomain, encodeGrantToken, parseGrantee, parseRights, rightsLabel, signGrant } from "../../chain/index.js";
import type { Hex } from "viem";
import type { Command } from "../command.js";
import { signerOf, type CliContext } from "../context.js";
import { CliError, UsageError } from "../errors.js";
import { confirm, ensureAllowance, requireMuri } from "../tx.js";
import { formatMuri, parseInteger, parseMuri } from "../values.js";
import { readMagu } from "./magu.js";

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400 };
/** Longest a grant may run: ten years. */
const MAX_EXPIRY_S = 10 * 365 * 86_400;

/** Parses `--expires` ("30d", "12h", "90m", "600s"), in seconds. */
export function parseExpiry(value: string, option: string): number {
  const m = /^([0-9]{1,9})([smhd])$/.exec(value.trim());
  if (m === null) throw new UsageError(`${option}: "${value}" is not a duration (a number and s, m, h or d, e.g. 30d)`);
  const seconds = Number(m[1]) * UNITS[m[2]!]!;
  if (seconds < 1 || seconds > MAX_EXPIRY_S) throw new UsageError(`${option}: ${value} is out of range (1s to 3650d)`);
  return seconds;
}

export async function ownedMagu(ctx: CliContext, id: bigint, what: string) {
  const magu = await readMagu(ctx, id);
  const { account } = signerOf(ctx);
  if (magu.owner.toLowerCase() !== account.toLowerCase()) {
    throw new CliError("ERR_MAGU_NOT_OWNER", `Magu ${id} belongs to ${magu.owner}, not to ${account}: only its owner may ${what}`);
  }
  return magu;
}

/**
 * A grant of `rights` on Magu `id` (the signer's) to `grantee` for `seconds` of chain time, signed
 * and encoded as the token a grantee passes (`muri magu grant`, and inside `muri share` tokens).
 */
export async function signGrantToken(ctx: CliContext, id: bigint, grantee: Hex, rights: number, seconds: number): Promise<{ token: string; expires: bigint; nonce: bigint }> {
  const { account, walletClient } = signerOf(ctx);
  const maguAccess = ctx.deployment.contracts.maguAccess;
  const nonce = BigInt(await ctx.read.maguAccess.read.grantNonce([id, grantee]));
  // Expiry is chain time: members and MaguAccess compare it with the latest block's timestamp.
  const head = await ctx.publicClient.getBlock({ blockTag: "latest" });
  const expires = head.timestamp + BigInt(seconds);
  const domain = accessDomain(ctx.deployment.chainId, maguAccess);
  const grant = await signGrant((typed) => walletClient.signTypedData({ account, ...typed } as never), domain, { magu: id, grantee, rights, expires, nonce });
  return { token: encodeGrantToken(ctx.deployment.chainId, maguAccess, grant), expires, nonce };
}

export const maguGrantCommand: Command = {
  path: ["magu", "grant"],
  summary: "let a peer or an account read and/or search your private Magu (prints a grant token)",
  usage: "muri magu grant ID --to PEER_OR_ACCOUNT [--rights read,search] [--expires 30d]",
  help: [
    "  ID                   the Magu id (yours)",
    "  --to X               the grantee: an account (0x...; it uses the grant with its own --key) or a libp2p peer id",
    "  --rights R           read (fragments, index documents), search, or read,search (default read,search)",
    "  --expires D          how long the grant lasts: 600s, 90m, 12h, 30d (default 30d)",
    "  Prints a token; the grantee passes it as --grant to muri get and muri search. muri magu revoke ends it.",
  ],
  options: { to: { type: "string" }, rights: { type: "string" }, expires: { type: "string" } },
  positionals: ["ID"],
  signs: true,
  prepare(args) {
    const id = parseInteger(args.positionals[0]!, "ID", { min: 1n, max: 2n ** 256n - 1n });
    let to;
    let rights;
    try {
      to = parseGrantee(args.required("to", "the grantee (an account or a peer id)"));
      rights = parseRights(args.string("rights") ?? "read,search");
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError((err as Error).message);
    }
    const seconds = parseExpiry(args.string("expires") ?? "30d", "--expires");
    return async (ctx) => {
      await ownedMagu(ctx, id, "grant access to it");
      const { token, expires, nonce } = await signGrantToken(ctx, id, to.grantee, rights, seconds);
      const isPublic = await ctx.read.maguAccess.read.isPublic([id]);
      return {
        json: { id, to: to.label, kind: to.kind, grantee: to.grantee, rights: rightsLabel(rights), expires, nonce, token },
        text: [
          `granted ${rightsLabel(rights)} on Magu ${id} to ${to.kind} ${to.label} until ${new Date(Number(expires) * 1000).toISOString()} (chain time)`,
          ...(isPublic ? [`  (Magu ${id} is public: anyone may read and search it; the grant matters once it is private)`] : []),
          `  give the grantee this token (it passes it as --grant; muri magu revoke ${id} --to ${to.label} ends it):`,
          token,
        ],
      };
    };
  },
};

export const maguRevokeCommand: Command = {
  path: ["magu", "revoke"],
  summary: "end every grant you gave a peer or an account on your Magu",
  usage: "muri magu revoke ID --to PEER_OR_ACCOUNT",
  help: ["  ID                   the Magu id (yours)", "  --to X               the grantee the grants name (account or peer id)"],
  options: { to: { type: "string" } },
  positionals: ["ID"],
  signs: true,
  prepare(args) {
    const id = parseInteger(args.positionals[0]!, "ID", { min: 1n, max: 2n ** 256n - 1n });
    let to;
    try {
      to = parseGrantee(args.required("to", "the grantee (an account or a peer id)"));
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError((err as Error).message);
    }
    return async (ctx) => {
      await ownedMagu(ctx, id, "revoke access to it");
      const { contracts } = signerOf(ctx);
      const hash = await contracts.maguAccess.write.revoke([id, to.grantee]);
      await confirm(ctx, hash, "MaguAccess.revoke");
      const nonce = await ctx.read.maguAccess.read.grantNonce([id, to.grantee]);
      return {
        json: { id, to: to.label, grantee: to.grantee, nonce, tx: hash },
        text: [`revoked every grant on Magu ${id} to ${to.kind} ${to.label}: members refuse it from now on (grant nonce now ${nonce})`],
      };
    };
  },
};

export const maguVisibilityCommand: Command = {
  path: ["magu", "visibility"],
  summary: "make your Magu public (anyone may read and search it) or private (members, validators, grantees)",
  usage: "muri magu visibility ID public|private",
  help: ["  ID                   the Magu id (yours)", "  public|private       public: served to anyone; private (the default): only to members, validators and grantees"],
  options: {},
  positionals: ["ID", "VISIBILITY"],
  signs: true,
  prepare(args) {
    const id = parseInteger(args.positionals[0]!, "ID", { min: 1n, max: 2n ** 256n - 1n });
    const v = args.positionals[1]!;
    if (v !== "public" && v !== "private") throw new UsageError(`VISIBILITY: "${v}" must be public or private`);
    return async (ctx) => {
      await ownedMagu(ctx, id, "change who may read it");
      const { contracts } = signerOf(ctx);
      const hash = await contracts.maguAccess.write.setPublic([id, v === "public"]);
      await confirm(ctx, hash, "MaguAccess.setPublic");
      return {
        json: { id, visibility: v, tx: hash },
        text: [v === "public" ? `Magu ${id} is public: its members serve and search it for anyone` : `Magu ${id} is private: only members, validators and grantees`],
      };
    };
  },
};

/** `muri magu search-price` and `muri magu read-price`: the owner sets a price (0: free) and is told what it means. */
function ownerPriceCommand(spec: {
  name: "search-price" | "read-price";
  summary: string;
  help: string[];
  what: string;
  /** Sends the setter; `tx` names it. */
  set: (ctx: CliContext, id: bigint, price: bigint) => Promise<Hex>;
  tx: string;
  describe: (ctx: CliContext, id: bigint, price: bigint) => Promise<{ json: Record<string, unknown>; text: string }>;
}): Command {
  return {
    path: ["magu", spec.name],
    summary: spec.summary,
    usage: `muri magu ${spec.name} ID MURI`,
    help: ["  ID                   the Magu id (yours)", ...spec.help],
    options: {},
    positionals: ["ID", "MURI"],
    signs: true,
    prepare(args) {
      const id = parseInteger(args.positionals[0]!, "ID", { min: 1n, max: 2n ** 256n - 1n });
      const price = parseMuri(args.positionals[1]!, "MURI", true);
      return async (ctx) => {
        await ownedMagu(ctx, id, `set its ${spec.what}`);
        const hash = await spec.set(ctx, id, price);
        await confirm(ctx, hash, spec.tx);
        const { json, text } = await spec.describe(ctx, id, price);
        return { json: { id, ...json, tx: hash }, text: [text] };
      };
    },
  };
}

export const maguSearchPriceCommand = ownerPriceCommand({
  name: "search-price",
  summary: "set the price per off-chain search your Magu's members ask (paid from searchers' deposits)",
  help: ["  MURI                 price per search, e.g. 0.01 (0: searches are free)"],
  what: "search price",
  set: (ctx, id, price) => signerOf(ctx).contracts.maguAccess.write.setSearchPrice([id, price]),
  tx: "MaguAccess.setSearchPrice",
  describe: async (_ctx, id, price) => ({
    json: { searchPrice: price },
    text:
      price === 0n
        ? `searches of Magu ${id} are free`
        : `searches of Magu ${id} cost ${formatMuri(price)} MURI each, paid to the members that answer from the searcher's deposit (muri magu deposit ${id} MURI)`,
  }),
});

export const maguReadPriceCommand = ownerPriceCommand({
  name: "read-price",
  summary: "set the base price per fragment read your Magu's members ask (paid from readers' deposits)",
  help: [
    "  MURI                 base price per fragment read, e.g. 0.001 (0: reads are free)",
    "  Members ask the base price times each fragment's multiplier, x1 to x2 (rarity: vacant slots among its holders;",
    "  demand: recent paid reads of it at its other holders), shown by muri status.",
  ],
  what: "read price",
  set: (ctx, id, price) => signerOf(ctx).contracts.maguAccess.write.setReadPrice([id, price]),
  tx: "MaguAccess.setReadPrice",
  describe: async (_ctx, id, price) => ({
    json: { readPrice: price },
    text:
      price === 0n
        ? `reads of Magu ${id} are free`
        : `reads of Magu ${id} cost ${formatMuri(price)} MURI per fragment times the fragment's multiplier (x1 to x2, muri status), paid to the members that serve them from the reader's deposit (muri magu deposit ${id} MURI)`,
  }),
});

export const maguDepositCommand: Command = {
  path: ["magu", "deposit"],
  summary: "deposit MURI to pay for your searches and reads of a Magu that charges for them",
  usage: "muri magu deposit ID MURI",
  help: ["  ID                   the Magu id", "  MURI                 amount to deposit (muri magu withdraw-deposit ID takes back what is left)"],
  options: {},
  positionals: ["ID", "MURI"],
  signs: true,
  prepare(args) {
    const id = parseInteger(args.positionals[0]!, "ID", { min: 1n, max: 2n ** 256n - 1n });
    const amount = parseMuri(args.positionals[1]!, "MURI");
    return async (ctx) => {
      await readMagu(ctx, id);
      const { account, contracts } = signerOf(ctx);
      await requireMuri(ctx, amount, "the deposit");
      await ensureAllowance(ctx, ctx.deployment.contracts.maguAccess, amount);
      const hash = await contracts.maguAccess.write.deposit([id, amount]);
      await confirm(ctx, hash, "MaguAccess.deposit");
      const balance = await ctx.read.maguAccess.read.balanceOf([id, account]);
      const price = await ctx.read.maguAccess.read.searchPrice([id]);
      const readUnit = await ctx.read.maguAccess.read.readPrice([id]);
      return {
        json: { id, deposited: amount, balance, searchPrice: price, readPrice: readUnit, tx: hash },
        text: [
          `deposited ${formatMuri(amount)} MURI for searches and reads of Magu ${id}: balance ${formatMuri(balance)} MURI` +
            (price > 0n ? ` (${balance / price} searches at ${formatMuri(price)} MURI)` : " (its searches are free for now)") +
            (readUnit > 0n ? `; reads ${formatMuri(readUnit)} MURI per fragment times its multiplier (x1 to x2)` : "; its reads are free for now"),
        ],
      };
    };
  },
};

export const maguWithdrawDepositCommand: Command = {
  path: ["magu", "withdraw-deposit"],
  summary: "take back what is left of your search deposit (asks first; members settle within the delay)",
  usage: "muri magu withdraw-deposit ID",
  help: ["  ID                   the Magu id", "  The first call asks; once the delay has passed, the next call pays out what the members did not settle."],
  options: {},
  positionals: ["ID"],
  signs: true,
  prepare(args) {
    const id = parseInteger(args.positionals[0]!, "ID", { min: 1n, max: 2n ** 256n - 1n });
    return async (ctx) => {
      const { account, contracts } = signerOf(ctx);
      const at = await ctx.read.maguAccess.read.withdrawableAt([id, account]);
      const head = await ctx.publicClient.getBlockNumber({ cacheTime: 0 });
      if (at === 0n) {
        const hash = await contracts.maguAccess.write.requestWithdraw([id]);
        await confirm(ctx, hash, "MaguAccess.requestWithdraw");
        const ready = await ctx.read.maguAccess.read.withdrawableAt([id, account]);
        return {
          json: { id, requested: true, withdrawableAt: ready, tx: hash },
          text: [`withdrawal from Magu ${id} requested: members settle what you owe; run this again from block ${ready}`],
        };
      }
      if (head < at) {
        throw new CliError("ERR_WITHDRAW_NOT_READY", `the withdrawal from Magu ${id} is possible from block ${at} (now ${head}): run this again then`);
      }
      const balance = await ctx.read.maguAccess.read.balanceOf([id, account]);
      const hash = await contracts.maguAccess.write.withdraw([id]);
      await confirm(ctx, hash, "MaguAccess.withdraw");
      return { json: { id, withdrawn: balance, tx: hash }, text: [`withdrew ${formatMuri(balance)} MURI of search deposit from Magu ${id}`] };
    };
  },
};
