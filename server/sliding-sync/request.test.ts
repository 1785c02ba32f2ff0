import { expect } from 'chai';
import { stateTupleKey } from '../../protocol/events.js';
import { MatrixError } from '../errors.js';
import { parseSlidingSyncRequest } from './request.js';
import { CombinedRoomConfig } from './required-state.js';

const ME = '@me:example.org';

function invalid(body: Record<string, unknown>): MatrixError {
  try {
    parseSlidingSyncRequest(body, {});
  } catch (error) {
    expect(error).to.be.instanceOf(MatrixError);
    return error as MatrixError;
  }
  throw new Error('expected a MatrixError');
}

describe('sliding sync request', () => {
  it("reads matrix-rust-sdk's dialect: query pos and timeout, ranges, [type, state_key] pairs, is_invite", () => {
    const request = parseSlidingSyncRequest(
      {
        conn_id: 'room-list',
        txn_id: 't1',
        lists: {
          all: {
            ranges: [[0, 19]],
            timeline_limit: 1,
            required_state: [
              ['m.room.member', '$LAZY'],
              ['m.room.member', '$ME'],
              ['*', '*'],
            ],
            filters: { is_invite: true, not_room_types: ['m.space', null] },
          },
        },
        extensions: {
          to_device: { enabled: true, since: '12' },
          e2ee: { enabled: true },
          typing: { enabled: false },
        },
      },
      { pos: 'abc.1', timeout: 30000 },
    );
    expect(request.pos).to.equal('abc.1');
    expect(request.timeoutMs).to.equal(30000);
    expect(request.txnId).to.equal('t1');
    const list = request.lists.get('all')!;
    expect(list.ranges).to.deep.equal([[0, 19]]);
    expect(list.filters.isInvite).to.equal(true);
    expect(list.filters.notRoomTypes).to.deep.equal(['m.space', null]);
    expect(list.requiredState.lazyMembers).to.equal(true);
    expect(request.extensions.toDevice).to.deep.equal({ since: 12, limit: 100 });
    expect(request.extensions.e2ee).to.equal(true);
    expect(request.extensions.typing).to.equal(undefined);
  });

  it("reads the MSC's latest dialect: body pos, range, include/exclude/lazy_members, is_invited", () => {
    const request = parseSlidingSyncRequest(
      {
        pos: 'p.2',
        timeout: 5,
        lists: {
          dms: {
            range: [0, 9],
            timeline_limit: 3,
            required_state: {
              include: [{}],
              exclude: [{ type: 'm.room.create', state_key: '' }],
              lazy_members: true,
            },
            filters: { is_invited: false, is_dm: true },
          },
        },
        extensions: { receipts: { enabled: true, lists: ['dms'] } },
      },
      {},
    );
    expect(request.pos).to.equal('p.2');
    expect(request.timeoutMs).to.equal(5);
    const list = request.lists.get('dms')!;
    expect(list.ranges).to.deep.equal([[0, 9]]);
    expect(list.filters).to.include({ isInvite: false, isDm: true });
    expect(request.extensions.receipts).to.deep.equal({ lists: ['dms'], rooms: ['*'] });
    const config = CombinedRoomConfig.of([list]);
    expect(config.lazyMembers).to.equal(true);
    expect(config.wants('m.room.topic', '', ME)).to.equal(true);
    expect(config.wants('m.room.create', '', ME)).to.equal(false);
  });

  it('ignores timeout without pos (an initial request answers at once)', () => {
    expect(parseSlidingSyncRequest({ timeout: 3000 }, {}).timeoutMs).to.equal(0);
  });

  it('refuses bad ranges, limits, required_state, set_presence and to-device since', () => {
    for (const body of [
      { lists: { a: { ranges: [[3, 1]], timeline_limit: 1 } } },
      { lists: { a: { ranges: [[0]], timeline_limit: 1 } } },
      { lists: { a: { ranges: [[0, 1]], timeline_limit: -1 } } },
      { lists: { a: { ranges: [[0, 1]], timeline_limit: 1001 } } },
      { lists: { a: { timeline_limit: 1, required_state: [['m.room.name']] } } },
      { lists: 'all' },
      { set_presence: 'busy' },
      { extensions: { to_device: { enabled: true, since: 'abc' } } },
      { room_subscriptions: { 'not-a-room': { timeline_limit: 1 } } },
      { lists: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`l${i}`, { timeline_limit: 1 }])) },
    ]) {
      const error = invalid(body);
      expect(error.status, JSON.stringify(body).slice(0, 80)).to.equal(400);
      expect(error.errcode).to.equal('M_INVALID_PARAM');
    }
  });
});

