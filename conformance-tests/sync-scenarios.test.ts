/**
 * The sync scenario over real HTTP: 1,000 messages from three senders,
 * interleaved, while receivers long-poll /sync, dropping their connection now and
 * then and resuming from the last token they got. Each must see every message
 * exactly once, in the server's order, each sender's messages in the order sent,
 * filling timeline gaps from prev_batch with /messages as a client does.
 * (The WebSocket receiver is added by the WebSocket work.)
 */
import { expect } from 'chai';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const enc = encodeURIComponent;
const room = (roomId: string, rest: string) => `/_matrix/client/v3/rooms/${enc(roomId)}${rest}`;

interface TimelineEvent {
  event_id: string;
  type: string;
  sender: string;
  content: { body?: string };
}

interface ReceiverLog {
  readonly seen: TimelineEvent[];
  reconnects: number;
  gapsFilled: number;
}

describe('Sync scenario: 1,000 interleaved messages, long-polling receivers that reconnect', function () {
  this.timeout(180_000);
  let hs: TestHomeserver;

  before(async () => {
    hs = await TestHomeserver.start({
      configure: (config) => {
        fastAccounts(config);
      },
    });
  });
  after(async () => {
    await hs?.stop();
  });

  it('every receiver sees every message exactly once, in order', async () => {
    const senders = await Promise.all(['s1', 's2', 's3'].map((name) => createUser(hs, `sender-${name}`)));
    const receivers = await Promise.all(['r1', 'r2'].map((name) => createUser(hs, `receiver-${name}`)));
    const created = await call(hs, senders[0]!, 'POST', '/_matrix/client/v3/createRoom', {
      preset: 'public_chat',
    });
    const roomId = created.body.room_id as string;
    for (const user of [...senders.slice(1), ...receivers]) {
      expect((await call(hs, user, 'POST', room(roomId, '/join'), {})).status).to.equal(200);
    }

    const filter = JSON.stringify({ room: { rooms: [roomId], timeline: { limit: 20 } } });
    const total = 1000;
    let sendingDone = false;
    const logs = receivers.map(() => ({ seen: [], reconnects: 0, gapsFilled: 0 }) as ReceiverLog);
    // Each receiver starts from a token taken before the first message.
    const tokens = await Promise.all(
      receivers.map(async (user) => {
        const res = await call(hs, user, 'GET', `/_matrix/client/v3/sync?filter=${enc(filter)}`);
        return res.body.next_batch as string;
      }),
    );

    const receiving = receivers.map((user, i) =>
      receive(user, tokens[i]!, logs[i]!, () => sendingDone && countMessages(logs[i]!) >= total),
    );

    const perSender = Math.ceil(total / senders.length);
    let sent = 0;
    await Promise.all(
      senders.map(async (sender, s) => {
        for (let n = 0; n < perSender && sent < total; n++) {
          sent++;
          const res = await call(hs, sender, 'PUT', room(roomId, `/send/m.room.message/txn-${n}`), {
            msgtype: 'm.text',
            body: `${s}:${n}`,
          });
          expect(res.status).to.equal(200);
        }
      }),
    );
    sendingDone = true;
    await Promise.all(receiving);

    const sequences = logs.map((log) =>
      log.seen.filter((event) => event.type === 'm.room.message').map((event) => event.event_id),
    );
    for (const [i, log] of logs.entries()) {
      const messages = log.seen.filter((event) => event.type === 'm.room.message');
      expect(messages, `receiver ${i} count`).to.have.length(total);
      expect(new Set(messages.map((event) => event.event_id)).size, `receiver ${i} duplicates`).to.equal(
        total,
      );
      const lastOfSender = new Map<string, number>();
      for (const event of messages) {
        const [sender, n] = event.content.body!.split(':').map(Number) as [number, number];
        expect(n, `sender ${sender} in order`).to.equal((lastOfSender.get(String(sender)) ?? -1) + 1);
        lastOfSender.set(String(sender), n);
      }
      expect(log.reconnects, 'reconnects happened').to.be.greaterThan(0);
    }
    // Both saw the same order: the server's stream order.
    expect(sequences[1]).to.deep.equal(sequences[0]);
  });

  function countMessages(log: ReceiverLog): number {
    return log.seen.filter((event) => event.type === 'm.room.message').length;
  }

  /** A client's sync loop: long-polls, sometimes drops the request, fills gaps from prev_batch. */
  async function receive(
    user: TestUser,
    firstToken: string,
    log: ReceiverLog,
    done: () => boolean,
  ): Promise<void> {
    let token = firstToken;
    const filter = JSON.stringify({ room: { timeline: { limit: 20 } } });
    let iteration = 0;
    while (!done()) {
      iteration++;
      const abort = new AbortController();
      // Every third poll the connection drops after a few milliseconds, whatever the server was doing.
      const dropAfter = iteration % 3 === 0 ? 2 + (iteration % 7) : undefined;
      const timer = dropAfter === undefined ? undefined : setTimeout(() => abort.abort(), dropAfter);
      let body: {
        next_batch: string;
        rooms?: {
          join?: Record<
            string,
            { timeline: { events: TimelineEvent[]; limited: boolean; prev_batch: string } }
          >;
        };
      };
      try {
        const res = await hs.fetch(
          `/_matrix/client/v3/sync?timeout=2000&since=${enc(token)}&filter=${enc(filter)}`,
          { headers: { Authorization: `Bearer ${user.accessToken}` }, signal: abort.signal },
        );
        body = (await res.json()) as typeof body;
        expect(res.status, JSON.stringify(body)).to.equal(200);
      } catch (error) {
        if ((error as Error).name !== 'AbortError') throw error;
        log.reconnects++;
        continue; // resume from the last token received
      } finally {
        clearTimeout(timer);
      }
      for (const [roomId, joined] of Object.entries(body.rooms?.join ?? {})) {
        const { events, limited, prev_batch: prevBatch } = joined.timeline;
        if (limited) {
          log.seen.push(...(await fillGap(user, roomId, prevBatch, token)));
          log.gapsFilled++;
        }
        log.seen.push(...events);
      }
      token = body.next_batch;
    }
  }

  /** Events between the previous token and the timeline's start, oldest first (/messages backwards). */
  async function fillGap(user: TestUser, roomId: string, from: string, to: string): Promise<TimelineEvent[]> {
    const gap: TimelineEvent[] = [];
    let cursor: string | undefined = from;
    while (cursor !== undefined) {
      const res = await call(
        hs,
        user,
        'GET',
        room(roomId, `/messages?dir=b&limit=100&from=${enc(cursor)}&to=${enc(to)}`),
      );
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      const chunk = res.body.chunk as TimelineEvent[];
      gap.push(...chunk);
      cursor = chunk.length === 0 ? undefined : (res.body.end as string | undefined);
    }
    return gap.reverse();
  }
});
