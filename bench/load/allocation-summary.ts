/**
 * Top allocation sites of a sampling heap profile (BENCH_ALLOCATIONS=FILE on the load bench):
 * bytes by function (self) and by source file, and, with --per=N, bytes per unit of work
 * (e.g. the events sent in the run).
 * Run: node --import tsx bench/load/allocation-summary.ts FILE [--top=40] [--per=N]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const [file] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
if (file === undefined) throw new Error('usage: allocation-summary.ts FILE [--top=40] [--per=N]');
const option = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const top = Number(option('top') ?? 40);
const per = option('per') === undefined ? undefined : Number(option('per'));
const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: ProfileNode };

const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
/** Bytes by the chain of the three innermost frames: where a hot allocation comes from. */
const byStack = new Map<string, number>();
let total = 0;
const shortUrl = (url: string) =>
  url.replace(/^file:\/\/.*?\/(node_modules|protocol|storage|server|federation|dist)\//, '$1/');
const walk = (node: ProfileNode, path: string[]) => {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}`;
  const here = [...path, name];
  if (node.selfSize > 0) {
    total += node.selfSize;
    byFunction.set(name, (byFunction.get(name) ?? 0) + node.selfSize);
    const fileName = shortUrl(url) || '(native)';
    byFile.set(fileName, (byFile.get(fileName) ?? 0) + node.selfSize);
    const stack = here.slice(-3).join(' < ');
    byStack.set(stack, (byStack.get(stack) ?? 0) + node.selfSize);
  }
  for (const child of node.children) walk(child, here);
};
walk(head, []);

const print = (title: string, map: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [name, bytes] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    const share = ((bytes / total) * 100).toFixed(1).padStart(5);
    const perUnit = per === undefined ? '' : ` ${(bytes / per).toFixed(0).padStart(7)} B/unit`;
    console.log(`${share}% ${(bytes / 1e6).toFixed(1).padStart(8)} MB${perUnit}  ${name}`);
  }
};
console.log(
  `${file}: ${(total / 1e6).toFixed(1)} MB sampled${per === undefined ? '' : `, ${(total / per).toFixed(0)} B per unit`}`,
);
print('By source file', byFile);
print('By function (self)', byFunction);
print('By innermost three frames', byStack);
