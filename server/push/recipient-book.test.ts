import { expect } from 'chai';
import { httpPusher } from './push-test-fixtures.js';
import { type Admitted, RecipientBook, routesOf } from './recipient-book.js';

const pusher = httpPusher;
const url = 'https://push.example.org/_matrix/push/v1/notify';
const withPusher = (userId: string, unread: number) => ({
  userId,
  pushers: [pusher(userId, `${userId}-key`, { url })],
  unread,
});
const without = (userId: string) => ({ userId, pushers: [], unread: 0 });

/** A book whose ready events are pushed as "event: user=badge ...", and whose questions are kept. */
function book(size?: number) {
  const asked: string[][] = [];
  const pushed: string[] = [];
  const b: RecipientBook<string> = new RecipientBook<string>({
    ask: (userIds) => asked.push(userIds),
    ready: ({ userIds, item }: Admitted<string>) => {
      const badges = userIds.flatMap((userId) => {
        const recipient = b.notified(userId);
        return recipient === undefined ? [] : [`${userId}=${recipient.unread}`];
      });
      pushed.push(`${item}: ${badges.join(' ')}`);
    },
    size,
  });
  return { book: b, asked, pushed };
}

describe('recipient book (who the delivery worker pushes to, and their badges)', () => {
  it('asks once about unknown users, holds events in order, and counts badges on from the answer', () => {
    const { book: b, asked, pushed } = book();
    b.admit({ userIds: ['@a', '@b'], item: 'e1' });
    b.admit({ userIds: ['@a'], item: 'e2' });
    expect(asked).to.deep.equal([['@a', '@b']]);
    expect(pushed).to.deep.equal([]);
    // Totals count every notification posted before the answer: @a's 5 include e1 and e2.
    b.learn([withPusher('@a', 5), without('@b')]);
    expect(pushed).to.deep.equal(['e1: @a=4', 'e2: @a=5']);
    b.admit({ userIds: ['@b', '@a'], item: 'e3' });
    expect(pushed.at(-1)).to.equal('e3: @a=6');
    expect(asked).to.have.length(1);
  });

  it('keeps later events behind a waiting one, even when their users are known', () => {
    const { book: b, asked, pushed } = book();
    b.admit({ userIds: ['@a'], item: 'e1' });
    b.learn([withPusher('@a', 1)]);
    b.admit({ userIds: ['@c', '@a'], item: 'e2' });
    b.admit({ userIds: ['@a'], item: 'e3' });
    expect(pushed).to.deep.equal(['e1: @a=1']);
    expect(asked.at(-1)).to.deep.equal(['@c']);
    b.learn([withPusher('@c', 1)]);
    expect(pushed).to.deep.equal(['e1: @a=1', 'e2: @c=1 @a=2', 'e3: @a=3']);
  });

  it('asks again for a badge once the read marks moved', () => {
    const { book: b, asked, pushed } = book();
    b.admit({ userIds: ['@a'], item: 'e1' });
    b.learn([withPusher('@a', 3)]);
    b.read(['@a', '@nobody']);
    b.admit({ userIds: ['@a'], item: 'e2' });
    expect(asked).to.deep.equal([['@a'], ['@a']]);
    b.learn([withPusher('@a', 1)]);
    expect(pushed).to.deep.equal(['e1: @a=3', 'e2: @a=1']);
  });

  it('does not trust an answer read while the pushers changed: it asks again', () => {
    const { book: b, asked, pushed } = book();
    b.admit({ userIds: ['@a'], item: 'e1' });
    b.forget('@a');
    b.learn([withPusher('@a', 1)]);
    expect(pushed).to.deep.equal([]);
    expect(asked).to.deep.equal([['@a'], ['@a']]);
    b.learn([without('@a')]);
    expect(pushed).to.deep.equal(['e1: ']);
  });

  it('forgets everyone when every user may have changed, and keeps no more than its size when idle', () => {
    const { book: b, asked } = book(2);
    b.admit({ userIds: ['@a', '@b', '@c'], item: 'e1' });
    b.learn([without('@a'), without('@b'), without('@c')]);
    b.admit({ userIds: ['@c'], item: 'e2' });
    expect(asked).to.have.length(1);
    b.admit({ userIds: ['@a'], item: 'e3' });
    expect(asked.at(-1)).to.deep.equal(['@a']);
    b.learn([without('@a')]);
    b.forget();
    b.admit({ userIds: ['@a'], item: 'e4' });
    expect(asked.at(-1)).to.deep.equal(['@a']);
  });

  it('groups a user’s pushers by gateway URL and format into one request each', () => {
    const routes = routesOf('@a', [
      pusher('@a', 'phone', { url }),
      pusher('@a', 'tablet', { url, extra: 1 }),
      pusher('@a', 'watch', { url, format: 'event_id_only' }),
      pusher('@a', 'odd', {}),
    ]);
    expect(
      routes.map((route) => [route.key, route.idOnly, route.targets.map((t) => t.pushkey)]),
    ).to.deep.equal([
      [`@a ${url}`, false, ['phone', 'tablet']],
      [`@a ${url}`, true, ['watch']],
    ]);
    expect(JSON.parse(`${routes[0]!.devicePrefixes[1]}{}}`)).to.deep.equal({
      app_id: 'app',
      pushkey: 'tablet',
      pushkey_ts: 1_700_000_000,
      data: { extra: 1 },
      tweaks: {},
    });
  });
});
