import { expect } from 'chai';
import { hasSyncContent } from './connection.js';
import { FrameError, parseClientFrame, responseFrame } from './messages.js';

const USER = '@alice:example.org';

function frameError(text: string): FrameError {
  try {
    parseClientFrame(text, USER);
  } catch (error) {
    if (error instanceof FrameError) return error;
    throw error;
  }
  throw new Error(`parsed: ${text}`);
}

describe('WebSocket frames', () => {
  it('parses sync_ack with its next_batch, and refuses one without', () => {
    expect(parseClientFrame(JSON.stringify({ type: 'sync_ack', next_batch: 's1_2_3' }), USER)).to.deep.equal({
      kind: 'sync_ack',
      nextBatch: 's1_2_3',
    });
    expect(frameError(JSON.stringify({ type: 'sync_ack' })).error.errcode).to.equal('M_MISSING_PARAM');
  });

  it('parses request frames, keeping the path as sent and the body as given', () => {
    const command = parseClientFrame(
      JSON.stringify({
        type: 'request',
        id: 7,
        method: 'put',
        path: '/_matrix/client/v3/x%2Fy?a=1',
        body: [1],
      }),
      USER,
    );
    expect(command).to.deep.equal({
      kind: 'request',
      request: { id: 7, method: 'PUT', path: '/_matrix/client/v3/x%2Fy?a=1', body: [1] },
    });
  });

  it('spells convenience frames out as their REST calls, percent-encoding every segment', () => {
    const send = parseClientFrame(
      JSON.stringify({
        type: 'send',
        id: 'a',
        room_id: '!r/1:hs',
        event_type: 'm.room.message',
        content: { body: 'x' },
      }),
      USER,
    );
    expect(send).to.deep.equal({
      kind: 'request',
      request: {
        id: 'a',
        method: 'PUT',
        path: '/_matrix/client/v3/rooms/!r%2F1%3Ahs/send/m.room.message/io.myelin.ws.a',
        body: { body: 'x' },
      },
    });
    const typing = parseClientFrame(
      JSON.stringify({ type: 'typing', id: 'b', room_id: '!r:hs', typing: false }),
      USER,
    );
    expect(typing).to.deep.include({
      request: {
        id: 'b',
        method: 'PUT',
        path: '/_matrix/client/v3/rooms/!r%3Ahs/typing/%40alice%3Aexample.org',
        body: { typing: false },
      },
    });
    const receipt = parseClientFrame(
      JSON.stringify({ type: 'receipt', id: 'c', room_id: '!r:hs', event_id: '$e' }),
      USER,
    );
    expect(receipt).to.deep.include({
      request: {
        id: 'c',
        method: 'POST',
        path: '/_matrix/client/v3/rooms/!r%3Ahs/receipt/m.read/%24e',
        body: {},
      },
    });
  });

  it('turns an inline sync filter into the JSON text /sync takes', () => {
    const command = parseClientFrame(
      JSON.stringify({ type: 'sync', filter: { room: { timeline: { limit: 3 } } } }),
      USER,
    );
    expect(command).to.deep.equal({
      kind: 'sync',
      sync: {
        since: undefined,
        filter: '{"room":{"timeline":{"limit":3}}}',
        fullState: false,
        setPresence: undefined,
      },
    });
  });

  it('reports malformed frames with the errcode, and the request ID when there is one', () => {
    expect(frameError('{').error.errcode).to.equal('M_NOT_JSON');
    expect(frameError('null').error.errcode).to.equal('M_BAD_JSON');
    expect(frameError('{"type":1}').error.errcode).to.equal('M_MISSING_PARAM');
    expect(frameError('{"type":"nope","id":"x"}')).to.include({ id: 'x' });
    const noRoom = frameError('{"type":"send","id":"y","event_type":"m.room.message"}');
    expect(noRoom.id).to.equal('y');
    expect(noRoom.error.errcode).to.equal('M_MISSING_PARAM');
    expect(frameError('{"type":"sync","set_presence":"busy"}').error.errcode).to.equal('M_INVALID_PARAM');
    expect(frameError(`{"type":"request","id":"${'i'.repeat(300)}","method":"GET","path":"/"}`).id).to.equal(
      undefined,
    );
  });

  it('embeds the REST body verbatim in a response frame', () => {
    const frame = responseFrame('q', 200, '{"event_id":"$e"}', undefined);
    expect(JSON.parse(frame)).to.deep.equal({
      type: 'response',
      id: 'q',
      status: 200,
      body: { event_id: '$e' },
    });
  });

  it('calls a sync response empty when it holds no entries anywhere but the always-present counts', () => {
    const empty = {
      next_batch: 's1',
      rooms: { join: {}, invite: {}, leave: {}, knock: {} },
      presence: { events: [] },
      account_data: { events: [] },
      to_device: { events: [] },
      device_lists: { changed: [], left: [] },
      device_one_time_keys_count: { signed_curve25519: 0 },
      device_unused_fallback_key_types: ['signed_curve25519'],
    };
    expect(hasSyncContent(empty)).to.equal(false);
    expect(hasSyncContent({ ...empty, presence: { events: [{ type: 'm.presence' }] } })).to.equal(true);
    expect(
      hasSyncContent({
        ...empty,
        rooms: { ...empty.rooms, join: { '!r:hs': { timeline: { events: [{ type: 'm.room.message' }] } } } },
      }),
    ).to.equal(true);
    expect(hasSyncContent({ ...empty, device_lists: { changed: ['@bob:hs'], left: [] } })).to.equal(true);
  });
});
