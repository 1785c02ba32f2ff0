import { expect } from 'chai';
import { matrixErrorFromFederation } from './errors.js';
import { FederationRequestError } from './federation.js';
import { matrixErrorOfRemote } from './membership-handshakes.js';

describe('federation failures as client errors', () => {
  it("passes on a remote server's 4xx error with a known errcode", () => {
    const error = matrixErrorFromFederation(
      new FederationRequestError('b.example', 403, 'M_FORBIDDEN', 'refused', {
        errcode: 'M_FORBIDDEN',
        error: 'You are banned',
      }),
    );
    expect([error.status, error.errcode, error.message]).to.deep.equal([
      403,
      'M_FORBIDDEN',
      'You are banned',
    ]);
  });

  it('answers 502 for an unreachable server, a 5xx or an unknown errcode', () => {
    for (const failure of [
      new FederationRequestError('b.example', 0, undefined, 'getaddrinfo ENOTFOUND'),
      new FederationRequestError('b.example', 500, 'M_UNKNOWN', 'boom'),
      new FederationRequestError('b.example', 400, 'ORG_EXAMPLE_CUSTOM', 'custom'),
    ]) {
      const error = matrixErrorFromFederation(failure);
      expect([error.status, error.errcode]).to.deep.equal([502, 'M_UNKNOWN']);
    }
  });
});

describe('a refused membership handshake as a client error', () => {
  it('keeps a room-version refusal (Synapse 1.67 refusing an invite to a v11 room), maps the rest by status', () => {
    const version = matrixErrorOfRemote(
      new FederationRequestError('old.example', 400, 'M_INCOMPATIBLE_ROOM_VERSION', 'no v11'),
      'invite',
    );
    expect([version.status, version.errcode]).to.deep.equal([400, 'M_INCOMPATIBLE_ROOM_VERSION']);
    const other = matrixErrorOfRemote(
      new FederationRequestError('old.example', 400, 'M_BAD_JSON', 'x'),
      'invite',
    );
    expect([other.status, other.errcode]).to.deep.equal([400, 'M_UNKNOWN']);
    const forbidden = matrixErrorOfRemote(
      new FederationRequestError('old.example', 403, undefined, 'x'),
      'join',
    );
    expect([forbidden.status, forbidden.errcode]).to.deep.equal([403, 'M_FORBIDDEN']);
  });
});
