import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';
import { connect } from 'node:net';

export interface RawAnswer {
  status: number;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  /** The body parsed as JSON when it is JSON, else its text. */
  body: unknown;
}

/**
 * An app listening on a port of its own, sent requests written byte by byte as curl writes
 * them: a POST without data carries neither Content-Length nor Transfer-Encoding, one of which
 * supertest and Node's own client always add.
 */
export class RawHttp {
  /** `127.0.0.1:<port>`: the Host header every request carries. */
  readonly host: string;

  private constructor(
    private readonly server: Server,
    private readonly port: number,
  ) {
    this.host = `127.0.0.1:${port}`;
  }

  static async listen(app: RequestListener): Promise<RawHttp> {
    const server = createServer(app).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('the app is not listening on a port');
    return new RawHttp(server, address.port);
  }

  /** Sends the request line, Host, `headers` as given, and `body` when given (with its Content-Length). */
  async request(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawAnswer> {
    const lines = [`${method} ${path} HTTP/1.1`, `Host: ${this.host}`, 'Connection: close'];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    if (body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    const socket = connect(this.port, '127.0.0.1');
    // Written, not ended: the server closes the connection after its answer (Connection: close).
    socket.write(`${lines.join('\r\n')}\r\n\r\n${body ?? ''}`);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    await once(socket, 'end');
    const text = Buffer.concat(chunks).toString('utf8');
    const split = text.indexOf('\r\n\r\n');
    const [statusLine = '', ...headerLines] = text.slice(0, split).split('\r\n');
    const answerHeaders: Record<string, string> = {};
    for (const line of headerLines) {
      const colon = line.indexOf(':');
      answerHeaders[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const rest = text.slice(split + 4);
    const json = /^application\/json/.test(answerHeaders['content-type'] ?? '');
    return { status: Number(statusLine.split(' ')[1]), headers: answerHeaders, body: json ? JSON.parse(rest) : rest };
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.server.close((err) => (err ? reject(err) : resolve())));
  }
}
