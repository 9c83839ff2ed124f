/**
 * The event followers' health as an agent's `/metrics` endpoint reports it (the `muri_follower_*`
 * gauges of agents/roles/shared/metrics-server.ts), for `muri status --metrics URL`.
 */

/** One follower of one agent. */
export interface FollowerHealth {
  follower: string;
  healthy: boolean;
  state?: string;
  cursor?: bigint;
  head?: bigint;
  lagBlocks?: bigint;
  reorgs?: number;
}

/** What one agent's endpoint said, or why it said nothing. */
export interface AgentHealth {
  url: string;
  followers: FollowerHealth[];
  error?: string;
}

const LINE = /^(muri_follower_[a-z_]+)\{([^}]*)\}\s+(\S+)$/;

/** Parses the `muri_follower_*` samples of a Prometheus text exposition. */
export function parseFollowerMetrics(text: string): FollowerHealth[] {
  const byName = new Map<string, FollowerHealth>();
  for (const raw of text.split("\n")) {
    const m = LINE.exec(raw.trim());
    if (!m) continue;
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    const name = labels.follower;
    if (name === undefined) continue;
    const h = byName.get(name) ?? { follower: name, healthy: false };
    byName.set(name, h);
    const value = Number(m[3]);
    switch (m[1]) {
      case "muri_follower_healthy":
        h.healthy = value === 1;
        break;
      case "muri_follower_state":
        if (value === 1) h.state = labels.state;
        break;
      case "muri_follower_cursor_block":
        h.cursor = BigInt(m[3]!);
        break;
      case "muri_follower_head_block":
        h.head = BigInt(m[3]!);
        break;
      case "muri_follower_lag_blocks":
        h.lagBlocks = BigInt(m[3]!);
        break;
      case "muri_follower_reorgs":
        h.reorgs = value;
        break;
    }
  }
  return [...byName.values()].sort((a, b) => a.follower.localeCompare(b.follower));
}

/** Reads one agent's followers from its `/metrics` URL (never throws: an error is reported). */
export async function readAgentHealth(url: string, timeoutMs = 5_000): Promise<AgentHealth> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return { url, followers: [], error: `HTTP ${res.status}` };
    const followers = parseFollowerMetrics(await res.text());
    return followers.length > 0 ? { url, followers } : { url, followers, error: "no muri_follower_* metrics (not an agent's /metrics?)" };
  } catch (err) {
    return { url, followers: [], error: (err as Error).message };
  }
}

/** Text lines of `muri status` for the agents' followers. */
export function formatAgentHealth(agents: readonly AgentHealth[]): string[] {
  if (agents.length === 0) return [];
  const lines = ["agents' event followers:"];
  for (const a of agents) {
    if (a.error !== undefined) {
      lines.push(`  ${a.url}: UNREACHABLE (${a.error})`);
      continue;
    }
    for (const f of a.followers) {
      lines.push(
        `  ${a.url} ${f.follower}: ${f.healthy ? "healthy" : "UNHEALTHY"} ${f.state ?? "?"}, cursor ${f.cursor ?? "?"}, head ${f.head ?? "?"}, ` +
          `lag ${f.lagBlocks ?? "?"} blocks, ${f.reorgs ?? 0} reorganisations`,
      );
    }
  }
  return lines;
}
