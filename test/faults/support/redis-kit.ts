import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Where the kit's scripts are: REDIS_KIT, or `../shared/redis-kit` beside the repository. */
const KIT_DIR = process.env.REDIS_KIT ?? fileURLToPath(new URL('../../../../shared/redis-kit/', import.meta.url));

/** The kit's exit status for "this machine cannot provide it". */
const UNAVAILABLE = 3;

export type KitTopology = 'cluster' | 'sentinel';

const SCRIPTS: Record<KitTopology, { script: string; kill: string }> = {
  cluster: { script: 'cluster.sh', kill: 'kill-master' },
  sentinel: { script: 'sentinel.sh', kill: 'kill-primary' },
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The kit cannot run here: the reason, to be printed as a NOT TESTED banner. */
export interface KitUnavailable {
  unavailable: string;
}

/** What a kill command reports once the failover is visible everywhere. */
export interface Failover {
  seconds: number;
  /** The node that was killed. */
  old: string;
  /** The node that took over. */
  new: string;
}

function run(script: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(`${KIT_DIR}/${script}`, args, { timeout: 150_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}

/**
 * A Redis Cluster (3 masters, 3 replicas) or a Sentinel setup (primary, replica, 3 sentinels)
 * from `../shared/redis-kit`, started for a test and left as it was found: stopped again when
 * this test started it, healthy again (the killed node back as a replica) when it was running.
 */
export class RedisKit {
  private constructor(
    readonly topology: KitTopology,
    /** `cluster`: the seed list. `sentinel`: the sentinel list and the master name. */
    readonly result: string,
    private readonly wasRunning: boolean,
  ) {}

  static async start(topology: KitTopology): Promise<RedisKit | KitUnavailable> {
    const { script } = SCRIPTS[topology];
    if (!existsSync(`${KIT_DIR}/${script}`)) return { unavailable: `${KIT_DIR}/${script} does not exist` };
    const status = await run(script, ['status']);
    const started = await run(script, ['start']);
    if (started.code === UNAVAILABLE) {
      return { unavailable: `${script} start exited 3: ${started.stderr.trim() || 'no reason given'}` };
    }
    if (started.code !== 0) throw new Error(`${script} start exited ${started.code}:\n${started.stderr}`);
    return new RedisKit(topology, lastLine(started.stdout), status.code === 0);
  }

  /** The cluster's seed nodes. */
  get seeds(): string {
    return this.result;
  }

  /** The sentinels and the master name they monitor. */
  get sentinels(): { sentinels: string; name: string } {
    const [sentinels = '', name = ''] = this.result.split(' ');
    return { sentinels, name };
  }

  /**
   * SIGKILLs the master that serves `key`'s slot (cluster) or the primary (sentinel), and
   * resolves once a replica has taken over.
   */
  async kill(key?: string): Promise<Failover> {
    const { script, kill } = SCRIPTS[this.topology];
    const done = await run(script, key === undefined ? [kill] : [kill, key]);
    if (done.code !== 0) throw new Error(`${script} ${kill} exited ${done.code}:\n${done.stderr}`);
    const line = lastLine(done.stdout);
    const fields = Object.fromEntries(line.split(' ').map((f) => f.split('=') as [string, string]));
    return { seconds: Number(fields.failover_s), old: fields.old ?? '', new: fields.new ?? '' };
  }

  /** Starts what is down: a killed node rejoins as a replica. */
  async restore(): Promise<void> {
    const { script } = SCRIPTS[this.topology];
    const done = await run(script, ['start']);
    if (done.code !== 0) throw new Error(`${script} start exited ${done.code}:\n${done.stderr}`);
  }

  /** Leaves the kit as it was found. */
  async release(): Promise<void> {
    if (this.wasRunning) return this.restore();
    const { script } = SCRIPTS[this.topology];
    const done = await run(script, ['stop']);
    if (done.code !== 0) throw new Error(`${script} stop exited ${done.code}:\n${done.stderr}`);
  }
}

/** Prints the loud banner of a test that could not run here (the only case a test passes without asserting). */
export function warnNotTested(what: string, kit: KitUnavailable): void {
  console.warn(`\n!!! NOT TESTED: ${what}: ${kit.unavailable}\n`);
}
