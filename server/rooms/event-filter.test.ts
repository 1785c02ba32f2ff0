import { expect } from 'chai';
import { MatrixError } from '../errors.js';
import {
  matchesEventFilter,
  matchesRoomEventFilter,
  matchesTypePattern,
  parseFilterJson,
  selectEventFields,
} from './event-filter.js';

describe('event filters', () => {
  it('match types with * wildcards anywhere', () => {
    expect(matchesTypePattern('m.room.*', 'm.room.message')).to.equal(true);
    expect(matchesTypePattern('m.room.*', 'm.call.invite')).to.equal(false);
    expect(matchesTypePattern('*', 'anything')).to.equal(true);
    expect(matchesTypePattern('m.*.member', 'm.room.member')).to.equal(true);
    expect(matchesTypePattern('m.*.member', 'm.room.members')).to.equal(false);
    expect(matchesTypePattern('a*a', 'a')).to.equal(false);
    expect(matchesTypePattern('m.room.message', 'm.room.message')).to.equal(true);
  });

  it('let the not_ lists win over the lists', () => {
    const filter = {
      types: ['m.*'],
      not_types: ['m.room.member'],
      senders: ['@a:x', '@b:x'],
      not_senders: ['@b:x'],
    };
    expect(matchesEventFilter(filter, { type: 'm.room.message', sender: '@a:x' })).to.equal(true);
    expect(matchesEventFilter(filter, { type: 'm.room.member', sender: '@a:x' })).to.equal(false);
    expect(matchesEventFilter(filter, { type: 'm.room.message', sender: '@b:x' })).to.equal(false);
    expect(matchesEventFilter(filter, { type: 'org.x', sender: '@a:x' })).to.equal(false);
    expect(matchesEventFilter({ types: [] }, { type: 'm.presence' })).to.equal(false);
  });

  it('filter rooms and contains_url', () => {
    const filter = { rooms: ['!a:x', '!b:x'], not_rooms: ['!b:x'], contains_url: true };
    expect(
      matchesRoomEventFilter(filter, { type: 't', roomId: '!a:x', content: { url: 'mxc://x/y' } }),
    ).to.equal(true);
    expect(matchesRoomEventFilter(filter, { type: 't', roomId: '!a:x', content: {} })).to.equal(false);
    expect(
      matchesRoomEventFilter(filter, { type: 't', roomId: '!b:x', content: { url: 'mxc://x/y' } }),
    ).to.equal(false);
    expect(matchesRoomEventFilter({ contains_url: false }, { type: 't', content: { url: 'u' } })).to.equal(
      false,
    );
  });

  it('parse inline filters, refusing what is not a filter', () => {
    expect(parseFilterJson('{"room":{"timeline":{"limit":5}}}').room?.timeline?.limit).to.equal(5);
    expect(() => parseFilterJson('{'))
      .to.throw(MatrixError)
      .with.property('errcode', 'M_NOT_JSON');
    expect(() => parseFilterJson('[]'))
      .to.throw(MatrixError)
      .with.property('errcode', 'M_BAD_JSON');
    expect(() => parseFilterJson('{"event_format":"xml"}'))
      .to.throw(MatrixError)
      .with.property('errcode', 'M_BAD_JSON');
  });

  it('keep only the event_fields asked for, with escaped dots', () => {
    const event = {
      type: 't',
      content: { body: 'b', 'm.relates_to': { rel_type: 'r' }, 'a.b': 1 },
      sender: 's',
    };
    expect(
      selectEventFields(event, [
        'type',
        'content.body',
        'content.m\\.relates_to.rel_type',
        'content.a\\.b',
        'missing.x',
      ]),
    ).to.deep.equal({
      type: 't',
      content: { body: 'b', 'm.relates_to': { rel_type: 'r' }, 'a.b': 1 },
    });
  });
});
