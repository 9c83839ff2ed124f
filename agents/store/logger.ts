/**
 * The structured logger the store layer needs: a message plus a context object. Any logger with
 * these four methods fits (a pino child logger adapted with `(msg, ctx) => log.info(ctx, msg)`).
 */
export interface Logger {
  debug(msg: string, context?: Record<string, unknown>): void;
  info(msg: string, context?: Record<string, unknown>): void;
  warn(msg: string, context?: Record<string, unknown>): void;
  error(msg: string, context?: Record<string, unknown>): void;
}

/** A logger that drops everything (the default). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
type Level = keyof typeof LEVELS;

/**
 * JSON-lines logger on stderr for agent processes: one object a line with time, level, module,
 * message and context (bigints as decimal strings). `level` defaults to `MURI_LOG` (default info).
 */
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
