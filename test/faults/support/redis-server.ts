import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * A Redis server of the test's own, without persistence, so a test can flush it or restart
 * it (losing everything) without touching the servers other tests use.
 */
export class RedisServer {
  private process: ChildProcess | null = null;
  /** Its working directory: what a replication sync writes goes here, never into the repository. */
  private readonly dir = mkdtempSync(join(tmpdir(), 'fault-redis-'));

  private constructor(readonly port: number) {}

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort());
    await server.launch();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  client(): Redis {
    return new Redis(this.url, { maxRetriesPerRequest: 1, lazyConnect: false });
  }

  async flushAll(): Promise<void> {
    const redis = this.client();
    await redis.flushall();
    redis.disconnect();
  }

  /** Stops the server (data is lost: there is no persistence) and starts it again on the same port. */
  async restart(downMs = 0): Promise<void> {
    await this.stop();
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.launch();
  }

  async stop(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    this.process = null;
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async launch(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    this.process = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
      { stdio: 'ignore', cwd: this.dir },
    );
    const redis = new Redis(this.url, { maxRetriesPerRequest: 0, retryStrategy: () => 50, lazyConnect: true });
    redis.on('error', () => undefined);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await redis.connect();
        await redis.ping();
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        redis.disconnect();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    redis.disconnect();
  }
}
