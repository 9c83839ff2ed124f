/**
 * Headless Chromium as the browser tests and bench/light-index.ts launch it: Debian's `chromium`
 * (scripts/chromium.sh installs it; MURI_CHROMIUM overrides the path) through puppeteer-core, with
 * a fresh profile.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer, { type Browser } from "puppeteer-core";

export const CHROMIUM = process.env.MURI_CHROMIUM ?? "/usr/bin/chromium";

// Without the background-networking flags Chromium dials out (updates, sync), and this machine's
// closed network refuses it loudly.
export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/**
 * A headless Chromium with a fresh profile in the temporary directory. `protocolTimeout`: how long
 * one call into the page may take (puppeteer's default is 3 minutes).
 */
export async function launchChromium(options: { protocolTimeout?: number } = {}): Promise<Browser> {
  return puppeteer.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, userDataDir: await mkdtemp(join(tmpdir(), "muri-chromium-")), ...options });
}
