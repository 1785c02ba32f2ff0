/**
 * Federation transport over real TLS on loopback (two Myelins from the conformance
 * harness, test CA):
 *  - signed /send transactions per second, each of 100 small EDUs (no-op handler), sent
 *    one at a time and 8 at once: X-Matrix signing and verification, TLS keep-alive,
 *    body parsing, transaction dedupe bookkeeping;
 *  - outbound queue drain: N EDUs queued for B at once, until all are delivered
 *    (persist, batch into transactions of 100, send, delete);
 *  - the X-Matrix check alone (parse + verify), per second.
 * Prints figures, asserts nothing. Run: node --import tsx bench/federation-transport.bench.ts [--edus=5000] [--txns=200]
 */
import { loadavg } from 'node:os';
import { TestFederation } from '../conformance-tests/harness/test-federation.js';
import { generateSigningKey } from '../protocol/signing.js';
import { parseXMatrixHeader, signRequest, verifyRequestSignature } from '../protocol/x-matrix.js';

const args = new Map(
  process.argv.slice(2).map((arg) => {
    const [key, value] = arg.replace(/^--/, '').split('=');
    return [key!, Number(value)];
  }),
);
const EDUS = args.get('edus') ?? 5000;
const TXNS = args.get('txns') ?? 200;

function xMatrixAlone(): void {
  const key = generateSigningKey('b');
  const parts = {
    method: 'PUT',
    uri: '/_matrix/federation/v1/send/123',
    origin: 'a.example',
    destination: 'b.example',
    content: {
      origin: 'a.example',
      origin_server_ts: 1,
      pdus: [],
      edus: [{ edu_type: 'm.typing', content: {} }],
    },
  };
  const header = signRequest(parts, key);
  const n = 5000;
  const started = performance.now();
  for (let i = 0; i < n; i++) verifyRequestSignature(parts, parseXMatrixHeader(header)!, key.publicKey);
  const seconds = (performance.now() - started) / 1000;
  console.log(`X-Matrix parse + verify: ${Math.round(n / seconds)}/s`);
}

async function main(): Promise<void> {
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  xMatrixAlone();
  const federation = await TestFederation.start(2, {
    configure: (config) => {
      config.logging.level = 'warn';
    },
  });
  try {
    const [a, b] = federation.servers as [
      NonNullable<(typeof federation.servers)[0]>,
      NonNullable<(typeof federation.servers)[0]>,
    ];
    let received = 0;
    b.context.federation.edus.register('org.example.bench', async () => {
      received++;
    });
    const edus = Array.from({ length: 100 }, (_, n) => ({ edu_type: 'org.example.bench', content: { n } }));
    let txn = 0;
    const sendOne = () =>
      a.context.federation.client.request({
        destination: b.serverName,
        method: 'PUT',
        path: `/_matrix/federation/v1/send/bench-${txn++}`,
        body: { origin: a.serverName, origin_server_ts: Date.now(), pdus: [], edus },
      });
    await sendOne(); // keys fetched, connection open
    for (const concurrency of [1, 8]) {
      const started = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next++ < TXNS) await sendOne();
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `/send, ${concurrency} at a time: ${Math.round(TXNS / seconds)} transactions/s, ${Math.round((TXNS * 100) / seconds)} EDUs/s`,
      );
    }

    received = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: EDUS }, (_, n) =>
        a.context.federation.queue.sendEdu(b.serverName, { edu_type: 'org.example.bench', content: { n } }),
      ),
    );
    const queuedMs = performance.now() - started;
    while (received < EDUS) await new Promise((resolve) => setTimeout(resolve, 5));
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `outbound queue: ${EDUS} EDUs queued in ${Math.round(queuedMs)} ms, all delivered in ${seconds.toFixed(2)} s (${Math.round(EDUS / seconds)} EDUs/s)`,
    );
  } finally {
    await federation.stop();
  }
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
}

await main();
