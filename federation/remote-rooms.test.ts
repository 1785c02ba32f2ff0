import { expect } from 'chai';
import { FederationRequestError } from './federation.js';
import { type FederationRequester, RemoteRooms } from './remote-rooms.js';

type Sent = { destination: string; method: string; path: string; body?: unknown };

/** A requester answering by path; a path mapped to an error rejects with it. */
function requester(answers: Record<string, unknown>, sent: Sent[]): FederationRequester {
  return async (destination, request) => {
    sent.push({ destination, method: request.method, path: request.path, body: request.body });
    const prefix = Object.keys(answers).find((key) => request.path.startsWith(key));
    const answer = prefix === undefined ? undefined : answers[prefix];
    if (answer instanceof Error) throw answer;
    if (answer === undefined)
      throw new FederationRequestError(destination, 404, 'M_UNRECOGNIZED', 'no route');
    return answer;
  };
}

describe('RemoteRooms.invite: v2, with the v1 API for rooms of versions 1 and 2', () => {
  const event = { type: 'm.room.member', event_id: '$e:a', unsigned: { age: 1 } };
  const body = (roomVersion: string) => ({
    event,
    room_version: roomVersion,
    invite_room_state: [{ type: 'm.room.name' }],
  });

  it('uses v2 when the server has it', async () => {
    const sent: Sent[] = [];
    const rooms = new RemoteRooms(
      requester({ '/_matrix/federation/v2/invite/': { event: { signed: 2 } } }, sent),
    );
    expect(await rooms.invite('b', '!r:a', '$e:a', body('1'))).to.deep.equal({ signed: 2 });
    expect(sent.map((request) => request.path)).to.deep.equal([
      '/_matrix/federation/v2/invite/!r%3Aa/%24e%3Aa',
    ]);
  });

  it('falls back to v1 for a room of version 1 or 2, stripped state in unsigned, and reads [200, {event}]', async () => {
    const sent: Sent[] = [];
    const rooms = new RemoteRooms(
      requester({ '/_matrix/federation/v1/invite/': [200, { event: { signed: 1 } }] }, sent),
    );
    expect(await rooms.invite('b', '!r:a', '$e:a', body('2'))).to.deep.equal({ signed: 1 });
    expect(sent.map((request) => request.path)).to.deep.equal([
      '/_matrix/federation/v2/invite/!r%3Aa/%24e%3Aa',
      '/_matrix/federation/v1/invite/!r%3Aa/%24e%3Aa',
    ]);
    expect(sent[1]!.body).to.deep.equal({
      ...event,
      unsigned: { age: 1, invite_room_state: [{ type: 'm.room.name' }] },
    });
  });

  it('does not fall back for later room versions, nor when the server refused the invite itself', async () => {
    const sent: Sent[] = [];
    const rooms = new RemoteRooms(requester({}, sent));
    const error = await rooms.invite('b', '!r:a', '$e:a', body('10')).catch((caught: unknown) => caught);
    expect((error as FederationRequestError).status).to.equal(404);
    expect(sent).to.have.lengthOf(1);

    const refusing = new RemoteRooms(
      requester(
        {
          '/_matrix/federation/v2/invite/': new FederationRequestError(
            'b',
            404,
            'M_NOT_FOUND',
            'Unknown user',
          ),
        },
        sent,
      ),
    );
    const refused = await refusing.invite('b', '!r:a', '$e:a', body('1')).catch((caught: unknown) => caught);
    expect((refused as FederationRequestError).errcode).to.equal('M_NOT_FOUND');
    expect(sent).to.have.lengthOf(2);
  });
});
