// The attack simulation: every modelled economic attack is a Solidity test that plays it against the
// deployed contracts and reports one `SIM|attack|attacker P&L|honest P&L|outcome` line (Test.simReport,
// amounts in MURI wei, gas not counted). This script collects those lines, prints a table, writes
// bench/results/sim.json and fails when an attack is missing or any attacker ends above zero.
//
//   npm run sim                      runs the attack test files, then the table
//   tsx scripts/sim.ts --log FILE    reads the output of a `hardhat test solidity` run instead
//                                    (scripts/test.sh does this, so CI runs it with no extra tests)
import { spawnSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The Solidity test files that hold the attacks. */
const FILES = [
  "Accountability",
  "Availability",
  "EconomicAttacks",
  "Fire",
  "MaguAccess",
  "NodeRegistry",
  "Reputation",
  "Rewards",
  "SearchMarket",
  "SearchMarketDeletion",
  "Selection",
].map((f) => `test/solidity/${f}.t.sol`);

/** Every attack the issues name; a missing row fails the run (a deleted or renamed test). */
const EXPECTED = [
  "self-dispute (11.1)",
  "self-marking (11.2)",
  "selection grinding (11.3)",
  "re-roll by cancelling (11.3)",
  "re-roll by a lapsed window (11.3)",
  "registry filling (11.4)",
  "self-weighting (11.5)",
  "lone submitter (11.5)",
  "validator flood (11.5)",
  "validator coalition < 50 % (rewards)",
  "empty proofs (11.6)",
  "unstake to the lock (11.7)",
  "reputation penalties (11.7)",
  "firing to grind selection (15.3)",
  "copied answer (11.7)",
  "settle before the last mark (11.7)",
  "delayed marker (24.1)",
  "mark after eviction (24.2)",
  "drained node keeps working (24.3)",
  "junk root (availability)",
  "rewrite committed data (availability)",
  "lazy node drops 50 % (availability)",
  "voucher replay (access)",
  "forged voucher (access)",
  "price raised after signing (access)",
  "withdraw before settlement (access)",
  "self-voucher to skip the delay (access)",
  "former owner's grant (access)",
  "self-serving read farm (reads)",
  "demand from claimed fragments (reads)",
  "self-payment to skip the delay (reads)",
  "bought demand at the other holder (reads)",
  "deleted vector returned, disputed",
];

interface Row {
  attack: string;
  attackerPnlWei: string;
  honestPnlWei: string;
  outcome: string;
}

function usage(message: string): never {
  console.error(`sim: ${message}\nusage: tsx scripts/sim.ts [--log FILE]`);
  process.exit(2);
}

async function output(): Promise<string> {
  const args = process.argv.slice(2);
  if (args.length === 0) {
    const run = spawnSync("hardhat", ["test", "solidity", ...FILES], { cwd: root, encoding: "utf8", maxBuffer: 64 << 20 });
    if (run.error) usage(`could not run hardhat: ${run.error.message}`);
    const text = `${run.stdout}\n${run.stderr}`;
    if (run.status !== 0) {
      process.stdout.write(text);
      console.error(`sim: the attack tests failed (exit ${run.status})`);
      process.exit(1);
    }
    return text;
  }
  if (args[0] !== "--log" || args[1] === undefined || args.length !== 2) usage(`unexpected arguments: ${args.join(" ")}`);
  try {
    return await readFile(args[1], "utf8");
  } catch (err) {
    usage(`cannot read the test log ${args[1]}: ${(err as Error).message}`);
  }
}

function muri(wei: bigint): string {
  const sign = wei < 0n ? "-" : "";
  const abs = wei < 0n ? -wei : wei;
  const whole = abs / 10n ** 18n;
  const frac = (abs % 10n ** 18n) / 10n ** 16n;
  return `${sign}${whole}.${frac.toString().padStart(2, "0")}`;
}

const text = await output();
const rows = new Map<string, Row>();
for (const line of text.split("\n")) {
  const at = line.indexOf("SIM|");
  if (at < 0) continue;
  const [attack, attacker, honest, outcome] = line.slice(at + 4).trim().split("|");
  if (attack === undefined || attacker === undefined || honest === undefined || outcome === undefined) continue;
  rows.set(attack, { attack, attackerPnlWei: attacker, honestPnlWei: honest, outcome });
}

const problems: string[] = [];
for (const name of EXPECTED) if (!rows.has(name)) problems.push(`no report for "${name}": was its test removed or renamed?`);
for (const r of rows.values()) if (BigInt(r.attackerPnlWei) > 0n) problems.push(`"${r.attack}": the attacker gained ${muri(BigInt(r.attackerPnlWei))} MURI`);

const table = [...rows.values()].sort((a, b) => a.attack.localeCompare(b.attack));
const width = Math.max(...table.map((r) => r.attack.length), 6);
console.log(`${"attack".padEnd(width)}  ${"attacker MURI".padStart(14)}  ${"honest MURI".padStart(12)}  outcome`);
for (const r of table) {
  console.log(`${r.attack.padEnd(width)}  ${muri(BigInt(r.attackerPnlWei)).padStart(14)}  ${muri(BigInt(r.honestPnlWei)).padStart(12)}  ${r.outcome}`);
}
console.log("(attacker: what its addresses gained, negative = lost, before gas; 0 = refused, it lost its gas)");

const out = join(root, "bench/results/sim.json");
await mkdir(dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify({ unit: "wei (MURI 1e18), gas not counted", attacks: table }, null, 2)}\n`);
console.log(`wrote ${out}`);

if (problems.length > 0) {
  for (const p of problems) console.error(`sim: ${p}`);
  process.exit(1);
}
