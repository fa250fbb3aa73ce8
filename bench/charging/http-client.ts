/**
 * A lean HTTP/1.1 client for the load generator: one keep-alive TCP connection, one request in
 * flight at a time (no pipelining), Content-Length bodies. It costs a few microseconds per request,
 * so the load generator does not eat the CPU the server under test needs (Node's http client
 * costs several times more). Used for the charging server and the echo ceiling alike.
 */
import net from 'node:net';

export interface HttpResponse {
  status: number;
  location: string | null;
  body: string;
}

export class Connection {
  private socket: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private waiting: { resolve(r: HttpResponse): void; reject(e: Error): void } | null = null;
  private closed = false;

  constructor(private readonly host: string, private readonly port: number, private readonly headers: string) {
    this.socket = this.open();
  }

  private open(): net.Socket {
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.parse();
    });
    const fail = (err: Error) => {
      this.closed = true;
      const w = this.waiting;
      this.waiting = null;
      w?.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
    return socket;
  }

  request(path: string, body: string): Promise<HttpResponse> {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket.write(`POST ${path} HTTP/1.1\r\n${this.headers}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
  }

  private parse(): void {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end === -1) return;
    const head = this.buf.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    let length = 0;
    let location: string | null = null;
    let start = head.indexOf('\r\n') + 2;
    while (start > 1 && start < head.length) {
      let stop = head.indexOf('\r\n', start);
      if (stop === -1) stop = head.length;
      const colon = head.indexOf(':', start);
      const name = head.slice(start, colon).toLowerCase();
      if (name === 'content-length') length = Number(head.slice(colon + 1, stop));
      else if (name === 'location') location = head.slice(colon + 1, stop).trim();
      else if (name === 'transfer-encoding') throw new Error('chunked responses are not supported by the bench client');
      start = stop + 2;
    }
    if (this.buf.length < end + 4 + length) return;
    const body = this.buf.toString('utf8', end + 4, end + 4 + length);
    this.buf = this.buf.subarray(end + 4 + length);
    const w = this.waiting;
    this.waiting = null;
    w?.resolve({ status, location, body });
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}
