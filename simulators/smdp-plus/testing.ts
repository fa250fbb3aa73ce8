/**
 * Test helper: a loopback Operator endpoint for ES2+.HandleDownloadProgressInfo that parses
 * notifications with the production parser and records them. Can play "down" for the first N
 * requests (answers 503) to exercise the simulator's retries.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  handleDownloadProgressInfoRequest,
  type Es2PlusDownloadProgress,
} from '../../domain/sims/es2plus.notifications';
import { es2PlusPath } from '../../domain/sims/es2plus.types';

export interface NotificationReceiver {
  /** Full URL to give the simulator as notificationUrl. */
  url: string;
  received: Es2PlusDownloadProgress[];
  /** Number of HTTP requests seen, including the refused ones. */
  readonly requests: number;
  /** Answer 503 to the next `n` requests. */
  failNext(n: number): void;
  waitFor(predicate: (all: Es2PlusDownloadProgress[]) => boolean, timeoutMs?: number): Promise<Es2PlusDownloadProgress[]>;
  close(): Promise<void>;
}

export async function startNotificationReceiver(options: { failFirst?: number } = {}): Promise<NotificationReceiver> {
  const received: Es2PlusDownloadProgress[] = [];
  const seen = new Set<string>();
  let toFail = options.failFirst ?? 0;
  let requests = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests += 1;
      if (toFail > 0) {
        toFail -= 1;
        res.writeHead(503).end();
        return;
      }
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400).end();
        return;
      }
      void handleDownloadProgressInfoRequest(body, (n) => {
        // Deduplicate on the notification's functionCallIdentifier, as the API must.
        if (seen.has(n.functionCallIdentifier)) return;
        seen.add(n.functionCallIdentifier);
        received.push(n);
      }).then((answer) => {
        if (answer.body === undefined) res.writeHead(answer.httpStatus).end();
        else res.writeHead(answer.httpStatus, { 'Content-Type': 'application/json' }).end(JSON.stringify(answer.body));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${es2PlusPath('handleDownloadProgressInfo')}`,
    received,
    get requests() {
      return requests;
    },
    failNext(n) {
      toFail = n;
    },
    async waitFor(predicate, timeoutMs = 3_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(received)) {
        if (Date.now() > deadline) throw new Error(`notifications not as expected after ${timeoutMs} ms: ${JSON.stringify(received.map((n) => [n.iccid, n.notificationPointId, n.status]))}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      return received;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
