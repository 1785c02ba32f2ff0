/**
 * Room federation without HTTP or TLS (federation/in-process-federation.ts: two servers'
 * services in one process, each on its own SQLite file):
 *  - inbound PDUs/s: server A makes N messages in one room (and in 10 rooms); server B
 *    takes them through the full inbound checks (signatures, hash, auth events, state,
 *    current state) in transactions of 50, as PUT /send hands them over;
 *  - joining a room whose state holds M members: make_join, send_join, checking the returned
 *    state and auth chain, storing it, on the joining side, end to end.
 * Prints figures, asserts nothing. Run: node --import tsx bench/federation-rooms.bench.ts [--members=5000] [--pdus=2000]
 */
import { loadavg } from 'node:os';
import { openInProcessFederation } from '../federation/in-process-federation.js';
import type { Pdu } from '../protocol/events.js';

const args = new Map(
  process.argv.slice(2).map((arg) => {
    const [key, value] = arg.replace(/^--/, '').split('=');
    return [key!, Number(value)];
  }),
);
const PDUS = args.get('pdus') ?? 2000;
const MEMBERS = args.get('members') ?? 5000;

async function inboundThroughput(rooms: number): Promise<void> {
  const fed = openInProcessFederation();
  const a = await fed.add('a.test');
  const b = await fed.add('b.test');
  const alice = await a.account('alice');
  const bob = await b.account('bob');
  const roomIds: string[] = [];
  for (let i = 0; i < rooms; i++) {
    const { roomId } = await a.rooms.createRoom(alice, { preset: 'public_chat' });
    await b.handshakes.joinRemote(roomId, bob, ['a.test']);
    roomIds.push(roomId);
  }
  await fed.deliver('a.test');
  const sends: Promise<unknown>[] = [];
  for (let n = 0; n < PDUS; n++) {
    sends.push(
      a.rooms.sender.sendEvent({
        roomId: roomIds[n % rooms]!,
        sender: alice,
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: `message ${n} 🧠` },
      }),
    );
  }
  await Promise.all(sends);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const pdus: Pdu[] = a.sent
    .filter(([destinations]) => destinations.includes('b.test'))
    .map(([, pdu]) => pdu);
  const start = performance.now();
  let errors = 0;
  for (let i = 0; i < pdus.length; i += 50) {
    const results = await b.inbound.handlePdus('a.test', pdus.slice(i, i + 50));
    errors += Object.values(results).filter((r) => r.error !== undefined).length;
  }
  const seconds = (performance.now() - start) / 1000;
  let inTimelines = 0;
  for (const roomId of roomIds) {
    const events = await b.storage.events.roomEventsAfter(roomId, 0, 100_000);
    inTimelines += events.filter((event) => event.pdu.type === 'm.room.message').length;
  }
  console.log(
    `inbound /send, ${rooms} room(s): ${pdus.length} PDUs in ${seconds.toFixed(2)} s = ${Math.round(pdus.length / seconds)} PDUs/s (${errors} errors, ${inTimelines} in B's timelines)`,
  );
  await fed.close();
}

async function bigJoin(): Promise<void> {
  const fed = openInProcessFederation();
  const a = await fed.add('a.test');
  const b = await fed.add('b.test');
  const alice = await a.account('alice');
  const bob = await b.account('bob');
  const { roomId } = await a.rooms.createRoom(alice, { preset: 'public_chat' });
  const joins: Promise<unknown>[] = [];
  for (let n = 0; n < MEMBERS; n++) {
    const user = await a.account(`member${n}`);
    joins.push(a.rooms.membership.join(roomId, user));
  }
  await Promise.all(joins);
  const start = performance.now();
  await b.handshakes.joinRemote(roomId, bob, ['a.test']);
  const seconds = (performance.now() - start) / 1000;
  const members = await b.storage.memberships.membersOfRoom(roomId, ['join']);
  console.log(
    `join a room of ${MEMBERS + 1} members from another server: ${seconds.toFixed(2)} s (${members.length} members seen on B)`,
  );
  await fed.close();
}

console.log(
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
await inboundThroughput(1);
await inboundThroughput(10);
await bigJoin();
