import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a server, to cut it off and bring it back: `cut()` closes every
 * connection and refuses new ones, as a server that went down would; `restore()` accepts again.
 */
export class TcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

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

  close(): Promise<void> {
    return this.cut();
  }

  private listen(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      this.sockets.add(client);
      this.sockets.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      let frozen = false;
      client.on('data', (chunk: Buffer) => {
        if (frozen) return;
        upstream.write(chunk);
        const freeze = this.freezeOn;
        if (freeze && chunk.toString('latin1').includes(freeze.marker)) {
          // This connection goes silent both ways, as a process that stopped answering would
          // leave it: open, nothing more read or sent.
          frozen = true;
          this.freezeOn = null;
          client.pause();
          upstream.pause();
          freeze.frozen();
        }
      });
      upstream.on('data', (chunk: Buffer) => {
        if (!frozen) client.write(chunk);
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
