/**
 * A real client library against Myelin (issue #4 "Tests"): two matrix-js-sdk
 * clients (v36, the newest that runs on Node 20) log in with a password, run
 * their sync loops, create a room, invite and join, and exchange messages with
 * emoji, a reaction and an edit; each client's live timeline must show what
 * the other sent. Unencrypted room: the SDK's crypto is never initialised.
 * SDK_LOG=1 shows the SDK's own debug log (its requests and sync steps).
 */
import { expect } from 'chai';
import {
  ClientEvent,
  createClient,
  EventType,
  type MatrixClient,
  type MatrixEvent,
  MsgType,
  Preset,
  RelationType,
  type Room,
  RoomEvent,
  SyncState,
} from 'matrix-js-sdk';
import { logger as sdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { createAccount, fastAccounts } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const WAIT_MS = 8000;

/** Emoji the SDK must carry byte-exact: astral plane, ZWJ family, skin tone, flag, keycap. */
const EMOJI_TEXT = 'Hello 👋🏽 family 👨‍👩‍👧‍👦 flag 🇳🇿 keycap 1️⃣ brain 🧠';

function waitFor<T>(what: string, check: () => T | undefined, subscribe: (wake: () => void) => () => void) {
  return new Promise<T>((resolve, reject) => {
    let unsubscribe = () => {};
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`Timed out waiting for ${what}`));
    }, WAIT_MS);
    const attempt = () => {
      const found = check();
      if (found === undefined) return false;
      clearTimeout(timer);
      unsubscribe();
      resolve(found);
      return true;
    };
    if (attempt()) return;
    unsubscribe = subscribe(() => void attempt());
  });
}

/** Resolves once the client's first sync is processed. */
function waitForPrepared(client: MatrixClient): Promise<true> {
  return waitFor(
    `${client.getUserId()} to sync`,
    () =>
      client.getSyncState() === SyncState.Prepared || client.getSyncState() === SyncState.Syncing
        ? true
        : undefined,
    (wake) => {
      client.on(ClientEvent.Sync, wake);
      return () => client.off(ClientEvent.Sync, wake);
    },
  );
}

/** Resolves with the room once the client knows it with the given own membership. */
function waitForMembership(client: MatrixClient, roomId: string, membership: string): Promise<Room> {
  return waitFor(
    `${client.getUserId()} to be '${membership}' in ${roomId}`,
    () => {
      const room = client.getRoom(roomId);
      return room?.getMyMembership() === membership ? room : undefined;
    },
    (wake) => {
      client.on(ClientEvent.Room, wake);
      client.on(RoomEvent.MyMembership, wake);
      client.on(RoomEvent.Timeline, wake);
      return () => {
        client.off(ClientEvent.Room, wake);
        client.off(RoomEvent.MyMembership, wake);
        client.off(RoomEvent.Timeline, wake);
      };
    },
  );
}

/** Resolves with the first event of the room's live timeline that matches. */
function waitForTimelineEvent(
  client: MatrixClient,
  roomId: string,
  what: string,
  matches: (event: MatrixEvent) => boolean,
): Promise<MatrixEvent> {
  return waitFor(
    `${client.getUserId()} to see ${what}`,
    () => client.getRoom(roomId)?.getLiveTimeline().getEvents().find(matches),
    (wake) => {
      client.on(RoomEvent.Timeline, wake);
      return () => client.off(RoomEvent.Timeline, wake);
    },
  );
}