describe('sliding sync request settings', () => {
  it('parses a body once: requests asking the same share their settings, each with its own pos', () => {
    const body = () => ({
      conn_id: 'main',
      lists: { all: { ranges: [[0, 9]], timeline_limit: 1, required_state: [['m.room.name', '']] } },
    });
    const first = parseSlidingSyncRequest(body(), { pos: 'a.1', timeout: 1000 });
    const second = parseSlidingSyncRequest(body(), { pos: 'a.2', timeout: 0 });
    expect(second.settings).to.equal(first.settings);
    expect([first.pos, second.pos]).to.deep.equal(['a.1', 'a.2']);
    expect([first.timeoutMs, second.timeoutMs]).to.deep.equal([1000, 0]);
    // pos, timeout and set_presence in the body (the MSC's dialect) do not make it another request.
    const inBody = parseSlidingSyncRequest({ ...body(), pos: 'a.3', timeout: 5 }, {});
    expect(inBody.settings).to.equal(first.settings);
    expect([inBody.pos, inBody.timeoutMs]).to.deep.equal(['a.3', 5]);
    const other = parseSlidingSyncRequest({ ...body(), conn_id: 'other' }, {});
    expect(other.settings).to.not.equal(first.settings);
    expect(other.connId).to.equal('other');
  });

  it('tells bodies that differ anywhere apart, and parses a recognised body as a fresh parse would', () => {
    const body = (requiredState: unknown[], extra: Record<string, unknown> = {}) => ({
      conn_id: 'walk',
      lists: {
        all: { ranges: [[0, 9]], timeline_limit: 1, required_state: requiredState, filters: { is_dm: true } },
      },
      ...extra,
    });
    const named = [['m.room.name', '']];
    const first = parseSlidingSyncRequest(body(named), { pos: 'w.1' });
    // The same body with its keys in another order asks the same.
    const reordered = { lists: body(named).lists, conn_id: 'walk', pos: 'w.3' };
    expect(parseSlidingSyncRequest(reordered, {}).settings).to.equal(first.settings);
    // Deep inside, a value, a longer list, an extra key, a missing key, null for a value.
    const variants = [
      body([['m.room.topic', '']]),
      body([...named, ['m.room.topic', '']]),
      body(named, { extensions: { e2ee: { enabled: true } } }),
      { conn_id: 'walk', lists: { all: { ranges: [[0, 9]], timeline_limit: 1, required_state: named } } },
      body(named, { txn_id: null }),
    ];
    for (const variant of variants) {
      const parsed = parseSlidingSyncRequest(variant, { pos: 'w.2' });
      expect(parsed.settings).to.not.equal(first.settings);
      // Recognised the second time, with the same settings as parsing it afresh gives.
      expect(parseSlidingSyncRequest(structuredClone(variant), {}).settings).to.equal(parsed.settings);
      // A key the parser ignores makes the body unknown: parsed afresh, it reads the same.
      const fresh = parseSlidingSyncRequest({ ...variant, unread_by_the_parser: Math.random() }, {});
      expect(fresh.settings).to.not.equal(parsed.settings);
      expect(fresh.settings).to.deep.equal(parsed.settings);
    }
  });

  it('still refuses a malformed pos, timeout or set_presence of a body parsed before', () => {
    const body = { conn_id: 'main', lists: {} };
    parseSlidingSyncRequest(body, {});
    expect(invalid({ ...body, timeout: -1 }).errcode).to.equal('M_INVALID_PARAM');
    expect(invalid({ ...body, pos: 5 }).errcode).to.equal('M_INVALID_PARAM');
    expect(invalid({ ...body, set_presence: 'busy' }).errcode).to.equal('M_INVALID_PARAM');
  });
});

describe('combined room config', () => {
  it('is the union of the configs: largest timeline_limit, any config wanting a state entry', () => {
    const config = CombinedRoomConfig.of([
      {
        timelineLimit: 1,
        requiredState: { include: [{ type: 'm.room.name', stateKey: '' }], exclude: [], lazyMembers: false },
      },
      {
        timelineLimit: 20,
        requiredState: {
          include: [{ type: 'm.room.member', stateKey: '$ME' }],
          exclude: [],
          lazyMembers: true,
        },
      },
    ]);
    expect(config.timelineLimit).to.equal(20);
    expect(config.lazyMembers).to.equal(true);
    expect(config.wants('m.room.member', ME, ME)).to.equal(true);
    expect(config.wants('m.room.member', '@other:example.org', ME)).to.equal(false);
    expect(config.exactKeys(ME)).to.deep.equal([
      ['m.room.name', ''],
      ['m.room.member', ME],
    ]);
    expect(config.exactStateKeys(ME)).to.deep.equal([
      stateTupleKey('m.room.name', ''),
      stateTupleKey('m.room.member', ME),
    ]);
  });

  it('looks through all state when a config has a wildcard; exclude applies to its own include only', () => {
    const config = CombinedRoomConfig.of([
      {
        timelineLimit: 1,
        requiredState: {
          include: [{ type: null, stateKey: null }],
          exclude: [{ type: 'm.room.create', stateKey: null }],
          lazyMembers: false,
        },
      },
      {
        timelineLimit: 1,
        requiredState: {
          include: [{ type: 'm.room.create', stateKey: '' }],
          exclude: [],
          lazyMembers: false,
        },
      },
    ]);
    expect(config.exactKeys(ME)).to.equal(null);
    expect(config.wants('m.room.create', '', ME)).to.equal(true);
    expect(config.wants('anything', 'x', ME)).to.equal(true);
  });

  it("leaves out the exact entries a config's exclude names", () => {
    const config = CombinedRoomConfig.of([
      {
        timelineLimit: 1,
        requiredState: {
          include: [
            { type: 'm.room.name', stateKey: '' },
            { type: 'm.room.member', stateKey: '$ME' },
          ],
          exclude: [{ type: 'm.room.member', stateKey: null }],
          lazyMembers: false,
        },
      },
    ]);
    expect(config.exactStateKeys(ME)).to.deep.equal([stateTupleKey('m.room.name', '')]);
  });
});
