import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';

/**
 * A Redis Sentinel that names one primary and whose timing the test decides: it can hold its
 * answers to "which is the primary?" and announce a failover (`+switch-master`) to those
 * subscribed, at the moment the test chooses. It speaks only the part of the protocol a client
 * of the sentinels uses.
 */
export class FakeSentinel {
  private readonly sockets = new Set<Socket>();
  private readonly subscribers = new Set<Socket>();
  private held: (() => void)[] | null = null;
  private readonly asked: (() => void)[] = [];

  private constructor(
    private readonly server: Server,
    private readonly primary: { host: string; port: number },
  ) {}

  static async start(primary: { host: string; port: number }): Promise<FakeSentinel> {
    const server = createServer();
    const sentinel = new FakeSentinel(server, primary);
    server.on('connection', (socket) => sentinel.serve(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return sentinel;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** How many connections are subscribed to the failover announcements. */
  get subscribed(): number {
    return this.subscribers.size;
  }

  /** From now on, the primary's address is given only on `release()`. */
  hold(): void {
    this.held ??= [];
  }

  /** Resolves once a client asks for the primary (after `hold`, the question is then pending). */
  nextQuestion(): Promise<void> {
    return new Promise((resolve) => this.asked.push(resolve));
  }

  /** Gives the held answers and stops holding. */
  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const answer of held) answer();
  }

  /** Tells every subscriber that the primary changed (to the same address: only the announcement matters). */
  announceFailover(): void {
    const { host, port } = this.primary;
    const message = ['message', '+switch-master', `primary ${host} ${port} ${host} ${port}`];
    for (const socket of this.subscribers) socket.write(array(message));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
  }

  private serve(socket: Socket): void {
    let buffered = Buffer.alloc(0);
    socket.on('error', () => undefined);
    this.sockets.add(socket);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.subscribers.delete(socket);
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const parsed = parseCommand(buffered);
        if (!parsed) return;
        buffered = buffered.subarray(parsed.length);
        this.answer(socket, parsed.args);
      }
    });
  }

  private answer(socket: Socket, args: string[]): void {
    const [command = '', sub = ''] = args.map((a) => a.toLowerCase());
    if (command === 'sentinel' && sub === 'get-master-addr-by-name') {
      const reply = () => socket.write(array([this.primary.host, String(this.primary.port)]));
      for (const resolve of this.asked.splice(0)) resolve();
      if (this.held) this.held.push(reply);
      else reply();
    } else if (command === 'sentinel') {
      socket.write('*0\r\n');
    } else if (command === 'subscribe') {
      this.subscribers.add(socket);
      socket.write(`*3\r\n${bulk('subscribe')}${bulk(args[1] ?? '')}:1\r\n`);
    } else {
      socket.write('+OK\r\n');
    }
  }
}

function bulk(text: string): string {
  return `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
}

function array(items: string[]): string {
  return `*${items.length}\r\n${items.map(bulk).join('')}`;
}

/** One command (an array of bulk strings) from the front of `buffer`, or null while it is incomplete. */
function parseCommand(buffer: Buffer): { args: string[]; length: number } | null {
  let at = 0;
  const line = (): string | null => {
    const end = buffer.indexOf('\r\n', at);
    if (end < 0) return null;
    const text = buffer.subarray(at, end).toString();
    at = end + 2;
    return text;
  };
  const head = line();
  if (head === null) return null;
  if (!head.startsWith('*')) throw new Error(`not a command: ${head}`);
  const args: string[] = [];
  for (let i = 0; i < Number(head.slice(1)); i++) {
    const size = line();
    if (size === null) return null;
    const n = Number(size.slice(1));
    if (buffer.length < at + n + 2) return null;
    args.push(buffer.subarray(at, at + n).toString());
    at += n + 2;
  }
  return { args, length: at };
}
