import { expect } from 'chai';
import { MatrixError } from '../errors.js';
import { type ConnectionGeneration, SlidingSyncConnections } from './connections.js';

const key = { userId: '@a:example.org', deviceId: 'DEV', connId: 'main' };

function generation(events: number): Omit<ConnectionGeneration, 'seq'> {
  return {
    events,
    extensions: { accountData: 0, receipts: 0, typing: 0, deviceLists: 0 },
    rooms: new Map(),
    matched: new Set(),
  };
}

function unknownPos(run: () => unknown): void {
  try {
    run();
  } catch (error) {
    expect(error).to.be.instanceOf(MatrixError);
    expect((error as MatrixError).errcode).to.equal('M_UNKNOWN_POS');
    expect((error as MatrixError).status).to.equal(400);
    return;
  }
  throw new Error('expected M_UNKNOWN_POS');
}

describe('sliding sync connections', () => {
  it('resumes from each pos it handed out, and forgets what came before the one the client returns', () => {
    const connections = new SlidingSyncConnections();
    const { connection, base } = connections.resume(key, null);
    expect(base).to.equal(null);
    const pos1 = connection.commit(generation(1));
    const pos2 = connections.resume(key, pos1).connection.commit(generation(2));
    // A retry with pos1 (pos2's response was lost) is answered from pos1's state.
    expect(connections.resume(key, pos1).base!.events).to.equal(1);
    expect(connections.resume(key, pos2).base!.events).to.equal(2);
    // pos2 came back: pos1 is gone.
    unknownPos(() => connections.resume(key, pos1));
  });

  it('refuses a pos of another user, device or conn_id, a made-up one, and any after a restart', () => {
    const connections = new SlidingSyncConnections();
    const pos = connections.resume(key, null).connection.commit(generation(1));
    unknownPos(() => connections.resume({ ...key, userId: '@b:example.org' }, pos));
    unknownPos(() => connections.resume({ ...key, deviceId: 'OTHER' }, pos));
    unknownPos(() => connections.resume({ ...key, connId: 'other' }, pos));
    unknownPos(() => connections.resume(key, 'garbage'));
    unknownPos(() => new SlidingSyncConnections().resume(key, pos));
  });

  it('starting a connection again replaces the old one', () => {
    const connections = new SlidingSyncConnections();
    const old = connections.resume(key, null).connection.commit(generation(1));
    connections.resume(key, null);
    unknownPos(() => connections.resume(key, old));
  });

  it('keeps the confirmed pos however many retries pile up after it, and bounds the rest', () => {
    const connections = new SlidingSyncConnections();
    const first = connections.resume(key, null).connection.commit(generation(1));
    const { connection } = connections.resume(key, first);
    const later = Array.from({ length: 6 }, (_, i) => connection.commit(generation(2 + i)));
    expect(connections.resume(key, first).base!.events).to.equal(1);
    unknownPos(() => connections.resume(key, later[0]!));
    expect(connections.resume(key, later.at(-1)!).base!.events).to.equal(7);
  });

  it('holds a bounded number of connections', () => {
    const connections = new SlidingSyncConnections({ maxConnections: 2 });
    const pos = connections.resume(key, null).connection.commit(generation(1));
    connections.resume({ ...key, connId: 'b' }, null);
    connections.resume({ ...key, connId: 'c' }, null);
    expect(connections.size).to.equal(2);
    unknownPos(() => connections.resume(key, pos));
  });
});
