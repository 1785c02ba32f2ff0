import { expect } from 'chai';
import { type JsonObject, type Pdu, stateTupleKey } from '../protocol/events.js';
import { hashAndSignEvent, toRoomEvent } from '../protocol/hashing.js';
import { roomVersionRules } from '../protocol/room-versions.js';
import { MatrixError } from '../server/errors.js';
import type { StoredEvent } from '../storage/event-store.js';
import type { Storage } from '../storage/storage.js';
import {
  type InProcessFederation,
  type InProcessServer,
  openInProcessFederation,
} from './in-process-federation.js';
import { PeerReads } from './peer-reads.js';

async function timeline(server: InProcessServer, roomId: string): Promise<StoredEvent[]> {
  return server.storage.events.roomEventsAfter(roomId, 0, 10_000);
}

const text = (body: string) => ({ type: 'm.room.message', content: { msgtype: 'm.text', body } });

describe('Room federation (in process)', () => {
  for (const version of ['10', '12', '1'] as const) {
    describe(`room version ${version}`, () => {
      let fed: InProcessFederation;
      let a: InProcessServer;
      let b: InProcessServer;
      let alice: string;
      let bob: string;
      let roomId: string;

      beforeEach(async () => {
        fed = openInProcessFederation();
        a = await fed.add('a.test');
        b = await fed.add('b.test');
        alice = await a.account('alice');
        bob = await b.account('bob');
        ({ roomId } = await a.rooms.createRoom(alice, {
          preset: 'public_chat',
          room_version: version,
          name: 'Fed',
        }));
      });
      afterEach(async () => {
        const warnings = [...fed.servers.values()].flatMap((server) => server.warnings);
        await fed.close();
        expect(warnings).to.deep.equal([]);
      });

      it('joins a remote room: state and auth chain verified and stored, the join in both timelines', async () => {
        if (version === '1') {
          // State resolution v1 is not implemented; joining works, forks would not.
        }
        const joinId = await b.handshakes.joinRemote(roomId, bob, ['a.test']);
        expect(await b.storage.state.currentStateEventId(roomId, 'm.room.member', bob)).to.equal(joinId);
        expect(await b.storage.state.currentStateEventId(roomId, 'm.room.member', alice)).to.be.a('string');
        const bName = await b.storage.state.currentStateEventId(roomId, 'm.room.name', '');
        expect((await b.storage.events.getEvent(bName!))!.pdu.content.name).to.equal('Fed');
        expect((await timeline(b, roomId)).map((e) => e.eventId)).to.deep.equal([joinId]);
        expect((await timeline(a, roomId)).at(-1)!.eventId).to.equal(joinId);
        expect(await b.storage.memberships.membersOfRoom(roomId, ['join'])).to.have.length(2);
      });

      it('sends local events to the other servers of the room and accepts theirs, emoji byte-exact', async () => {
        await b.handshakes.joinRemote(roomId, bob, ['a.test']);
        const body = 'héllo 👩‍👩‍👧‍👦 🏳️‍🌈 𝄞';
        const sent = await a.rooms.sender.sendEvent({ roomId, sender: alice, ...text(body) });
        await fed.deliver('a.test');
        const onB = await b.storage.events.getEvent(sent.eventId);
        expect(onB?.outlier).to.equal(false);
        expect(onB?.rejectionReason).to.equal(null);
        expect(onB!.pdu.content.body).to.equal(body);
        expect(Buffer.from(onB!.pdu.content.body as string).equals(Buffer.from(body))).to.equal(true);
        expect(b.announced.map((p) => p.event.eventId)).to.include(sent.eventId);

        const reply = await b.rooms.sender.sendEvent({ roomId, sender: bob, ...text('hi back') });
        await fed.deliver('b.test');
        expect((await a.storage.events.getEvent(reply.eventId))?.rejectionReason).to.equal(null);
        expect((await timeline(a, roomId)).at(-1)!.eventId).to.equal(reply.eventId);
      });

      it('fills a gap with get_missing_events', async () => {
        await b.handshakes.joinRemote(roomId, bob, ['a.test']);
        await fed.deliver('a.test');
        const ids: string[] = [];
        for (const n of [1, 2, 3, 4])
          ids.push((await a.rooms.sender.sendEvent({ roomId, sender: alice, ...text(`m${n}`) })).eventId);
        await new Promise((resolve) => setTimeout(resolve, 20));
        const last = await a.storage.events.getEvent(ids[3]!);
        const result = await b.inbound.handlePdus('a.test', [last!.pdu]);
        expect(result[ids[3]!]).to.deep.equal({});
        expect(fed.requests.some((r) => r.includes('get_missing_events'))).to.equal(true);
        const onB = (await timeline(b, roomId)).map((e) => e.eventId);
        expect(onB.slice(-4)).to.deep.equal(ids);
      });

      it('rejects a PDU with a bad signature and stores nothing', async () => {
        await b.handshakes.joinRemote(roomId, bob, ['a.test']);
        const sent = await a.rooms.sender.sendEvent({ roomId, sender: alice, ...text('signed') });
        const pdu = structuredClone((await a.storage.events.getEvent(sent.eventId))!.pdu);
        const sig = pdu.signatures['a.test']!;
        const keyId = Object.keys(sig)[0]!;
        sig[keyId] = `${sig[keyId]!.slice(0, -4)}AAAA`;
        const result = await b.inbound.handlePdus('a.test', [pdu]);
        expect(result[sent.eventId]?.error).to.match(/signature/);
        expect(await b.storage.events.getEvent(sent.eventId)).to.equal(null);
      });

      it('keeps only the redacted event when the content hash does not match', async () => {
        await b.handshakes.joinRemote(roomId, bob, ['a.test']);
        await fed.deliver('a.test');
        const sent = await a.rooms.sender.sendEvent({ roomId, sender: alice, ...text('original') });
        const pdu = structuredClone((await a.storage.events.getEvent(sent.eventId))!.pdu);
        pdu.content.body = 'tampered';
        const result = await b.inbound.handlePdus('a.test', [pdu]);
        expect(result[sent.eventId]).to.deep.equal({});
        const stored = await b.storage.events.getEvent(sent.eventId);
        expect(stored!.pdu.content).to.deep.equal({});
      });

      it('rejects an event that fails the auth rules (sender not in the room)', async () => {
        await b.handshakes.joinRemote(roomId, bob, ['a.test']);
        await fed.deliver('a.test');
        const rules = roomVersionRules(version);
        const head = (await a.storage.events.getEvent(
          (
            await a.storage.state.forwardExtremities(roomId)
          )[0]!,
        ))!;
        const create = await a.storage.state.currentStateEventId(roomId, 'm.room.create', '');
        const power = await a.storage.state.currentStateEventId(roomId, 'm.room.power_levels', '');
        const ref = (id: string) => (rules.eventReferencesIncludeHashes ? [id, { sha256: 'x' }] : id);
        const mallory = '@mallory:a.test';
        const unsigned = {
          type: 'm.room.message',
          room_id: roomId,
          sender: mallory,
          content: { msgtype: 'm.text', body: 'intruder' } as JsonObject,
          depth: head.pdu.depth + 1,
          prev_events: [rules.eventReferencesIncludeHashes ? head.pdu.prev_events[0]! : head.eventId],
          auth_events: (rules.createEventInAuthEvents ? [create!, power!] : [power!]).map(ref),
          origin_server_ts: Date.now(),
          ...(rules.eventIdFormat === 'server-generated' ? { event_id: '$intruder:a.test' } : {}),
        } as unknown as Pdu;
        if (rules.eventReferencesIncludeHashes) {
          // v1-2 references carry hashes we do not check; cite the real head.
          unsigned.prev_events = [[head.eventId, { sha256: 'x' }]];
        }
        const pdu = hashAndSignEvent(unsigned, 'a.test', a.signingKey, rules);
        const { eventId } = toRoomEvent(pdu, rules);
        const result = await b.inbound.handlePdus('a.test', [pdu]);
        expect(result[eventId]?.error).to.match(/rejected/);
        expect((await timeline(b, roomId)).map((e) => e.eventId)).to.not.include(eventId);
      });

      it('judges what a server may see in /backfill and /get_missing_events by key, never loading a whole state', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 30; i++)
          ids.push((await a.rooms.sender.sendEvent({ roomId, sender: alice, ...text(`m${i}`) })).eventId);
        await b.handshakes.joinRemote(roomId, bob, ['a.test']);
        let wholeStates = 0;
        const counted = new Set(['stateAtSnapshot', 'stateBeforeEvent', 'stateAfterEvent', 'currentState']);
        const state = new Proxy(a.storage.state, {
          get(target, key, receiver) {
            const value = Reflect.get(target, key, receiver);
            if (typeof value !== 'function') return value;
            return (...args: unknown[]) => {
              if (counted.has(String(key))) wholeStates++;
              return value.apply(target, args);
            };
          },
        });
        const reads = new PeerReads({ ...a.storage, state } as Storage);
        const back = await reads.backfill('b.test', roomId, [ids.at(-1)!], 20);
        expect(back.map((e) => e.eventId)).to.deep.equal(ids.slice(-20).reverse());
        const missing = await reads.missingEvents('b.test', roomId, {
          earliest_events: [ids[0]!],
          latest_events: [ids.at(-1)!],
          limit: 50,
        });
        expect(missing.map((e) => e.eventId)).to.deep.equal(ids.slice(1, -1));
        expect(wholeStates).to.equal(0);
      });

      it('refuses state_ids, state and events to a server with no member in the room', async () => {
        const c = await fed.add('c.test');
        const eventId = (await a.storage.state.forwardExtremities(roomId))[0]!;
        for (const read of [
          () => a.reads.stateAt('c.test', roomId, eventId),
          () => a.reads.event('c.test', eventId),
          () => a.reads.missingEvents('c.test', roomId, { earliest_events: [], latest_events: [eventId] }),
        ]) {
          let error: unknown;
          try {
            await read();
          } catch (e) {
            error = e;
          }
          expect(error).to.be.instanceOf(MatrixError);
          expect((error as MatrixError).errcode).to.equal('M_FORBIDDEN');
        }
        void c;
        await b.handshakes.joinRemote(roomId, bob, ['a.test']);
        const state = await a.reads.stateAt('b.test', roomId, eventId);
        expect(state.state.length).to.be.greaterThan(3);
      });
    });
  }

  describe('restricted joins over federation', () => {
    let fed: InProcessFederation;
    afterEach(async () => {
      const warnings = [...fed.servers.values()].flatMap((server) => server.warnings);
      await fed.close();
      expect(warnings).to.deep.equal([]);
    });

    it('the resident names and signs the authoriser; the joining side keeps the resident’s signed copy', async () => {
      fed = openInProcessFederation();
      const { a, b, alice, bob, space, roomId } = await restrictedRoomOnA(fed);
      await b.handshakes.joinRemote(space, bob, ['a.test']);
      const joinId = await b.handshakes.joinRemote(roomId, bob, ['a.test']);
      const onB = await b.storage.events.getEvent(joinId);
      expect(onB?.pdu.content.join_authorised_via_users_server).to.equal(alice);
      expect(Object.keys(onB!.pdu.signatures)).to.have.members(['a.test', 'b.test']);
      const onA = await a.storage.events.getEvent(joinId);
      expect(onA?.rejectionReason).to.equal(null);
      expect(onA?.pdu.signatures).to.deep.equal(onB!.pdu.signatures);
      expect(await a.storage.state.currentStateEventId(roomId, 'm.room.member', bob)).to.equal(joinId);
    });

    it('refuses the join of a user in none of the allowed rooms', async () => {
      fed = openInProcessFederation();
      const { a, b, bob, roomId } = await restrictedRoomOnA(fed);
      let error: unknown;
      try {
        await b.handshakes.joinRemote(roomId, bob, ['a.test']);
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(MatrixError);
      expect(await a.storage.state.currentStateEventId(roomId, 'm.room.member', bob)).to.equal(null);
    });
  });

  for (const version of ['10', '12'] as const) {
    describe(`forks, soft-fail and redactions (room version ${version})`, () => {
      let fed: InProcessFederation;
      let a: InProcessServer;
      let b: InProcessServer;
      let alice: string;
      let bob: string;
      let roomId: string;

      beforeEach(async () => {
        fed = openInProcessFederation();
        a = await fed.add('a.test');
        b = await fed.add('b.test');
        alice = await a.account('alice');
        bob = await b.account('bob');
        ({ roomId } = await a.rooms.createRoom(alice, { preset: 'public_chat', room_version: version }));
        await b.handshakes.joinRemote(roomId, bob, ['a.test']);
        await fed.deliver('a.test');
      });
      afterEach(async () => {
        const warnings = [...fed.servers.values()].flatMap((server) => server.warnings);
        await fed.close();
        expect(warnings).to.deep.equal([]);
      });

      it('soft-fails an event allowed by the state before it but not by the current state', async () => {
        await a.rooms.membership.ban(roomId, alice, bob);
        // B has not heard of the ban: bob's message is fine by B's state.
        const sent = await b.rooms.sender.sendEvent({ roomId, sender: bob, ...text('after the ban') });
        await fed.deliver('b.test');
        const onA = await a.storage.events.getEvent(sent.eventId);
        expect(onA?.rejectionReason).to.match(/^soft-failed/);
        expect((await timeline(a, roomId)).map((e) => e.eventId)).to.not.include(sent.eventId);
      });

      it('keeps a soft-failed state event’s state (spec "Soft failure") but neither shows nor builds on it', async () => {
        await a.rooms.membership.ban(roomId, alice, bob);
        // B has not heard of the ban: bob's new display name is fine by B's state.
        const sent = await b.rooms.sender.sendEvent({
          roomId,
          sender: bob,
          type: 'm.room.member',
          stateKey: bob,
          content: { membership: 'join', displayname: 'Bob, banned' },
        });
        await fed.deliver('b.test');
        const onA = await a.storage.events.getEvent(sent.eventId);
        expect(onA?.outlier).to.equal(false);
        expect(onA?.rejectionReason).to.match(/^soft-failed/);
        // Its state counts: the state after it has it (what state resolution reads when later
        // events cite it), while the current state keeps the ban and no new event cites it.
        const after = await a.storage.state.stateAfterEvent(sent.eventId);
        expect(after?.get(stateTupleKey('m.room.member', bob))).to.equal(sent.eventId);
        const current = await a.storage.state.currentStateEventId(roomId, 'm.room.member', bob);
        expect(current).to.not.equal(sent.eventId);
        expect(await a.storage.state.forwardExtremities(roomId)).to.not.include(sent.eventId);
        expect((await timeline(a, roomId)).map((e) => e.eventId)).to.not.include(sent.eventId);
        // Not an error for the sender (it is valid), and not handled twice.
        const again = await a.inbound.handlePdus('b.test', [onA!.pdu]);
        expect(again[sent.eventId]).to.deep.equal({});
      });

      it('resolves state where concurrent branches meet: both servers agree on the current state', async () => {
        await a.rooms.sender.sendEvent({
          roomId,
          sender: alice,
          type: 'm.room.name',
          stateKey: '',
          content: { name: 'From A' },
        });
        await b.rooms.sender.sendEvent({
          roomId,
          sender: bob,
          type: 'm.room.member',
          stateKey: bob,
          content: { membership: 'join', displayname: 'Bob on B' },
        });
        await fed.deliver('a.test');
        await fed.deliver('b.test');
        // Each now has two forward extremities; the next event of each merges them.
        expect(await a.storage.state.forwardExtremities(roomId)).to.have.length(2);
        await a.rooms.sender.sendEvent({ roomId, sender: alice, ...text('merge') });
        await fed.deliver('a.test');
        const stateA = await a.storage.state.currentState(roomId);
        const stateB = await b.storage.state.currentState(roomId);
        expect([...stateB].sort()).to.deep.equal([...stateA].sort());
        const nameId = stateB.get(stateTupleKey('m.room.name', ''));
        expect((await b.storage.events.getEvent(nameId!))!.pdu.content.name).to.equal('From A');
        const bobId = stateA.get(stateTupleKey('m.room.member', bob));
        expect((await a.storage.events.getEvent(bobId!))!.pdu.content.displayname).to.equal('Bob on B');
        expect(await b.storage.state.forwardExtremities(roomId)).to.have.length(1);
      });

      it('interleaves local sends with PDUs arriving for the same room; both servers end with every event', async () => {
        const fromB: string[] = [];
        for (let n = 0; n < 60; n++)
          fromB.push((await b.rooms.sender.sendEvent({ roomId, sender: bob, ...text(`b${n}`) })).eventId);
        await new Promise((resolve) => setTimeout(resolve, 20));
        const pdus = b.sent.filter(([d]) => d.includes('a.test')).map(([, pdu]) => pdu);
        const fromA: Promise<{ eventId: string }>[] = [];
        const deliveries: Promise<unknown>[] = [];
        for (let i = 0; i < pdus.length; i += 10) {
          deliveries.push(a.inbound.handlePdus('b.test', pdus.slice(i, i + 10)));
          for (let k = 0; k < 5; k++)
            fromA.push(a.rooms.sender.sendEvent({ roomId, sender: alice, ...text(`a${i + k}`) }));
        }
        const results = await Promise.all(deliveries);
        for (const result of results)
          for (const value of Object.values(result as object)) expect(value).to.deep.equal({});
        const aIds = (await Promise.all(fromA)).map((sent) => sent.eventId);
        await fed.deliver('a.test');
        for (const server of [a, b]) {
          const ids = new Set((await timeline(server, roomId)).map((e) => e.eventId));
          for (const id of [...fromB, ...aIds])
            expect(ids.has(id), `${server.name} lacks ${id}`).to.equal(true);
        }
        const stateA = await a.storage.state.currentState(roomId);
        const stateB = await b.storage.state.currentState(roomId);
        expect([...stateB].sort()).to.deep.equal([...stateA].sort());
      });

      it('applies a redaction received from the sender of the redacted event', async () => {
        const sent = await b.rooms.sender.sendEvent({ roomId, sender: bob, ...text('regret') });
        await fed.deliver('b.test');
        await b.rooms.redactions.redact({ roomId, sender: bob, targetEventId: sent.eventId });
        await fed.deliver('b.test');
        expect((await a.storage.events.getEvent(sent.eventId))!.pdu.content).to.deep.equal({});
        expect(await a.storage.events.redactionOf(sent.eventId)).to.be.a('string');
      });

      it('applies a redaction made before its target arrived, as the target is stored', async () => {
        const sent = await b.rooms.sender.sendEvent({ roomId, sender: bob, ...text('spam from afar') });
        // A's admin redacts it by ID before B's /send delivers it (Synapse lets the redact level do so).
        const redaction = await a.rooms.redactions.redact({
          roomId,
          sender: alice,
          targetEventId: sent.eventId,
        });
        expect(await a.storage.events.getEvent(sent.eventId)).to.equal(null);
        // What A's listeners (sync, push) are told of the event: its redacted form.
        const announced: JsonObject[] = [];
        a.rooms.sender.onEventPersisted(({ event, json }) => {
          if (event.eventId === sent.eventId) announced.push(event.pdu.content, JSON.parse(json).content);
        });
        await fed.deliver('b.test');
        expect(announced).to.deep.equal([{}, {}]);
        const onA = await a.storage.events.getEvent(sent.eventId);
        expect(onA?.outlier).to.equal(false);
        expect(onA!.pdu.content).to.deep.equal({});
        expect(await a.storage.events.redactionOf(sent.eventId)).to.equal(redaction.eventId);
        // B gets the redaction of its own user's event from A's admin (redact level): applied too.
        await fed.deliver('a.test');
        expect((await b.storage.events.getEvent(sent.eventId))!.pdu.content).to.deep.equal({});
        expect(await b.storage.events.redactionOf(sent.eventId)).to.equal(redaction.eventId);
      });
    });
  }

  describe('three servers', () => {
    it('relays a join to the room’s other servers, so that everyone’s events reach everyone', async () => {
      const fed = openInProcessFederation();
      try {
        const a = await fed.add('a.test');
        const b = await fed.add('b.test');
        const c = await fed.add('c.test');
        const alice = await a.account('alice');
        const bob = await b.account('bob');
        const carol = await c.account('carol');
        const { roomId } = await a.rooms.createRoom(alice, { preset: 'public_chat' });
        await b.handshakes.joinRemote(roomId, bob, ['a.test']);
        const carolJoin = await c.handshakes.joinRemote(roomId, carol, ['a.test']);
        await fed.deliver('a.test');
        expect(await b.storage.state.currentStateEventId(roomId, 'm.room.member', carol)).to.equal(carolJoin);
        const fromCarol = await c.rooms.sender.sendEvent({ roomId, sender: carol, ...text('from C') });
        const fromBob = await b.rooms.sender.sendEvent({ roomId, sender: bob, ...text('from B') });
        await fed.deliver('c.test');
        await fed.deliver('b.test');
        for (const server of [a, b, c]) {
          const ids = (await timeline(server, roomId)).map((e) => e.eventId);
          expect(ids, server.name).to.include.members([fromCarol.eventId, fromBob.eventId]);
        }
        const warnings = [a, b, c].flatMap((server) => server.warnings);
        expect(warnings).to.deep.equal([]);
      } finally {
        await fed.close();
      }
    });
  });

  describe('invites', () => {
    let fed: InProcessFederation;
    let a: InProcessServer;
    let b: InProcessServer;

    beforeEach(async () => {
      fed = openInProcessFederation();
      a = await fed.add('a.test');
      b = await fed.add('b.test');
    });
    afterEach(async () => {
      await fed.close();
    });

    it('invites a remote user into a private room; the invite reaches their server, they join, then leave', async () => {
      const alice = await a.account('alice');
      const bob = await b.account('bob');
      const { roomId } = await a.rooms.createRoom(alice, { preset: 'private_chat', name: 'Secret' });
      const inviteId = await a.handshakes.inviteRemote(roomId, alice, bob, { membership: 'invite' });
      // On A: in the timeline, signed by both servers.
      const onA = await a.storage.events.getEvent(inviteId);
      expect(Object.keys(onA!.pdu.signatures)).to.have.members(['a.test', 'b.test']);
      // On B: kept as an outlier with the stripped state, and the membership is an invite.
      const onB = await b.storage.events.getEvent(inviteId);
      expect(onB?.outlier).to.equal(true);
      const stripped = onB!.pdu.unsigned!.invite_room_state as JsonObject[];
      expect(stripped.map((s) => s.type)).to.include('m.room.name');
      const invites = await b.storage.memberships.membershipsOfUser(bob, ['invite']);
      expect(invites.map((m) => m.roomId)).to.deep.equal([roomId]);

      // Private room: the invite lets bob in.
      await b.handshakes.joinRemote(roomId, bob, ['a.test']);
      expect(
        (await b.storage.memberships.membershipsOfUser(bob, ['join'])).map((m) => m.roomId),
      ).to.deep.equal([roomId]);

      // Leaving goes through the local send path and out to a.test.
      const left = await b.rooms.membership.leave(roomId, bob);
      await fed.deliver('b.test');
      expect(await a.storage.state.currentStateEventId(roomId, 'm.room.member', bob)).to.equal(left.eventId);
    });

    it('refuses a join to a private room without an invite with 403', async () => {
      const alice = await a.account('alice');
      const bob = await b.account('bob');
      const { roomId } = await a.rooms.createRoom(alice, { preset: 'private_chat' });
      let error: unknown;
      try {
        await b.handshakes.joinRemote(roomId, bob, ['a.test']);
      } catch (e) {
        error = e;
      }
      expect((error as MatrixError).status).to.equal(403);
    });

    it('knocks on a remote room; once invited, the knocker joins', async () => {
      const alice = await a.account('alice');
      const bob = await b.account('bob');
      const { roomId } = await a.rooms.createRoom(alice, {
        preset: 'private_chat',
        room_version: '10',
        name: 'Knock here',
        initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }],
      });
      await b.handshakes.knockRemote(roomId, bob, ['a.test'], 'let me in');
      const onA = await a.storage.state.currentStateEventId(roomId, 'm.room.member', bob);
      expect((await a.storage.events.getEvent(onA!))!.pdu.content).to.include({
        membership: 'knock',
        reason: 'let me in',
      });
      const knocks = await b.storage.memberships.membershipsOfUser(bob, ['knock']);
      expect(knocks.map((m) => m.roomId)).to.deep.equal([roomId]);
      const stored = await b.storage.events.getEvent(knocks[0]!.eventId);
      expect((stored!.pdu.unsigned!.knock_room_state as JsonObject[]).map((e) => e.type)).to.include(
        'm.room.name',
      );

      await a.handshakes.inviteRemote(roomId, alice, bob, { membership: 'invite' });
      await b.handshakes.joinRemote(roomId, bob, ['a.test']);
      expect(
        (await b.storage.memberships.membershipsOfUser(bob, ['join'])).map((m) => m.roomId),
      ).to.deep.equal([roomId]);
    });

    it('rejects a remote invite through make_leave/send_leave', async () => {
      const alice = await a.account('alice');
      const bob = await b.account('bob');
      const { roomId } = await a.rooms.createRoom(alice, { preset: 'private_chat' });
      await a.handshakes.inviteRemote(roomId, alice, bob, { membership: 'invite' });
      await b.handshakes.leaveRemote(roomId, bob);
      expect((await b.storage.memberships.membershipsOfUser(bob, ['invite'])).length).to.equal(0);
      const onA = await a.storage.state.currentStateEventId(roomId, 'm.room.member', bob);
      expect((await a.storage.events.getEvent(onA!))!.pdu.content.membership).to.equal('leave');
    });
  });
});

/** a.test and b.test; on a, a public space and a room whose members must be in the space (version 10). */
async function restrictedRoomOnA(fed: InProcessFederation) {
  const a = await fed.add('a.test');
  const b = await fed.add('b.test');
  const alice = await a.account('alice');
  const bob = await b.account('bob');
  const { roomId: space } = await a.rooms.createRoom(alice, { preset: 'public_chat', room_version: '10' });
  const { roomId } = await a.rooms.createRoom(alice, {
    preset: 'private_chat',
    room_version: '10',
    initial_state: [
      {
        type: 'm.room.join_rules',
        state_key: '',
        content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: space }] },
      },
    ],
  });
  return { a, b, alice, bob, space, roomId };
}
