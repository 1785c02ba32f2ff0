import { expect } from 'chai';
import { pino } from 'pino';
import type { Pdu } from '../protocol/events.js';
import { computeEventId } from '../protocol/hashing.js';
import { roomVersionRules } from '../protocol/room-versions.js';
import { openSqliteStorage, type SqliteStorage } from '../storage/sqlite/sqlite-storage.js';
import { createEduRegistry } from './edu-registry.js';
import type { InboundPduHandler } from './federation.js';
import { createInboundTransactions, unimplementedPduHandler } from './inbound-transactions.js';

describe('inbound transactions', () => {
  let storage: SqliteStorage;
  const log = pino({ level: 'silent' });
  beforeEach(async () => {
    storage = await openSqliteStorage({ path: ':memory:' });
  });
  afterEach(() => storage.close());

  function setUp() {
    const handled: { origin: string; pdus: readonly unknown[] }[] = [];
    const edus: unknown[] = [];
    const handler: InboundPduHandler = {
      async handlePdus(origin, pdus) {
        handled.push({ origin, pdus });
        await new Promise((resolve) => setTimeout(resolve, 5));
        return { $a: {}, $b: { error: 'rejected' } };
      },
    };
    const registry = createEduRegistry(log);
    registry.register('m.test', async (origin, content) => {
      edus.push({ origin, content });
    });
    registry.register('m.broken', async () => {
      throw new Error('boom');
    });
    const transactions = createInboundTransactions({
      store: storage.federation,
      pdus: () => handler,
      edus: registry,
      log,
    });
    return { transactions, handled, edus };
  }

  const body = (pdus: unknown[], edus: unknown[] = []) => ({
    origin: 'a.example',
    origin_server_ts: 1,
    pdus,
    edus,
  });

  it('hands PDUs to the handler and EDUs to their handlers; a failing or unknown EDU does not fail the transaction', async () => {
    const { transactions, handled, edus } = setUp();
    const response = await transactions.receive(
      'a.example',
      't1',
      body(
        [{ p: 1 }],
        [
          { edu_type: 'm.broken', content: {} },
          { edu_type: 'm.unknown', content: {} },
          { edu_type: 'm.test', content: { x: 1 } },
          'junk',
        ],
      ),
    );
    expect(response).to.deep.equal({ pdus: { $a: {}, $b: { error: 'rejected' } } });
    expect(handled).to.deep.equal([{ origin: 'a.example', pdus: [{ p: 1 }] }]);
    expect(edus).to.deep.equal([{ origin: 'a.example', content: { x: 1 } }]);
  });

  it('answers a repeated transaction ID from the same origin as before, without processing it again', async () => {
    const { transactions, handled } = setUp();
    const [first, concurrent] = await Promise.all([
      transactions.receive('a.example', 't1', body([{ p: 1 }])),
      transactions.receive('a.example', 't1', body([{ p: 1 }])),
    ]);
    const later = await transactions.receive('a.example', 't1', body([{ p: 1 }]));
    expect(concurrent).to.deep.equal(first);
    expect(later).to.deep.equal(first);
    expect(handled).to.have.length(1);
    // The same ID from another origin is another transaction.
    await transactions.receive('b.example', 't1', body([{ p: 1 }]));
    expect(handled).to.have.length(2);
  });

  it("processes one origin's transactions one at a time, in arrival order", async () => {
    const { transactions, handled } = setUp();
    await Promise.all([1, 2, 3].map((n) => transactions.receive('a.example', `t${n}`, body([{ n }]))));
    expect(handled.map((entry) => entry.pdus[0])).to.deep.equal([{ n: 1 }, { n: 2 }, { n: 3 }]);
  });

  it('refuses PDUs of rooms whose server ACL denies the origin, keyed by their event ID, and passes the others', async () => {
    const handled: unknown[][] = [];
    const transactions = createInboundTransactions({
      store: storage.federation,
      pdus: () => ({
        async handlePdus(_origin, pdus) {
          handled.push([...pdus]);
          return {};
        },
      }),
      edus: createEduRegistry(log),
      log,
      acl: {
        access: {
          isServerAllowed: () => true,
          isAllowedInRoom: async (_server, roomId) => roomId !== '!denied:b.example',
        },
        roomVersionOf: async () => '10',
      },
    });
    const pdu = (roomId: string) => ({
      type: 'm.room.message',
      room_id: roomId,
      sender: '@u:a.example',
      origin_server_ts: 1,
      content: { body: 'x' },
      depth: 2,
      prev_events: [],
      auth_events: [],
      hashes: { sha256: 'abc' },
      signatures: {},
    });
    const denied = pdu('!denied:b.example');
    const response = await transactions.receive('a.example', 'acl', body([denied, pdu('!open:b.example')]));
    const eventId = computeEventId(denied as unknown as Pdu, roomVersionRules('10'));
    expect(response.pdus).to.deep.equal({ [eventId]: { error: 'The room server ACL denies the origin' } });
    expect(handled).to.deep.equal([[pdu('!open:b.example')]]);
  });

  it('the default PDU seam answers each PDU it can name with an error', async () => {
    expect(
      await unimplementedPduHandler.handlePdus('a.example', [{ event_id: '$x' }, { type: 'm' }]),
    ).to.deep.equal({
      $x: { error: 'This server does not accept PDUs yet' },
    });
  });
});
