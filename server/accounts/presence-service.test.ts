import { expect } from 'chai';
import { pino } from 'pino';
import { openSqliteStorage, type SqliteStorage } from '../../storage/sqlite/sqlite-storage.js';
import { createPresenceService, type PresenceService, presenceContent } from './presence-service.js';

const IDLE = 300_000;
const OFFLINE = 1_800_000;
const T0 = 1_700_000_000_000;

describe('PresenceService (timers, writes, restarts) over SQLite', () => {
  let storage: SqliteStorage;
  let clock: number;
  const services: PresenceService[] = [];

  const makeService = (enabled = true) => {
    const service = createPresenceService({
      config: { enabled, idle_after_ms: IDLE, offline_after_ms: OFFLINE },
      store: storage.presence,
      membership: { usersSharingRoomWith: async () => new Set<string>() },
      log: pino({ level: 'silent' }),
      now: () => clock,
    });
    services.push(service);
    return service;
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  const state = async (service: PresenceService, userId: string) =>
    (await service.getPresence(userId))?.state;

  beforeEach(async () => {
    storage = await openSqliteStorage({ path: ':memory:' });
    clock = T0;
  });
  afterEach(async () => {
    for (const service of services.splice(0)) await service.stop();
    await storage.close();
  });

  it('ages online -> not currently active -> unavailable -> offline as the sweep finds time passed', async () => {
    const presence = makeService();
    await presence.setPresence('@a:x', 'online', 'hello');
    const at = async (ms: number) => {
      clock = T0 + ms;
      await presence.sweep();
      return presenceContent(await presence.getPresence('@a:x'), clock);
    };
    expect(await at(59_000)).to.deep.equal({
      presence: 'online',
      last_active_ago: 59_000,
      status_msg: 'hello',
      currently_active: true,
    });
    expect((await at(60_000)).currently_active).to.equal(false);
    expect((await at(IDLE - 1)).presence).to.equal('online');
    expect(await at(IDLE)).to.deep.equal({
      presence: 'unavailable',
      last_active_ago: IDLE,
      status_msg: 'hello',
    });
    expect((await at(OFFLINE - 1)).presence).to.equal('unavailable');
    expect((await at(OFFLINE)).presence).to.equal('offline');
    expect(
      (await storage.presence.getPresence('@a:x'))?.statusMsg,
      'the message outlives going offline',
    ).to.equal('hello');
  });

  it('writes nothing for requests of a user who is already currently active', async () => {
    const presence = makeService();
    const stored = new Promise((resolve) => presence.onPresenceChanged(resolve));
    presence.markActive('@busy:x');
    await stored;
    const first = await storage.presence.latestPresencePosition();
    expect(first).to.be.greaterThan(0);
    for (let i = 0; i < 100; i++) {
      clock += 100;
      presence.markActive('@busy:x');
    }
    await settle();
    expect(await storage.presence.latestPresencePosition()).to.equal(first);
    expect(presenceContent(await presence.getPresence('@busy:x'), clock).last_active_ago).to.equal(0);
  });

  it('brings an idle user back online on activity but keeps a chosen state, across a restart too', async () => {
    const before = makeService();
    await before.setPresence('@idle:x', 'online');
    await before.setPresence('@away:x', 'unavailable', 'in a meeting');
    await before.setPresence('@hidden:x', 'offline');
    clock += IDLE;
    await before.sweep();
    expect(await state(before, '@idle:x')).to.equal('unavailable');
    await before.stop();

    const after = makeService();
    await after.start();
    clock += 1000;
    const back = new Promise((resolve) => after.onPresenceChanged(resolve));
    for (const userId of ['@idle:x', '@away:x', '@hidden:x']) after.markActive(userId);
    await back;
    await settle();
    expect(await state(after, '@idle:x')).to.equal('online');
    expect(await state(after, '@away:x')).to.equal('unavailable');
    expect(await state(after, '@hidden:x')).to.equal('offline');

    await after.setPresence('@away:x', 'online');
    expect((await after.getPresence('@away:x'))?.statusMsg, 'undefined keeps the message').to.equal(
      'in a meeting',
    );
  });

  it('sends users who are not offline to offline after a restart when nobody came back', async () => {
    const before = makeService();
    await before.setPresence('@gone:x', 'online');
    await before.stop();
    clock += OFFLINE + 1;
    const after = makeService();
    await after.start();
    await after.sweep();
    expect(await state(after, '@gone:x')).to.equal('offline');
  });

  it('tracks nothing when disabled', async () => {
    const presence = makeService(false);
    await presence.start();
    await presence.setPresence('@a:x', 'online');
    presence.markActive('@a:x');
    await settle();
    expect(await presence.getPresence('@a:x')).to.equal(null);
    expect(await storage.presence.getPresence('@a:x')).to.equal(null);
  });
});
