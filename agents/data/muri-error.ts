/**
 * The base of every named error in the agents: a stable `code` to branch on and a structured
 * `context` (Lodestar `LodestarError` / libp2p named-error habit). Each layer derives its own base
 * (DataError, StoreError, P2PError, ChainError) so callers can also test the layer with instanceof.
 */
export class MuriError<Context extends object = Record<string, unknown>> extends Error {
  readonly code: string;
  readonly context: Context;

  constructor(code: string, message: string, context: Context, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }
}
