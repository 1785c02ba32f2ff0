import { expect } from 'chai';
import { matrixErrorFromFederation } from './errors.js';
import { FederationRequestError } from './federation.js';

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
