/**
 * Initial /sync of a user in many rooms: the rooms and their history are made
 * in the server process through the services (fast), then GET /sync without
 * `since` and without a filter (what a fresh client sends) is timed from here,
 * several times: the first answer (cold caches) and the median of the rest.
 */
import { KeepAliveClient } from './http-client.js';
import { summarise } from './report.js';
import type { ServerHandle } from './server-handle.js';

export interface InitialSyncResult {
  readonly rooms: number;
  readonly messagesPerRoom: number;
  readonly buildSeconds: number;
  readonly eventsBuilt: number;
  readonly firstMs: number;
  readonly medianMs: number;
  readonly minMs: number;
  readonly bytes: number;
  /** Joined rooms in the answer, checked against `rooms`. */
  readonly roomsInAnswer: number;
  /** Timeline events in the answer, all rooms together. */
  readonly timelineEvents: number;
}

export async function runInitialSync(
  server: ServerHandle,
  rooms: number,
  messagesPerRoom: number,
  repeats: number,
): Promise<InitialSyncResult> {
  const [user] = await server.users(`syncer${rooms}x`, 1);
  const buildStart = performance.now();
  const filled = await server.request({ op: 'fill', userId: user!.userId, rooms, messages: messagesPerRoom });
  const buildSeconds = (performance.now() - buildStart) / 1000;
  const client = new KeepAliveClient(server.port);
  const times: number[] = [];
  let bytes = 0;
  let roomsInAnswer = 0;
  let timelineEvents = 0;
  try {
    for (let i = 0; i < repeats; i++) {
      const started = performance.now();
      const answer = await client.call('GET', '/_matrix/client/v3/sync', user!.accessToken);
      times.push(performance.now() - started);
      if (answer.status !== 200)
        throw new Error(`initial sync: ${answer.status} ${JSON.stringify(answer.body)}`);
      bytes = answer.bytes;
      const joined =
        (answer.body.rooms as { join?: Record<string, { timeline?: { events?: unknown[] } }> })?.join ?? {};
      roomsInAnswer = Object.keys(joined).length;
      timelineEvents = Object.values(joined).reduce(
        (sum, room) => sum + (room.timeline?.events?.length ?? 0),
        0,
      );
    }
  } finally {
    client.close();
  }
  const rest = summarise(times.slice(1));
  return {
    rooms,
    messagesPerRoom,
    buildSeconds,
    eventsBuilt: filled.events,
    firstMs: times[0]!,
    medianMs: rest.p50,
    minMs: Math.min(...times),
    bytes,
    roomsInAnswer,
    timelineEvents,
  };
}
