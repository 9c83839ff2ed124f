/**
 * A tiny `/metrics` HTTP endpoint over a prom-client registry, bound to 127.0.0.1 by default.
 * Any role (validator, node agent) can serve its own registry with it:
 *
 * ```ts
 * const registry = new Registry();
 * const server = await startMetricsServer({ port: 9464 }, { registry });
 * server.url; // http://127.0.0.1:9464/metrics
 * await server.close();
 * ```
 * Only `GET /metrics` is served (200, Prometheus text format); everything else is 404.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface MetricsServerInit {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Listen address (default 127.0.0.1). */
  host?: string;
}

export interface MetricsServerComponents {
  registry: Registry;
}

export interface MetricsServer {
  readonly port: number;
  /** `http://host:port/metrics`. */
  readonly url: string;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

export async function startMetricsServer(init: MetricsServerInit, components: MetricsServerComponents): Promise<MetricsServer> {
  const host = init.host ?? "127.0.0.1";
  const { registry } = components;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "GET" || path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { "content-type": registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`${(err as Error).message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(init.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
