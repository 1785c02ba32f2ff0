/**
 * Issue #4's delivery scenario: 1,000 messages sent by three users, interleaved,
 * into one room while three clients follow it — two long-polling /sync and one
 * on the WebSocket — each of them reconnecting along the way. Every client must
 * see every message exactly once, in the same order, and each sender's
 * messages in the order they were sent.
 */
import { expect } from 'chai';
import { call, createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';
import { WsClient } from './harness/ws-client.js';

const V3 = '/_matrix/client/v3';
const MESSAGES = 1000;
const FILTER = { room: { timeline: { limit: MESSAGES } } };

type TimelineEvent = { event_id: string; type: string; sender: string; content: { body?: string } };

function messagesIn(body: unknown, roomId: string): TimelineEvent[] {
  const rooms = (
    body as {
      rooms?: { join?: Record<string, { timeline?: { events?: TimelineEvent[]; limited?: boolean } }> };
    }
  ).rooms;
  const timeline = rooms?.join?.[roomId]?.timeline;
  return (timeline?.events ?? []).filter((event) => event.type === 'm.room.message');
}

function limitedIn(body: unknown, roomId: string): boolean {
  const rooms = (body as { rooms?: { join?: Record<string, { timeline?: { limited?: boolean } }> } }).rooms;
  return rooms?.join?.[roomId]?.timeline?.limited === true;
}

describe('1,000 interleaved messages, two long-poll clients and one WebSocket client', function () {
  this.timeout(120_000);
  let hs: TestHomeserver;
  let senders: TestUser[];
  let roomId: string;

  before(async () => {
    hs = await TestHomeserver.start({ configure: fastAccounts });
    senders = await Promise.all(['alice', 'bob', 'carol'].map((name) => createUser(hs, name)));
    const created = await call(hs, senders[0], 'POST', `${V3}/createRoom`, { preset: 'public_chat' });
    roomId = created.body.room_id as string;
    for (const user of senders.slice(1)) {
      const joined = await call(hs, user, 'POST', `${V3}/join/${encodeURIComponent(roomId)}`, {});
      expect(joined.status).to.equal(200);
    }
  });
  after(() => hs.stop());

  /** A long-polling client: every poll is a new request from its last token (a reconnect each time). */
  async function longPoll(user: TestUser, since: string, done: () => boolean): Promise<TimelineEvent[]> {
    const seen: TimelineEvent[] = [];
    let token = since;
    const filter = encodeURIComponent(JSON.stringify(FILTER));
    while (!done() || seen.length < MESSAGES) {
      const res = await call(
        hs,
        user,
        'GET',
        `${V3}/sync?since=${encodeURIComponent(token)}&timeout=2000&filter=${filter}`,
      );
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect(limitedIn(res.body, roomId), 'a gap in the timeline').to.equal(false);
      seen.push(...messagesIn(res.body, roomId));
      token = res.body.next_batch as string;
      if (seen.length >= MESSAGES) break;
    }
    return seen;
  }

  /** The WebSocket client: follows the pushes, and reconnects from its last token after 300 and 700 messages. */
  async function webSocketClient(user: TestUser, since: string): Promise<TimelineEvent[]> {
    const seen: TimelineEvent[] = [];
    let token = since;
    const reconnectAt = [300, 700];
    while (seen.length < MESSAGES) {
      const client = await WsClient.authenticated(hs, user.accessToken);
      client.send({ type: 'sync', since: token, filter: FILTER });
      let index = 0;
      for (;;) {
        const frame = await client.next((f) => f.type === 'sync' || f.type === 'error', 20_000, index);
        index = client.frames.indexOf(frame) + 1;
        expect(frame.type, JSON.stringify(frame)).to.equal('sync');
        expect(limitedIn(frame.body, roomId), 'a gap in the timeline').to.equal(false);
        seen.push(...messagesIn(frame.body, roomId));
        token = (frame.body as { next_batch: string }).next_batch;
        if (seen.length >= MESSAGES) break;
        if (reconnectAt.length > 0 && seen.length >= reconnectAt[0]!) {
          reconnectAt.shift();
          break;
        }
      }
      await client.close();
    }
    return seen;
  }

  it('every client sees every message exactly once, in order, across reconnects', async () => {
    const watchers = await Promise.all(
      senders.map(async (user) => {
        const res = await call(hs, user, 'GET', `${V3}/sync?timeout=0`);
        return res.body.next_batch as string;
      }),
    );
    let sending = true;
    const receivers = Promise.all([
      longPoll(senders[0]!, watchers[0]!, () => !sending),
      longPoll(senders[1]!, watchers[1]!, () => !sending),
      webSocketClient(senders[2]!, watchers[2]!),
    ]);

    const sentBy = new Map<string, string[]>(senders.map((user) => [user.userId, []]));
    // Three senders at once, each sequential: the room sees their messages interleaved.
    await Promise.all(
      senders.map(async (user, s) => {
        for (let i = s; i < MESSAGES; i += senders.length) {
          const res = await call(
            hs,
            user,
            'PUT',
            `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/m${i}`,
            {
              msgtype: 'm.text',
              body: `message ${i}`,
            },
          );
          expect(res.status, JSON.stringify(res.body)).to.equal(200);
          sentBy.get(user.userId)!.push(res.body.event_id as string);
        }
      }),
    );
    sending = false;
    const [first, second, overSocket] = await receivers;

    const ids = (events: TimelineEvent[]) => events.map((event) => event.event_id);
    expect(new Set(ids(first)).size, 'no duplicates').to.equal(MESSAGES);
    expect(first).to.have.length(MESSAGES);
    expect(ids(second)).to.deep.equal(ids(first));
    expect(ids(overSocket)).to.deep.equal(ids(first));
    for (const [sender, sent] of sentBy) {
      expect(ids(first.filter((event) => event.sender === sender)), sender).to.deep.equal(sent);
    }
  });
});
