/**
 * Canonical JSON, event hashing/signing and signature verification throughput.
 * Prints figures, asserts nothing. Run:
 *   node --import tsx -e "import('./bench/crypto.bench.ts').then(m=>m.runCryptoBench((n,o,x)=>console.log(n,Math.round(o),x??'')))"
 */
import nacl from 'tweetnacl';
import { encodeCanonicalJson } from '../protocol/canonical-json.js';
import { ed25519, libsodiumEd25519, nodeCryptoEd25519 } from '../protocol/ed25519.js';
import type { Pdu } from '../protocol/events.js';
import {
  hashAndSignEvent,
  type UnsignedPdu,
  type VerifyKeyLookup,
  verifyEventSignatures,
} from '../protocol/hashing.js';
import { roomVersionRules } from '../protocol/room-versions.js';
import { generateSigningKey } from '../protocol/signing.js';

type Report = (name: string, opsPerSec: number, note?: string) => void;

const MEASURE_MS = 1000;
const ROUNDS = 4;
const WARMUP_MS = 200;

interface Measurement {
  /** Operations per second in the best round: the capability, less the noise of a shared machine. */
  readonly best: number;
  readonly median: number;
}

/**
 * Runs `op(i)` for about `ms` after a warm-up, in `ROUNDS` rounds of batches, and
 * returns the best and median rates (other processes on a 2-core machine skew single runs).
 */
function measure(op: (i: number) => void, ms = MEASURE_MS): Measurement {
  let i = 0;
  const warmupEnd = performance.now() + WARMUP_MS;
  while (performance.now() < warmupEnd) for (let j = 0; j < 16; j++) op(i++);
  const rates: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    let count = 0;
    const start = performance.now();
    let elapsed = 0;
    do {
      for (let j = 0; j < 16; j++) op(i++);
      count += 16;
      elapsed = performance.now() - start;
    } while (elapsed < ms / ROUNDS);
    rates.push((count / elapsed) * 1000);
  }
  rates.sort((a, b) => a - b);
  return { best: rates[rates.length - 1]!, median: (rates[(ROUNDS - 1) >> 1]! + rates[ROUNDS >> 1]!) / 2 };
}

function reportMeasurement(report: Report, name: string, m: Measurement, note?: string): void {
  const parts = [`median ${Math.round(m.median)}/s`, `${(1e6 / m.best).toFixed(1)} µs/op`];
  if (note) parts.push(note);
  report(name, m.best, parts.join('; '));
}

function typicalMessage(n: number): UnsignedPdu {
  return {
    type: 'm.room.message',
    room_id: '!QtykxKocfZaZOUrTwp:matrix.example.org',
    sender: '@alice.wonderland:matrix.example.org',
    origin_server_ts: 1_700_000_000_000 + n,
    depth: 1000 + n,
    content: {
      msgtype: 'm.text',
      body: `Message number ${n}: the quick brown fox jumps over the lazy dog. Ünïcödé and 😀 too.`,
      'm.mentions': { user_ids: ['@bob:other.example.com'] },
      'm.relates_to': { 'm.in_reply_to': { event_id: '$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg' } },
    },
    prev_events: ['$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg'],
    auth_events: [
      '$oFnNMY0MFTphDdmRx5Oyn17E_ieUGHvijHDCGm6CFnc',
      '$hpF2TmkdRhQHY3mO7rj6azZ9pJxdf9xLeTkOOlyP29U',
      '$eyd0Khm7a8D93qFVH-t9XG5FrPKbvFVgO6L09m5bhCk',
    ],
    unsigned: { age_ts: 1_700_000_000_000 + n },
  };
}

export async function runCryptoBench(report: Report): Promise<void> {
  const rules = roomVersionRules('11');
  const key = generateSigningKey('bench');
  const pool = 1024;
  const fresh = Array.from({ length: pool }, (_, n) => typicalMessage(n));
  const signed: Pdu[] = fresh.map((pdu) => hashAndSignEvent(pdu, 'matrix.example.org', key, rules));
  const lookup: VerifyKeyLookup = (server, keyId) =>
    server === 'matrix.example.org' && keyId === key.keyId ? { publicKey: key.publicKey } : undefined;

  const sample = signed[0]!;
  const bytes = Buffer.byteLength(encodeCanonicalJson(sample));
  reportMeasurement(
    report,
    'canonical JSON encode (signed m.room.message)',
    measure((i) => encodeCanonicalJson(signed[i % pool])),
    `${bytes} bytes`,
  );
  reportMeasurement(
    report,
    'JSON.stringify, same event (unsorted, for scale)',
    measure((i) => JSON.stringify(signed[i % pool])),
  );

  let counter = pool;
  reportMeasurement(
    report,
    'event hash+sign (hashAndSignEvent, fresh events)',
    measure(() => {
      hashAndSignEvent(typicalMessage(counter++), 'matrix.example.org', key, rules);
    }),
    'target >= 15000/s',
  );

  let failures = 0;
  reportMeasurement(
    report,
    'event signature verification (verifyEventSignatures)',
    measure((i) => {
      if (!verifyEventSignatures(signed[i % pool]!, rules, lookup).ok) failures++;
    }),
    `target >= 8000/s${failures ? `; ${failures} FAILED` : ''}`,
  );

  const message = Buffer.from(encodeCanonicalJson(sample));
  const naclKeys = nacl.sign.keyPair.fromSeed(key.seed);
  const naclSignature = nacl.sign.detached(message, naclKeys.secretKey);
  const implementations = [nodeCryptoEd25519, ...(libsodiumEd25519 === null ? [] : [libsodiumEd25519])];
  const naclSignOps = measure(() => nacl.sign.detached(message, naclKeys.secretKey), 500);
  reportMeasurement(report, 'ed25519 sign, tweetnacl', naclSignOps);
  for (const implementation of implementations) {
    const privateKey = implementation.privateKeyFromSeed(key.seed);
    const ops = measure(() => privateKey.sign(message));
    reportMeasurement(
      report,
      `ed25519 sign, ${implementation.name}`,
      ops,
      `${(ops.best / naclSignOps.best).toFixed(0)}x tweetnacl${implementation === ed25519 ? '; in use' : ''}`,
    );
  }
  const naclVerifyOps = measure(
    () => nacl.sign.detached.verify(message, naclSignature, naclKeys.publicKey),
    500,
  );
  reportMeasurement(report, 'ed25519 verify, tweetnacl', naclVerifyOps);
  for (const implementation of implementations) {
    const publicKey = implementation.publicKeyFromRaw(naclKeys.publicKey)!;
    const ops = measure(() => publicKey.verify(message, naclSignature));
    reportMeasurement(
      report,
      `ed25519 verify, ${implementation.name}`,
      ops,
      `${(ops.best / naclVerifyOps.best).toFixed(0)}x tweetnacl${implementation === ed25519 ? '; in use' : ''}`,
    );
  }
}
