/**
 * Prev edges are stored for events that arrive from elsewhere (a later arrival of their
 * prev must not become a forward extremity), not for events built here, whose prevs are
 * stored timeline events that never arrive again (event-store.ts writeEvent).
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
  function edgesOf(eventId: string): string[] {
    const db = new Database(path, { readonly: true });
    try {
      return db
        .prepare<[string], string>('SELECT prev_event_id FROM event_edges WHERE event_id = ? ORDER BY 1')
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
});
