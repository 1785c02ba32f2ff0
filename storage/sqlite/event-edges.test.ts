/**
 * Prev edges are stored for events that arrive from elsewhere (a later arrival of their
 * prev must not become a forward extremity), not for events built here, whose prevs are
 * stored timeline events that never arrive again; auth edges are stored for every state
 * event and every arriving event, and a message built here has its auth chain all the
 * same (event-store.ts writeEvent, authChainEventIds).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { TestRoom } from '../contract/test-events.js';
import { openSqliteStorage, type SqliteStorage } from './sqlite-storage.js';

describe('SQLite event store: prev edges', () => {
  let dir: string;
  let path: string;
  let storage: SqliteStorage;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'myelin-event-edges-'));
    path = join(dir, 'myelin.db');
    storage = await openSqliteStorage({ path });
  });
  afterEach(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Read through a connection of its own: what is committed. */
  function edgesOf(eventId: string, table = 'event_edges'): string[] {
    const column = table === 'event_edges' ? 'prev_event_id' : 'auth_event_id';
    const db = new Database(path, { readonly: true });
    try {
      return db
        .prepare<[string], string>(`SELECT ${column} FROM ${table} WHERE event_id = ? ORDER BY 1`)
        .pluck()
        .all(eventId);
    } finally {
      db.close();
    }
  }

  it('keeps the edges of an arriving event, so that its prev arriving later is no extremity', async () => {
    const room = new TestRoom('!arrivals:example.org');
    const parent = room.event();
    const child = room.event({ prevEvents: [parent.eventId] });
    await storage.events.persistEvent({ event: child });
    expect(edgesOf(child.eventId)).to.deep.equal([parent.eventId]);
    await storage.events.persistEvent({ event: parent });
    expect(await storage.state.forwardExtremities(room.roomId)).to.deep.equal([child.eventId]);
  });

  it('writes no edges for an event built here, and its prev stops being an extremity', async () => {
    const room = new TestRoom('!local:example.org');
    const first = room.event();
    await storage.events.persistEvent({ event: first });
    const sent = room.event({ prevEvents: [first.eventId] });
    await storage.events.persistEvent({ event: sent, builtHere: true });
    expect(edgesOf(sent.eventId)).to.deep.equal([]);
    expect(await storage.state.forwardExtremities(room.roomId)).to.deep.equal([sent.eventId]);
    // An arriving event building on the local one still moves the extremity on.
    const reply = room.event({ prevEvents: [sent.eventId] });
    await storage.events.persistEvent({ event: reply });
    expect(await storage.state.forwardExtremities(room.roomId)).to.deep.equal([reply.eventId]);
  });

  it('gives the auth chain of a message built here from its auth_events, in either format', async () => {
    const room = new TestRoom('!chain:example.org');
    const create = room.event({ type: 'm.room.create', stateKey: '' });
    const member = room.event({
      type: 'm.room.member',
      stateKey: '@alice:example.org',
      authEvents: [create.eventId],
    });
    const power = room.event({
      type: 'm.room.power_levels',
      stateKey: '',
      authEvents: [create.eventId, member.eventId],
    });
    for (const event of [create, member, power])
      await storage.events.persistEvent({ event, builtHere: true });
    expect(edgesOf(power.eventId, 'event_auth_edges')).to.deep.equal([create.eventId, member.eventId].sort());

    const message = room.event({ authEvents: [create.eventId, member.eventId, power.eventId] });
    await storage.events.persistEvent({ event: message, builtHere: true });
    expect(edgesOf(message.eventId, 'event_auth_edges')).to.deep.equal([]);
    const chain = new Set([create.eventId, member.eventId, power.eventId]);
    expect(await storage.events.authChainEventIds([message.eventId])).to.deep.equal(chain);
    expect(await storage.events.authChainEventIds([message.eventId, power.eventId])).to.deep.equal(chain);

    // Room versions 1 and 2 list [event ID, hashes] pairs.
    const old = room.event();
    old.pdu.auth_events = [
      [power.eventId, { sha256: 'aGFzaA' }],
      [member.eventId, { sha256: 'aGFzaA' }],
    ] as unknown as string[];
    await storage.events.persistEvent({ event: old, builtHere: true });
    expect(await storage.events.authChainEventIds([old.eventId])).to.deep.equal(chain);
  });
});
