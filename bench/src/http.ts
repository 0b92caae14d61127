import { type Agent, createServer, request } from 'node:http';
import { waitFor } from './progress.js';
import type { ServiceProcess } from './services.js';

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface Answer {
  status: number;
  body: string;
  /** From sending the request to the end of the answer. */
  ms: number;
}

/** GET `path` of 127.0.0.1:`port`; an error of the connection is status 0. */
export function get(port: number, path: string, agent?: Agent): Promise<Answer> {
  const start = performance.now();
  return new Promise((resolve) => {
    const req = request({ agent, host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - start }));
    });
    req.on('error', (err) => resolve({ status: 0, body: err.message, ms: performance.now() - start }));
    req.end();
  });
}

/**
 * Resolves once the service at `port` says it is ready (`GET /readyz` answers 200: its
 * database and Redis answer, and the database is prepared).
 */
export async function waitForReady(port: number, service: ServiceProcess): Promise<void> {
  await waitFor(
    `${service.label} to be ready on ${port}`,
    async () => {
      service.assertRunning();
      return (await get(port, '/readyz')).status === 200;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
}

/** The value of a Prometheus counter (summed over its series) on `/metrics` of `port`. */
export async function counterValue(port: number, name: string): Promise<number> {
  const answer = await get(port, '/metrics');
  if (answer.status !== 200) throw new Error(`GET :${port}/metrics answered ${answer.status}`);
  let sum = 0;
  let found = false;
  for (const line of answer.body.split('\n')) {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (match) {
      sum += Number(match[1]);
      found = true;
    }
  }
  if (!found) throw new Error(`${name} is not among the metrics on :${port}`);
  return sum;
}
