/**
 * `npm run bench:protocol`: operations per second for the protocol core's hot
 * paths on this machine. Prints figures; asserts nothing.
 */
import os from 'node:os';
import { runAuthBench } from './auth.bench.js';
import { runCryptoBench } from './crypto.bench.js';
import { runStateResBench } from './state-res.bench.js';

function report(name: string, opsPerSec: number, note?: string): void {
  const ops = opsPerSec >= 100 ? Math.round(opsPerSec).toLocaleString('en-US') : opsPerSec.toFixed(2);
  console.log(`${name.padEnd(52)} ${ops.padStart(12)} ops/s${note ? `  ${note}` : ''}`);
}

console.log(
  `Myelin protocol bench — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}`,
);
await runCryptoBench(report);
await runAuthBench(report);
await runStateResBench(report);
