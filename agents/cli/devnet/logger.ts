/** JSON-lines logger on stderr for foreground agents (`MURI_LOG=debug|info|warn|error`, default info). */
import type { Logger } from "../../store/logger.js";

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
type Level = keyof typeof LEVELS;

export function jsonStderrLogger(module: string, level: string | undefined = process.env.MURI_LOG): Logger {
  const min = LEVELS[(level ?? "info") as Level] ?? LEVELS.info;
  const write = (l: Level) => (msg: string, context?: Record<string, unknown>) => {
    if (LEVELS[l] < min) return;
    const line = JSON.stringify({ t: new Date().toISOString(), level: l, module, msg, ...context }, (_k, v: unknown) =>
      typeof v === "bigint" ? v.toString() : v,
    );
    process.stderr.write(line + "\n");
  };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}
