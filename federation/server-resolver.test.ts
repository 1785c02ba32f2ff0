import { expect } from 'chai';
import {
  chooseSrvTarget,
  createServerResolver,
  maxAgeOf,
  orderSrvTargets,
  type SrvRecord,
  type WellKnownResult,
} from './server-resolver.js';

interface Stub {
  srv: Record<string, SrvRecord[]>;
  wellKnown: Record<string, WellKnownResult>;
  srvAsked: string[];
  wellKnownAsked: string[];
  now: number;
}

function resolverWith(stub: Partial<Stub>, overrides?: Record<string, string>) {
  const state: Stub = { srv: {}, wellKnown: {}, srvAsked: [], wellKnownAsked: [], now: 1_000_000, ...stub };
  const resolver = createServerResolver({
    async resolveSrv(name) {
      state.srvAsked.push(name);
      return state.srv[name] ?? [];
    },
    async fetchWellKnown(hostname) {
      state.wellKnownAsked.push(hostname);
      return state.wellKnown[hostname] ?? { ok: false };
    },
    now: () => state.now,
    random: () => 0,
    ...(overrides ? { overrides } : {}),
  });
  return { resolver, state };
}

const srv = (name: string, port: number, priority = 10, weight = 0): SrvRecord => ({
  name,
  port,
  priority,
  weight,
});
const delegation = (server: string, maxAgeMs?: number): WellKnownResult => ({
  ok: true,
  body: { 'm.server': server },
  maxAgeMs,
});

