import { expect } from 'chai';
import type { Route } from './route.js';
import { createRouter, parsePathTemplate } from './router.js';

const route = (method: Route['method'], path: string) =>
  ({ method, path, operationId: `${method} ${path}` }) as Route;

describe('router', () => {
  const routes = [
    route('GET', '/_matrix/client/versions'),
    route('GET', '/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}'),
    route('PUT', '/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}'),
    route('GET', '/_matrix/client/v3/rooms/{roomId}/state'),
    route('GET', '/_matrix/client/v3/directory/room/{roomAlias}'),
    route('POST', '/_matrix/client/v3/user/{userId}/filter'),
    route('GET', '/_matrix/client/v3/user/{userId}/filter/{filterId}'),
    route('GET', '/_matrix/client/v3/rooms/{roomId}/members'),
    route('GET', '/_matrix/client/v3/rooms/joined/members'),
  ];
  const router = createRouter(routes);

  it('matches literal paths and captures raw (still encoded) parameters', () => {
    const match = router.match('GET', '/_matrix/client/v3/rooms/!a%3Ab/state/m.room.name/');
    expect(match).to.deep.include({
      kind: 'found',
      rawParams: { roomId: '!a%3Ab', eventType: 'm.room.name', stateKey: '' },
    });
  });

  it('keeps an encoded slash inside its parameter', () => {
    const match = router.match('GET', '/_matrix/client/v3/directory/room/%23a%2Fb%3Ac');
    expect(match.kind).to.equal('found');
    if (match.kind === 'found') expect(match.rawParams.roomAlias).to.equal('%23a%2Fb%3Ac');
  });

  it('prefers a literal segment over a parameter', () => {
    const match = router.match('GET', '/_matrix/client/v3/rooms/joined/members');
    expect(match.kind === 'found' && match.route.path).to.equal('/_matrix/client/v3/rooms/joined/members');
  });

  it('answers HEAD with the GET route', () => {
    expect(router.match('HEAD', '/_matrix/client/versions').kind).to.equal('found');
  });

  it('tells a known path with another method (405) from an unknown path (404)', () => {
    expect(router.match('POST', '/_matrix/client/versions')).to.deep.equal({
      kind: 'method-not-allowed',
      allowed: ['GET', 'HEAD', 'OPTIONS'],
    });
    expect(router.match('DELETE', '/_matrix/client/v3/rooms/!a/state/t/k')).to.deep.equal({
      kind: 'method-not-allowed',
      allowed: ['GET', 'PUT', 'HEAD', 'OPTIONS'],
    });
    expect(router.match('GET', '/_matrix/client/versions/')).to.deep.equal({ kind: 'not-found' });
    expect(router.match('GET', '/_matrix/client/v3/rooms/!a/state/t')).to.deep.equal({ kind: 'not-found' });
    expect(router.match('GET', '*')).to.deep.equal({ kind: 'not-found' });
  });

  it('finds a template with parameters when the literal one has not the method', () => {
    const mixed = createRouter([route('GET', '/a/b'), route('PUT', '/a/{x}')]);
    expect(mixed.match('PUT', '/a/b')).to.deep.include({ kind: 'found', rawParams: { x: 'b' } });
    expect(mixed.match('GET', '/a/b')).to.deep.include({ kind: 'found', rawParams: {} });
    expect(mixed.match('DELETE', '/a/b')).to.deep.equal({
      kind: 'method-not-allowed',
      allowed: ['GET', 'HEAD', 'OPTIONS'],
    });
  });

  it('refuses a route declared twice and a parameter that does not fill its segment', () => {
    expect(() => createRouter([route('GET', '/a/{b}'), route('GET', '/a/{b}')])).to.throw(/declared twice/);
    expect(() => parsePathTemplate('/a/x{b}')).to.throw(/whole segment/);
    expect(() => parsePathTemplate('a/b')).to.throw(/start with/);
  });
});
