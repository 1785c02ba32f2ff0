import { expect } from 'chai';
import { BacklogPriority } from './backlog-priority.js';

describe('backlog priority (the push worker raised while pushes wait too long)', () => {
  const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  /** Polls until the condition holds (timers run late on a loaded machine), failing after 3 s. */
  async function eventually(condition: () => boolean): Promise<void> {
    for (const deadline = performance.now() + 3_000; !condition(); await wait(10)) {
      if (performance.now() > deadline) throw new Error('condition not reached within 3 s');
    }
  }

  function backlog(answer: (policy: 'idle' | 'other') => string | null) {
    const calls: string[] = [];
    const logs: string[] = [];
    const priority = new BacklogPriority({
      raiseAfterMs: 400,
      setPolicy: async (policy) => {
        calls.push(policy);
        return answer(policy);
      },
      log: {
        warn: (_fields, message) => logs.push(`warn: ${message}`),
        info: (_fields, message) => logs.push(`info: ${message}`),
      },
    });
    return { priority, calls, logs };
  }

  it('raises the worker only once a push has waited past the threshold, and lowers it when caught up', async () => {
    const { priority, calls } = backlog(() => null);
    try {
      priority.posted();
      priority.posted();
      await wait(50);
      expect(calls).to.deep.equal([]);
      await eventually(() => calls.length > 0);
      expect(calls).to.deep.equal(['other']);
      priority.settled(1);
      await wait(150);
      // One still waits, and long: it stays raised.
      expect(calls).to.deep.equal(['other']);
      priority.settled(1);
      await eventually(() => calls.length > 1);
      expect(calls).to.deep.equal(['other', 'idle']);
      // Quick work does not raise it.
      priority.posted();
      priority.settled(1);
      await wait(250);
      expect(calls).to.deep.equal(['other', 'idle']);
    } finally {
      priority.stop();
    }
  });

  it('says once that the worker may not leave SCHED_IDLE, and does not try again', async () => {
    const { priority, calls, logs } = backlog((policy) =>
      policy === 'other' ? 'Operation not permitted' : null,
    );
    try {
      priority.posted();
      await eventually(() => logs.length > 0);
      priority.settled(1);
      priority.posted();
      await wait(600);
      expect(calls).to.deep.equal(['other']);
      expect(logs).to.have.length(1);
      expect(logs[0]).to.match(/^warn: .*cannot leave SCHED_IDLE/);
    } finally {
      priority.stop();
    }
  });
});
