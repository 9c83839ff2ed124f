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