describe('matrix-js-sdk v36 against Myelin', function () {
  this.timeout(30_000);
  let hs: TestHomeserver;
  const clients: MatrixClient[] = [];
  let previousLogLevel: number;

  before(async () => {
    previousLogLevel = sdkLogger.getLevel();
    sdkLogger.setLevel(process.env.SDK_LOG ? 'debug' : 'silent');
    hs = await TestHomeserver.start({ configure: fastAccounts });
  });

  after(async () => {
    for (const client of clients) client.stopClient();
    await hs?.stop();
    sdkLogger.setLevel(previousLogLevel as Parameters<typeof sdkLogger.setLevel>[0]);
  });

  /** Logs in through the SDK (m.login.password) and starts a client with the session. */
  async function signIn(localpart: string): Promise<MatrixClient> {
    const password = `${localpart} secret 🔑`;
    const userId = await createAccount(hs, localpart, { password, displayName: localpart });
    const anonymous = createClient({ baseUrl: hs.baseUrl });
    const session = await anonymous.loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: localpart },
      password,
      initial_device_display_name: 'js-sdk test',
    });
    expect(session.user_id).to.equal(userId);
    const client = createClient({
      baseUrl: hs.baseUrl,
      userId: session.user_id,
      accessToken: session.access_token,
      deviceId: session.device_id,
    });
    clients.push(client);
    await client.startClient({ initialSyncLimit: 20 });
    await waitForPrepared(client);
    return client;
  }

  it('two clients chat: invite, join, emoji messages, a reaction and an edit, each seen by the other', async () => {
    const alice = await signIn('alice');
    const bob = await signIn('bob');
    // The SDK fetched the server's push rules (GET /pushrules/) before its first sync.
    expect(alice.pushRules?.global.override?.[0]?.rule_id).to.equal('.m.rule.master');

    const { room_id: roomId } = await alice.createRoom({
      preset: Preset.PrivateChat,
      name: 'SDK room 🏠',
      invite: [bob.getUserId()!],
    });
    await waitForMembership(alice, roomId, 'join');
    await waitForMembership(bob, roomId, 'invite');
    await bob.joinRoom(roomId);
    await waitForMembership(bob, roomId, 'join');
    await waitForTimelineEvent(
      alice,
      roomId,
      "bob's join",
      (event) => event.getType() === EventType.RoomMember && event.getStateKey() === bob.getUserId(),
    );
    expect(alice.getRoom(roomId)!.getJoinedMemberCount()).to.equal(2);
    expect(bob.getRoom(roomId)!.name).to.equal('SDK room 🏠');

    // Alice speaks; Bob sees it byte-exact.
    const { event_id: hello } = await alice.sendMessage(roomId, { msgtype: MsgType.Text, body: EMOJI_TEXT });
    const seenByBob = await waitForTimelineEvent(bob, roomId, "alice's message", (e) => e.getId() === hello);
    expect(seenByBob.getSender()).to.equal(alice.getUserId());
    expect(seenByBob.getContent().body).to.equal(EMOJI_TEXT);

    // Bob answers and reacts; Alice sees both, the reaction aggregated on her message.
    const { event_id: answer } = await bob.sendMessage(roomId, {
      msgtype: MsgType.Emote,
      body: 'waves back 🙋🏿‍♀️',
      format: 'org.matrix.custom.html',
      formatted_body: '<b>waves back</b> 🙋🏿‍♀️',
    });
    const { event_id: reaction } = await bob.sendEvent(roomId, EventType.Reaction, {
      'm.relates_to': { rel_type: RelationType.Annotation, event_id: hello, key: '👍🏽' },
    });
    const answerSeen = await waitForTimelineEvent(alice, roomId, "bob's emote", (e) => e.getId() === answer);
    expect(answerSeen.getContent()).to.include({ msgtype: 'm.emote', body: 'waves back 🙋🏿‍♀️' });
    expect(answerSeen.getContent().formatted_body).to.equal('<b>waves back</b> 🙋🏿‍♀️');
    const reactionSeen = await waitForTimelineEvent(
      alice,
      roomId,
      "bob's reaction",
      (e) => e.getId() === reaction,
    );
    expect(reactionSeen.getRelation()).to.deep.equal({
      rel_type: 'm.annotation',
      event_id: hello,
      key: '👍🏽',
    });
    const annotations = alice
      .getRoom(roomId)!
      .relations.getChildEventsForEvent(hello, RelationType.Annotation, EventType.Reaction);
    const byKey = annotations?.getSortedAnnotationsByKey() ?? [];
    expect(byKey.map(([key, events]) => [key, [...events].map((e) => e.getSender())])).to.deep.equal([
      ['👍🏽', [bob.getUserId()]],
    ]);

    // Alice edits her message; Bob's copy of it shows the replacement.
    const editedText = 'Hello again 👋🏽 (edited ✏️)';
    const { event_id: edit } = await alice.sendMessage(roomId, {
      msgtype: MsgType.Text,
      body: `* ${editedText}`,
      'm.new_content': { msgtype: MsgType.Text, body: editedText },
      'm.relates_to': { rel_type: RelationType.Replace, event_id: hello },
    });
    const editSeen = await waitForTimelineEvent(bob, roomId, "alice's edit", (e) => e.getId() === edit);
    expect(editSeen.getRelation()).to.deep.include({ rel_type: 'm.replace', event_id: hello });
    const original = bob.getRoom(roomId)!.findEventById(hello)!;
    await waitFor(
      'the edit to apply to the original on bob',
      () => (original.replacingEventId() === edit ? true : undefined),
      (wake) => {
        bob.on(RoomEvent.Timeline, wake);
        return () => bob.off(RoomEvent.Timeline, wake);
      },
    );
    expect(original.getContent().body).to.equal(editedText);
    expect(original.getOriginalContent().body).to.equal(EMOJI_TEXT);

    // Each client's timeline holds, in order, what the other sent.
    const bodiesSeenBy = (client: MatrixClient) =>
      client
        .getRoom(roomId)!
        .getLiveTimeline()
        .getEvents()
        .filter((e) => e.getType() === EventType.RoomMessage && e.getSender() !== client.getUserId())
        .map((e) => e.getId());
    expect(bodiesSeenBy(bob)).to.deep.equal([hello, edit]);
    expect(bodiesSeenBy(alice)).to.deep.equal([answer]);
  });
});
