/**
 * A passphrase typed at the terminal, not echoed: the keystore's passphrase then appears in no
 * file, no environment and no shell history. Only for an interactive terminal; a service passes
 * `--password-file` or `$MURI_KEYSTORE_PASSWORD` instead.
 */
import { UsageError } from "./errors.js";

/** The streams a prompt uses (the process's by default; a test passes its own). */
export interface PromptIo {
  input: NodeJS.ReadStream;
  output: NodeJS.WriteStream;
}

/** True when a passphrase can be asked for: stdin and stderr are a terminal. */
export function canPrompt(io: PromptIo = { input: process.stdin, output: process.stderr }): boolean {
  return io.input.isTTY === true && io.output.isTTY === true;
}

/**
 * Asks `question` and reads one line with echo off (backspace edits, Ctrl-C or Ctrl-D cancels with
 * a UsageError). Throws a UsageError naming `hint` when there is no terminal to ask at.
 */
export async function promptHidden(question: string, hint: string, io: PromptIo = { input: process.stdin, output: process.stderr }): Promise<string> {
  const { input, output } = io;
  if (!canPrompt(io)) throw new UsageError(`no terminal to ask for the passphrase at: ${hint}`);
  // Echo off before the question shows: whatever is typed once it is visible is never echoed.
  const wasRaw = input.isRaw;
  input.setRawMode(true);
  input.resume();
  output.write(question);
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = "";
      const onData = (chunk: Buffer | string): void => {
        for (const ch of chunk.toString("utf8")) {
          if (ch === "\r" || ch === "\n") {
            done();
            resolve(typed);
            return;
          }
          if (ch === "\u0003" || ch === "\u0004") {
            done();
            reject(new UsageError("passphrase entry cancelled"));
            return;
          }
          if (ch === "\u007f" || ch === "\b") typed = [...typed].slice(0, -1).join("");
          else if (ch >= " ") typed += ch;
        }
      };
      const done = (): void => {
        input.off("data", onData);
        output.write("\n");
      };
      input.on("data", onData);
    });
  } finally {
    input.setRawMode(wasRaw);
    input.pause();
  }
}

/** Asks for a new passphrase twice; they must match and not be empty. */
export async function promptNewPassphrase(hint: string, io?: PromptIo): Promise<string> {
  const first = await promptHidden("new keystore passphrase: ", hint, io);
  if (first.length === 0) throw new UsageError("the passphrase is empty");
  const again = await promptHidden("the same passphrase again: ", hint, io);
  if (again !== first) throw new UsageError("the two passphrases differ; nothing was written");
  return first;
}
