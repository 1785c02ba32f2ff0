/**
 * Where the server's time went: reads a .cpuprofile written by
 * `npm run bench:load -- --profile=DIR` and prints the functions and the
 * source files with the most self time, and the share of idle time.
 * Run: node --import tsx bench/load/profile-summary.ts DIR/CPU...cpuprofile [--top=25]
 *        [--from=µs --to=µs]   (only the samples of a phase; main.ts prints each phase's bounds)
 *        [--inclusive]         (also the time spent in each function and everything it called)
 */
import { readFileSync } from 'node:fs';
import { printTable } from './report.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const file = args.find((arg) => !arg.startsWith('--'));
if (file === undefined)
  throw new Error('usage: profile-summary.ts FILE.cpuprofile [--top=N] [--from=µs --to=µs]');
const flag = (name: string, fallback: number) =>
  Number(args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback);
const top = flag('top', 25);
const from = flag('from', Number.NEGATIVE_INFINITY);
const to = flag('to', Number.POSITIVE_INFINITY);
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const selfMicros = new Map<number, number>();
// Sample i was taken at startTime plus the deltas up to it (V8 timestamps: the monotonic clock, in µs).
let sampledAt = profile.startTime;
for (let i = 0; i < profile.samples.length; i++) {
  const delta = profile.timeDeltas[i] ?? 0;
  sampledAt += delta;
  if (sampledAt < from || sampledAt > to) continue;
  const id = profile.samples[i]!;
  selfMicros.set(id, (selfMicros.get(id) ?? 0) + delta);
}
const total = [...selfMicros.values()].reduce((sum, value) => sum + value, 0);

const shortUrl = (url: string) =>
  url.replace(/^file:\/\/.*?\/(node_modules\/|(?=(server|storage|protocol)\/))/, '');
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
for (const [id, micros] of selfMicros) {
  const frame = nodes.get(id)!.callFrame;
  const where = shortUrl(frame.url) || '(native)';
  const name = `${frame.functionName || '(anonymous)'}  ${where}:${frame.lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
  const fileKey = frame.url === '' ? frame.functionName || '(native)' : where;
  byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + micros);
}
const rows = (map: Map<string, number>) =>
  [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, micros]) => [
      `${((100 * micros) / total).toFixed(1)}%`,
      `${(micros / 1000).toFixed(0)} ms`,
      name,
    ]);

console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`);
printTable('Self time by source file', ['share', 'time', 'file'], rows(byFile));
printTable('Self time by function', ['share', 'time', 'function'], rows(byFunction));

if (args.includes('--inclusive')) {
  // A sample counts once for every distinct function on its stack (recursion counted once).
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const inclusive = new Map<string, number>();
  for (const [id, micros] of selfMicros) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const frame = nodes.get(at)!.callFrame;
      if (frame.functionName === '(root)') continue;
      seen.add(
        `${frame.functionName || '(anonymous)'}  ${shortUrl(frame.url) || '(native)'}:${frame.lineNumber + 1}`,
      );
    }
    for (const name of seen) inclusive.set(name, (inclusive.get(name) ?? 0) + micros);
  }
  printTable('Inclusive time by function', ['share', 'time', 'function'], rows(inclusive));
}
