import { expect } from 'chai';
import { KeyedBatchQueue } from './keyed-batch-queue.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('KeyedBatchQueue', () => {
  it('runs the first item at once, then hands over together what queued meanwhile, in order', async () => {
    const batches: string[][] = [];
    const queue = new KeyedBatchQueue<string>(
      async (key, pending) => {
        const batch = pending.splice(0);
        batches.push(batch.map((item) => `${key}:${item}`));
        await tick();
      },
      () => expect.fail('no runner failure expected'),
    );
    queue.push('a', '1');
    queue.push('a', '2');
    await Promise.resolve();
    queue.push('a', '3');
    queue.push('b', '1');
    await tick();
    queue.push('a', '4');
    await queue.idle();
    expect(batches).to.deep.equal([['a:1'], ['b:1'], ['a:2', 'a:3'], ['a:4']]);
  });

  it('runs different keys concurrently', async () => {
    const running = new Set<string>();
    let overlap = false;
    const queue = new KeyedBatchQueue<number>(
      async (key, pending) => {
        pending.splice(0);
        running.add(key);
        if (running.size > 1) overlap = true;
        await tick();
        running.delete(key);
      },
      () => {},
    );
    queue.push('x', 1);
    queue.push('y', 1);
    await queue.idle();
    expect(overlap).to.equal(true);
  });

  it('retries items a runner puts back, and reports a runner that rejects', async () => {
    const seen: number[] = [];
    let failedOnce = false;
    const failures: [string, number[]][] = [];
    const queue = new KeyedBatchQueue<number>(
      async (key, pending) => {
        const batch = pending.splice(0, 1);
        seen.push(batch[0]!);
        if (batch[0] === 2 && !failedOnce) {
          failedOnce = true;
          pending.unshift(...batch);
          return;
        }
        if (key === 'bad') throw new Error('runner bug');
      },
      (_error, key, dropped) => failures.push([key, dropped]),
    );
    queue.push('ok', 1);
    queue.push('ok', 2);
    queue.push('ok', 3);
    queue.push('bad', 7);
    queue.push('bad', 8);
    await queue.idle();
    expect(seen.filter((n) => n < 7)).to.deep.equal([1, 2, 2, 3]);
    expect(failures).to.deep.equal([['bad', [8]]]);
  });
});
