/**
 * A one-line progress indicator on stderr for long transfers: shown only when stdout is a TTY (a
 * person is watching, no `--json` pipe) and only once the operation has lasted a second.
 */
const SHOW_AFTER_MS = 1_000;
const TICK_MS = 250;

export interface Progress {
  /** Sets what the line says (e.g. "pushing shards" or "12.5 MiB written"). */
  update(text: string): void;
  /** Clears the line. */
  done(): void;
}

export function startProgress(label: string, opts: { enabled?: boolean; poll?: () => Promise<string | undefined> } = {}): Progress {
  const enabled = opts.enabled ?? (process.stdout.isTTY === true && process.stderr.isTTY === true);
  if (!enabled) return { update() {}, done() {} };
  const started = Date.now();
  let text = "";
  let shown = false;
  let polling = false;
  const render = () => {
    const elapsed = Date.now() - started;
    if (elapsed < SHOW_AFTER_MS) return;
    shown = true;
    process.stderr.write(`\r\x1b[2K${label}: ${text} (${(elapsed / 1000).toFixed(1)} s)`);
  };
  const timer = setInterval(() => {
    if (opts.poll && !polling) {
      polling = true;
      opts
        .poll()
        .then((t) => {
          if (t !== undefined) text = t;
        })
        .catch(() => undefined)
        .finally(() => (polling = false));
    }
    render();
  }, TICK_MS);
  timer.unref();
  return {
    update(t) {
      text = t;
    },
    done() {
      clearInterval(timer);
      if (shown) process.stderr.write("\r\x1b[2K");
    },
  };
}

/** 12345678 -> "11.8 MiB". */
export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
