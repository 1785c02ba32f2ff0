import { expect } from 'chai';
import { allRoutes } from '../server/routes/index.js';
import { TestHomeserver } from './harness/test-homeserver.js';

describe('API documentation (/_matrix/docs)', () => {
  let hs: TestHomeserver;
  before(async () => {
    hs = await TestHomeserver.start();
  });
  after(() => hs.stop());

  it('serves the Swagger UI page and every asset it references from this server', async () => {
    const res = await hs.fetch('/_matrix/docs');
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/html/);
    const html = await res.text();
    expect(html).to.contain('id="swagger-ui"');
    const references = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(references.length).to.be.greaterThanOrEqual(4);
    for (const reference of references) {
      expect(reference, 'no CDN').to.match(/^\/_matrix\/docs\//);
      const asset = await hs.fetch(reference);
      expect(asset.status, reference).to.equal(200);
      expect((await asset.arrayBuffer()).byteLength, reference).to.be.greaterThan(100);
    }
    const bundle = await hs.fetch('/_matrix/docs/swagger-ui-bundle.js');
    expect(bundle.headers.get('content-type')).to.match(/javascript/);
    const initializer = await (await hs.fetch('/_matrix/docs/swagger-initializer.js')).text();
    expect(initializer).to.contain('/_matrix/docs/openapi.json');
  });

  it('refuses files outside the asset list', async () => {
    for (const path of [
      '/_matrix/docs/package.json',
      '/_matrix/docs/..%2F..%2Fpackage.json',
      '/_matrix/docs/index.html',
    ]) {
      const res = await hs.fetch(path);
      expect(res.status, path).to.equal(404);
    }
  });

  it('serves an OpenAPI 3.1 document that lists the declared routes with their schemas', async () => {
    const res = await hs.fetch('/_matrix/docs/openapi.json');
    expect(res.status).to.equal(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<
        string,
        Record<string, { operationId: string; responses: Record<string, unknown>; security?: unknown }>
      >;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(doc.openapi).to.equal('3.1.0');
    for (const route of allRoutes.filter((r) => !r.hidden)) {
      const operation = doc.paths[route.path]?.[route.method.toLowerCase()];
      expect(operation, `${route.method} ${route.path}`).to.not.equal(undefined);
      expect(operation!.operationId).to.equal(route.operationId);
    }
    expect(doc.paths['/_matrix/docs/{asset}']).to.equal(undefined);
    const versions = doc.paths['/_matrix/client/versions']!.get!;
    expect(versions.responses['200']).to.have.nested.property(
      'content.application/json.schema.properties.versions',
    );
    expect(versions.security).to.deep.equal([{}, { accessTokenBearer: [] }, { accessTokenQuery: [] }]);
    expect(doc.components.securitySchemes).to.have.keys(
      'accessTokenBearer',
      'accessTokenQuery',
      'signedRequest',
    );
  });

  it('is not served when docs are disabled', async () => {
    const quiet = await TestHomeserver.start({
      configure: (config) => {
        config.docs.enabled = false;
      },
    });
    try {
      expect((await quiet.fetch('/_matrix/docs')).status).to.equal(404);
      expect((await quiet.fetch('/_matrix/docs/openapi.json')).status).to.equal(404);
      expect((await quiet.fetch('/_matrix/client/versions')).status).to.equal(200);
    } finally {
      await quiet.stop();
    }
  });
});
