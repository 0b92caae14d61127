import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** `group.sh` of the mysql-real kit: MYSQL_GROUP_SCRIPT, or `../shared/mysql-real/group.sh` beside the repository. */
const SCRIPT =
  process.env.MYSQL_GROUP_SCRIPT ?? fileURLToPath(new URL('../../../shared/mysql-real/group.sh', import.meta.url));

/** The script's exit status for "this machine cannot provide it". */
const UNAVAILABLE = 3;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The group cannot run here: the reason, to be printed as a NOT TESTED banner. */
export interface GroupUnavailable {
  unavailable: string;
}

function run(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(SCRIPT, args, { timeout: 170_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

async function checked(args: string[]): Promise<string> {
  const done = await run(args);
  if (done.code !== 0) throw new Error(`group.sh ${args.join(' ')} exited ${done.code}:\n${done.stderr}`);
  return done.stdout.trim();
}

/** A member's state as `group.sh status` prints it. */
export interface Member {
  port: number;
  role: string;
  state: string;
}

/**
 * A MySQL Group Replication group (three members of real MySQL, single primary) from
 * `../shared/mysql-real/group.sh`, started for a test and left as it was found: stopped again
 * when this test started it; otherwise every member back ONLINE and the primary the one it was.
 */
export class MysqlGroup {
  private constructor(
    /** `127.0.0.1:3311,127.0.0.1:3312,127.0.0.1:3313`: the host list of a MYSQL_URL. */
    readonly hosts: string,
    private readonly wasRunning: boolean,
    private readonly firstPrimary: number,
  ) {}

  static async start(): Promise<MysqlGroup | GroupUnavailable> {
    if (!existsSync(SCRIPT)) return { unavailable: `${SCRIPT} does not exist` };
    const status = await run(['status']);
    const started = await run(['start']);
    if (started.code === UNAVAILABLE) {
      return { unavailable: `group.sh start exited 3: ${started.stderr.trim() || 'no reason given'}` };
    }
    if (started.code !== 0) throw new Error(`group.sh start exited ${started.code}:\n${started.stderr}`);
    const hosts = started.stdout.trim().split('\n').at(-1) ?? '';
    return new MysqlGroup(hosts, status.code === 0, Number(await checked(['primary'])));
  }

  /** `mysql://root@<hosts>`: a multi-host MYSQL_URL of the group without its path. */
  get server(): string {
    return `mysql://root@${this.hosts}`;
  }

  /** A multi-host MYSQL_URL of the group's `database`. */
  url(database: string): string {
    return `${this.server}/${database}`;
  }

  /** The members' ports, in the host list's order. */
  get ports(): number[] {
    return this.hosts.split(',').map((h) => Number(h.split(':').at(-1)));
  }

  async primary(): Promise<number> {
    return Number(await checked(['primary']));
  }

  async members(): Promise<Member[]> {
    const out = await checked(['status']);
    return out
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter((fields) => /^\d+$/.test(fields[0] ?? ''))
      .map(([port, role, state]) => ({ port: Number(port), role: role ?? '', state: state ?? '' }));
  }

  /** SIGKILLs the primary and resolves once another member is primary: the killed port. */
  async killPrimary(): Promise<number> {
    return Number((await checked(['kill-primary'])).split('\n').at(-1));
  }

  /** A planned switchover: `port` becomes the primary, nobody is killed. */
  async switchover(port: number): Promise<void> {
    await checked(['switchover', String(port)]);
  }

  /**
   * Restarts a killed member and resolves once it has caught up (RECOVERING, then ONLINE as a
   * secondary) and every member is ONLINE.
   */
  async rejoin(port: number): Promise<void> {
    await checked(['rejoin', String(port)]);
    await this.untilAllOnline();
  }

  /** Waits until every member is ONLINE (a rejoined member has caught up). */
  async untilAllOnline(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const members = await this.members();
      if (members.length === this.ports.length && members.every((m) => m.state === 'ONLINE')) return;
      if (Date.now() > deadline)
        throw new Error(`the group is not whole after ${timeoutMs} ms: ${JSON.stringify(members)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** Every member ONLINE again (a killed one rejoined), the primary the one it was at the start. */
  async heal(): Promise<void> {
    const listed = new Set((await this.members()).map((m) => m.port));
    for (const port of this.ports) if (!listed.has(port)) await checked(['rejoin', String(port)]);
    await this.untilAllOnline();
    if ((await this.primary()) !== this.firstPrimary) await this.switchover(this.firstPrimary);
  }

  /** Leaves the group as it was found. */
  async release(): Promise<void> {
    if (this.wasRunning) return this.heal();
    // `group.sh stop` exits with its last test's status (1 without RESET=1) even when every
    // member stopped: what counts is that no member answers afterwards.
    const stopped = await run(['stop']);
    if ((await run(['status'])).code === 0) {
      throw new Error(`group.sh stop exited ${stopped.code} and the group still runs:\n${stopped.stderr}`);
    }
  }
}

/** Prints the loud banner of a test that could not run here (the only case a test passes without asserting). */
export function warnGroupNotTested(what: string, group: GroupUnavailable): void {
  console.warn(`\n!!! MySQL Group Replication NOT TESTED: ${what}: ${group.unavailable}\n`);
}
