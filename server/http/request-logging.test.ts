import { expect } from 'chai';
import { redactQuery } from './request-logging.js';

describe('redactQuery', () => {
  it('hides values of credential-bearing keys and keeps the rest', () => {
    expect(redactQuery('access_token=abc&since=s1&access_token=def')).to.equal(
      'access_token=REDACTED&since=s1&access_token=REDACTED',
    );
    expect(redactQuery('loginToken=x&limit=5')).to.equal('loginToken=REDACTED&limit=5');
    expect(redactQuery('')).to.equal(undefined);
  });
});
