import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a server, to cut it off and bring it back: `cut()` closes every
 * connection and refuses new ones, as a server that went down would; `restore()` accepts again.
 * `hold()` keeps every connection open but lets nothing through either way, as a server that
 * stopped answering (SIGSTOP, a partition) would; `release()` passes on what was held.
 */
export class TcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  /** Each client socket and its upstream. */
  private readonly pairs = new Map<Socket, Socket>();
  private held = false;

  private constructor(
    private readonly targetPort: number,
    public port: number,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort, 0);
    await proxy.listen();
    return proxy;
  }

  private freezeOn: { marker: string; frozen: () => void } | null = null;

  /**
   * The next client connection that sends a packet containing `marker` goes silent right after
   * that packet has been passed on: nothing more is forwarded either way, and the sockets stay
   * open. Resolves when that happens. Other connections carry on.
   */
  freezeAfter(marker: string): Promise<void> {
    return new Promise((resolve) => {
      this.freezeOn = { marker, frozen: resolve };
    });
  }

  cut(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = null;
    return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  restore(): Promise<void> {
    return this.listen();
  }

  hold(): void {
    this.held = true;
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  release(): void {
    this.held = false;
    for (const [client, upstream] of this.pairs) this.join(client, upstream);
  }

  private join(client: Socket, upstream: Socket): void {
    client.pipe(upstream);
    upstream.pipe(client);
  }

  close(): Promise<void> {
    return this.cut();
  }

  private listen(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      this.sockets.add(client);
      this.sockets.add(upstream);
      this.pairs.set(client, upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
        this.pairs.delete(client);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      if (this.held) client.pause();
      else this.join(client, upstream);
      client.on('data', (chunk: Buffer) => {
        const freeze = this.freezeOn;
        if (!freeze || !chunk.toString('latin1').includes(freeze.marker)) return;
        // The packet went through; from here this connection goes silent both ways, as a
        // process that stopped answering would leave it: open, nothing more read or sent.
        this.freezeOn = null;
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
        freeze.frozen();
      });
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        const address = server.address();
        if (typeof address === 'object' && address) this.port = address.port;
        resolve();
      });
    });
  }
}
