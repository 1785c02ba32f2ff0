import { expect } from 'chai';
import fc from 'fast-check';
import { ProtocolError } from './errors.js';
import type { JsonObject, JsonValue } from './events.js';
import {
  notificationPowerLevel,
  parsePowerLevels,
  powerLevelValue,
  requiredPowerLevelForEvent,
  roomCreators,
  userPowerLevel,
} from './power-levels.js';
import { type RoomVersionId, roomVersionRules } from './room-versions.js';
import { TestRoomBuilder } from './test-room-builder.js';

const v1 = roomVersionRules('1');
const v9 = roomVersionRules('9');
const v10 = roomVersionRules('10');
const ALL_VERSIONS: RoomVersionId[] = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12'];

function badEvent(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(ProtocolError);
    expect((e as ProtocolError).code).to.equal('BAD_EVENT');
    return e as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

describe('power levels', () => {
  describe('parsePowerLevels', () => {
    it('uses the no-event defaults when the room has no power levels event (state_default 0)', () => {
      const pl = parsePowerLevels(undefined, v10);
      expect(pl).to.include({
        usersDefault: 0,
        eventsDefault: 0,
        stateDefault: 0,
        ban: 50,
        kick: 50,
        redact: 50,
        invite: 0,
      });
      expect(pl.users.size).to.equal(0);
    });

    it('uses the spec defaults for absent keys of an existing event (state_default 50)', () => {
      const pl = parsePowerLevels({}, v10);
      expect(pl).to.include({
        usersDefault: 0,
        eventsDefault: 0,
        stateDefault: 50,
        ban: 50,
        kick: 50,
        redact: 50,
      });
      expect(pl.invite).to.equal(0);
      expect(notificationPowerLevel(pl, 'room')).to.equal(50);
    });

    it('reads every key', () => {
      const pl = parsePowerLevels(
        {
          users: { '@a:x': 100, '@b:x': 20 },
          users_default: 5,
          events: { 'm.room.name': 60 },
          events_default: 1,
          state_default: 70,
          ban: 80,
          kick: 75,
          redact: 65,
          invite: 10,
          notifications: { room: 30 },
        },
        v10,
      );
      expect([...pl.users]).to.deep.equal([
        ['@a:x', 100],
        ['@b:x', 20],
      ]);
      expect(pl).to.include({
        usersDefault: 5,
        eventsDefault: 1,
        stateDefault: 70,
        ban: 80,
        kick: 75,
        redact: 65,
      });
      expect(pl.invite).to.equal(10);
      expect(pl.events.get('m.room.name')).to.equal(60);
      expect(notificationPowerLevel(pl, 'room')).to.equal(30);
    });

    it('v1-9 accept integer strings with signs, leading zeroes and whitespace', () => {
      const pl = parsePowerLevels(
        { ban: ' +100 ', kick: '000100', invite: '-5', users: { '@a:x': ' 00100 ' }, events: { e: '7' } },
        v9,
      );
      expect(pl.ban).to.equal(100);
      expect(pl.kick).to.equal(100);
      expect(pl.invite).to.equal(-5);
      expect(pl.users.get('@a:x')).to.equal(100);
      expect(pl.events.get('e')).to.equal(7);
    });

    it('v1-9 truncate floats toward zero', () => {
      const pl = parsePowerLevels({ users: { '@bob:x': 50.57, '@neg:x': -1.5 }, ban: 5.114698e4 }, v1);
      expect(pl.users.get('@bob:x')).to.equal(50);
      expect(pl.users.get('@neg:x')).to.equal(-1);
      expect(pl.ban).to.equal(51146);
    });

    it('v1-9 reject strings that are not integers', () => {
      for (const value of ['1.5', 'abc', '1e3', '', '+-1', '0x10'])
        badEvent(() => parsePowerLevels({ ban: value }, v9));
    });

    it('v10+ reject numeric strings and floats', () => {
      badEvent(() => parsePowerLevels({ ban: '50' }, v10));
      badEvent(() => parsePowerLevels({ users: { '@a:x': '50' } }, v10));
      badEvent(() => parsePowerLevels({ events: { e: 1.5 } }, v10));
      badEvent(() => parsePowerLevels({ notifications: { room: '1' } }, v10));
      badEvent(() => parsePowerLevels({ invite: null }, v10));
    });

    it('v1-9 read a null named level as unspecified', () => {
      expect(parsePowerLevels({ ban: null }, v9).ban).to.equal(50);
    });

    it('rejects maps that are not objects and values of other types', () => {
      const err = badEvent(() => parsePowerLevels({ users: [] }, v9));
      expect(err.field).to.equal('content.users');
      badEvent(() => parsePowerLevels({ events: 'x' }, v9));
      badEvent(() => parsePowerLevels({ notifications: null }, v9));
      badEvent(() => parsePowerLevels({ kick: true }, v9));
      badEvent(() => parsePowerLevels({ kick: {} }, v9));
      badEvent(() => parsePowerLevels({ users: { '@a:x': [1] } }, v9));
    });

    it('powerLevelValue: only safe integers in v10+', () => {
      expect(powerLevelValue(2 ** 53, v10)).to.equal(undefined);
      expect(powerLevelValue(-3, v10)).to.equal(-3);
      expect(powerLevelValue(-0.5, v9)).to.equal(0);
      expect(Object.is(powerLevelValue(-0.5, v9), -0)).to.equal(false);
    });

    it('never throws anything but ProtocolError on arbitrary content (10,000 runs)', () => {
      const content = fc.oneof(
        fc.dictionary(fc.string(), fc.jsonValue()),
        fc.record(
          {
            users: fc.oneof(fc.jsonValue(), fc.dictionary(fc.string(), fc.oneof(fc.integer(), fc.string()))),
            events: fc.jsonValue(),
            notifications: fc.jsonValue(),
            ban: fc.oneof(fc.jsonValue(), fc.integer(), fc.stringMatching(/^\s*[+-]?\d{1,5}\s*$/)),
            state_default: fc.jsonValue(),
          },
          { requiredKeys: [] },
        ),
      );
      fc.assert(
        fc.property(content, fc.constantFrom(...ALL_VERSIONS), (c, version) => {
          try {
            const pl = parsePowerLevels(c as JsonObject, roomVersionRules(version));
            for (const level of [pl.ban, pl.kick, pl.invite, pl.usersDefault, ...pl.users.values()]) {
              expect(Number.isFinite(level)).to.equal(true);
            }
          } catch (e) {
            expect(e).to.be.instanceOf(ProtocolError);
          }
        }),
        { numRuns: 10_000 },
      );
    });

    it('rejects content that is not an object', () => {
      badEvent(() => parsePowerLevels([] as JsonValue as JsonObject, v9));
    });
  });

  describe('requiredPowerLevelForEvent', () => {
    const pl = parsePowerLevels({ events: { 'm.room.name': 90, 'm.reaction': 3 }, events_default: 1 }, v10);
    it('uses the events entry first', () => {
      expect(requiredPowerLevelForEvent(pl, 'm.room.name', true)).to.equal(90);
      expect(requiredPowerLevelForEvent(pl, 'm.reaction', false)).to.equal(3);
    });
    it('falls back to state_default for state events and events_default otherwise', () => {
      expect(requiredPowerLevelForEvent(pl, 'm.room.topic', true)).to.equal(50);
      expect(requiredPowerLevelForEvent(pl, 'm.room.message', false)).to.equal(1);
    });
  });

  describe('roomCreators and userPowerLevel', () => {
    it('v1-10: the creator is content.creator, not the sender', () => {
      const room = new TestRoomBuilder({ roomVersion: '10', createContent: { creator: '@other:x' } });
      expect([...roomCreators(room.createEvent, room.rules)]).to.deep.equal(['@other:x']);
      expect(userPowerLevel('@other:x', undefined, room.createEvent, room.rules)).to.equal(100);
      expect(userPowerLevel(room.creator, undefined, room.createEvent, room.rules)).to.equal(0);
    });

    it('v11: the creator is the sender; others have 0 without a power levels event', () => {
      const room = new TestRoomBuilder({ roomVersion: '11', createContent: { creator: '@other:x' } });
      expect([...roomCreators(room.createEvent, room.rules)]).to.deep.equal([room.creator]);
      expect(userPowerLevel(room.creator, undefined, room.createEvent, room.rules)).to.equal(100);
      expect(userPowerLevel('@other:x', undefined, room.createEvent, room.rules)).to.equal(0);
    });

    it('v12: the sender and additional_creators have infinite power, even with a power levels event', () => {
      const room = new TestRoomBuilder({ roomVersion: '12', additionalCreators: ['@second:x'] });
      expect(roomCreators(room.createEvent, room.rules)).to.deep.equal(new Set([room.creator, '@second:x']));
      room.join(room.creator);
      const pl = room.powerLevels(room.creator, { users: { '@mod:x': 50 }, users_default: 3 });
      expect(userPowerLevel(room.creator, pl, room.createEvent, room.rules)).to.equal(
        Number.POSITIVE_INFINITY,
      );
      expect(userPowerLevel('@second:x', pl, room.createEvent, room.rules)).to.equal(
        Number.POSITIVE_INFINITY,
      );
      expect(userPowerLevel('@mod:x', pl, room.createEvent, room.rules)).to.equal(50);
      expect(userPowerLevel('@nobody:x', pl, room.createEvent, room.rules)).to.equal(3);
    });

    it('v11 does not grant additional_creators anything', () => {
      const room = new TestRoomBuilder({ roomVersion: '11', additionalCreators: ['@second:x'] });
      expect(userPowerLevel('@second:x', undefined, room.createEvent, room.rules)).to.equal(0);
    });

    it('reads users and users_default from the power levels event, stringy in v1-9', () => {
      const room = new TestRoomBuilder({ roomVersion: '5' });
      room.join(room.creator);
      const pl = room.powerLevels(room.creator, {
        users: { [room.creator]: '100', '@a:x': '40' },
        users_default: '2',
      });
      expect(userPowerLevel('@a:x', pl, room.createEvent, room.rules)).to.equal(40);
      expect(userPowerLevel('@b:x', pl, room.createEvent, room.rules)).to.equal(2);
      expect(userPowerLevel(room.creator, pl, room.createEvent, room.rules)).to.equal(100);
    });

    it('throws BAD_EVENT for a power levels event the version cannot read', () => {
      const room = new TestRoomBuilder({ roomVersion: '10' });
      const pl = room.build({
        type: 'm.room.power_levels',
        sender: room.creator,
        state_key: '',
        content: { users_default: '1' },
      });
      badEvent(() => userPowerLevel('@a:x', pl, room.createEvent, room.rules));
    });
  });
});