describe('resolving server names (server-server "Resolving server names")', () => {
  it('1. an IP literal: that address, its port or 8448, no lookups', async () => {
    const { resolver, state } = resolverWith({});
    expect(await resolver.resolve('127.0.0.1:8008')).to.deep.equal({
      connectHost: '127.0.0.1',
      port: 8008,
      hostHeader: '127.0.0.1:8008',
      tlsName: '127.0.0.1',
    });
    expect(await resolver.resolve('[::1]')).to.deep.equal({
      connectHost: '::1',
      port: 8448,
      hostHeader: '[::1]',
      tlsName: '::1',
    });
    expect(state.srvAsked).to.deep.equal([]);
    expect(state.wellKnownAsked).to.deep.equal([]);
  });

  it('2. a host name with a port: that host and port, no lookups', async () => {
    const { resolver, state } = resolverWith({});
    expect(await resolver.resolve('matrix.example:1234')).to.deep.equal({
      connectHost: 'matrix.example',
      port: 1234,
      hostHeader: 'matrix.example:1234',
      tlsName: 'matrix.example',
    });
    expect(state.wellKnownAsked).to.deep.equal([]);
  });

  it('3.1-3.2 a well-known delegation to an IP literal or a host with a port', async () => {
    const { resolver } = resolverWith({
      wellKnown: { 'a.example': delegation('10.0.0.1'), 'b.example': delegation('hs.b.example:4443') },
    });
    expect(await resolver.resolve('a.example')).to.deep.equal({
      connectHost: '10.0.0.1',
      port: 8448,
      hostHeader: '10.0.0.1',
      tlsName: '10.0.0.1',
    });
    expect(await resolver.resolve('b.example')).to.deep.equal({
      connectHost: 'hs.b.example',
      port: 4443,
      hostHeader: 'hs.b.example:4443',
      tlsName: 'hs.b.example',
    });
  });

  it('3.3-3.5 a delegated host: _matrix-fed SRV, then _matrix SRV, then 8448; certificate for the delegated name', async () => {
    const { resolver, state } = resolverWith({
      wellKnown: {
        'a.example': delegation('hs.a.example'),
        'b.example': delegation('hs.b.example'),
        'c.example': delegation('hs.c.example'),
      },
      srv: {
        '_matrix-fed._tcp.hs.a.example': [srv('fed.a.example', 443)],
        '_matrix._tcp.hs.a.example': [srv('legacy.a.example', 1)],
        '_matrix._tcp.hs.b.example': [srv('legacy.b.example', 8449)],
      },
    });
    expect(await resolver.resolve('a.example')).to.deep.equal({
      connectHost: 'fed.a.example',
      port: 443,
      hostHeader: 'hs.a.example',
      tlsName: 'hs.a.example',
    });
    expect(await resolver.resolve('b.example')).to.deep.equal({
      connectHost: 'legacy.b.example',
      port: 8449,
      hostHeader: 'hs.b.example',
      tlsName: 'hs.b.example',
    });
    expect(await resolver.resolve('c.example')).to.deep.equal({
      connectHost: 'hs.c.example',
      port: 8448,
      hostHeader: 'hs.c.example',
      tlsName: 'hs.c.example',
    });
    expect(state.srvAsked).to.include.members(['_matrix-fed._tcp.hs.c.example', '_matrix._tcp.hs.c.example']);
  });

  it('4-6. no delegation: SRV of the server name, then the legacy SRV, then 8448', async () => {
    const { resolver } = resolverWith({
      srv: {
        '_matrix-fed._tcp.a.example': [srv('fed.a.example', 8443)],
        '_matrix._tcp.b.example': [srv('old.b.example', 8000)],
      },
    });
    expect(await resolver.resolve('a.example')).to.deep.equal({
      connectHost: 'fed.a.example',
      port: 8443,
      hostHeader: 'a.example',
      tlsName: 'a.example',
    });
    expect((await resolver.resolve('b.example')).connectHost).to.equal('old.b.example');
    expect(await resolver.resolve('c.example')).to.deep.equal({
      connectHost: 'c.example',
      port: 8448,
      hostHeader: 'c.example',
      tlsName: 'c.example',
    });
  });

  it('ignores a well-known body without a valid m.server', async () => {
    const { resolver } = resolverWith({
      wellKnown: { 'a.example': { ok: true, body: { 'm.server': 'not a name!' }, maxAgeMs: undefined } },
    });
    expect((await resolver.resolve('a.example')).connectHost).to.equal('a.example');
  });

  it('caches a delegation for its max-age (default 24 h), then asks again', async () => {
    const { resolver, state } = resolverWith({
      wellKnown: { 'a.example': delegation('hs.a.example:1', 60_000) },
    });
    await resolver.resolve('a.example');
    await resolver.resolve('a.example');
    expect(state.wellKnownAsked).to.deep.equal(['a.example']);
    state.now += 60_001;
    await resolver.resolve('a.example');
    expect(state.wellKnownAsked).to.have.length(2);
  });

  it('remembers a failed well-known fetch, backing off longer after each failure', async () => {
    const { resolver, state } = resolverWith({});
    await resolver.resolve('a.example');
    await resolver.resolve('a.example');
    expect(state.wellKnownAsked).to.have.length(1);
    state.now += 60_001; // first failure: one minute
    await resolver.resolve('a.example');
    expect(state.wellKnownAsked).to.have.length(2);
    state.now += 60_001; // second failure: two minutes
    await resolver.resolve('a.example');
    expect(state.wellKnownAsked).to.have.length(2);
    state.now += 60_000;
    await resolver.resolve('a.example');
    expect(state.wellKnownAsked).to.have.length(3);
    // It comes back: the delegation is used at the next fetch.
    state.wellKnown['a.example'] = delegation('hs.a.example:9');
    state.now += 10 * 3600_000;
    expect((await resolver.resolve('a.example')).port).to.equal(9);
  });

  it('uses a configured override, checking TLS against the server name', async () => {
    const { resolver, state } = resolverWith({}, { 'hs.test': '127.0.0.1:9000' });
    expect(await resolver.resolve('hs.test')).to.deep.equal({
      connectHost: '127.0.0.1',
      port: 9000,
      hostHeader: 'hs.test',
      tlsName: 'hs.test',
    });
    expect(state.wellKnownAsked).to.deep.equal([]);
  });

  it('orders SRV records by priority, then weight (RFC 2782); "." means no service', () => {
    const records = [srv('low-priority', 1, 20, 100), srv('heavy', 2, 10, 90), srv('light', 3, 10, 10)];
    expect(chooseSrvTarget(records, () => 0)?.name).to.equal('heavy');
    expect(chooseSrvTarget(records, () => 0.95)?.name).to.equal('light');
    expect(chooseSrvTarget([srv('.', 0)], () => 0)).to.equal(undefined);
    expect(chooseSrvTarget([], () => 0)).to.equal(undefined);
  });

  it('orders every SRV target for fallback: priorities ascending, weighted picks within one', () => {
    const records = [
      srv('backup', 1, 20, 0),
      srv('heavy', 2, 10, 90),
      srv('light', 3, 10, 10),
      srv('last', 4, 30, 5),
    ];
    // random 0: the first left with weight each time; 0.99: the last.
    expect(orderSrvTargets(records, () => 0).map((r) => r.name)).to.deep.equal([
      'heavy',
      'light',
      'backup',
      'last',
    ]);
    expect(orderSrvTargets(records, () => 0.99).map((r) => r.name)).to.deep.equal([
      'light',
      'heavy',
      'backup',
      'last',
    ]);
    expect(orderSrvTargets([srv('.', 0)], () => 0)).to.deep.equal([]);
  });

  it('gives the other SRV targets as alternatives, in order', async () => {
    const { resolver } = resolverWith({
      srv: {
        '_matrix-fed._tcp.multi.example': [
          srv('b.example', 2, 20),
          srv('a.example', 1, 10),
          srv('c.example', 3, 30),
        ],
      },
    });
    expect(await resolver.resolve('multi.example')).to.deep.equal({
      connectHost: 'a.example',
      port: 1,
      hostHeader: 'multi.example',
      tlsName: 'multi.example',
      alternatives: [
        { connectHost: 'b.example', port: 2 },
        { connectHost: 'c.example', port: 3 },
      ],
    });
  });

  it('reads Cache-Control max-age', () => {
    expect(maxAgeOf('public, max-age=3600')).to.equal(3_600_000);
    expect(maxAgeOf('no-store')).to.equal(0);
    expect(maxAgeOf(undefined)).to.equal(undefined);
  });
});
