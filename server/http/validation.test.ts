import { expect } from 'chai';
import { allRoutes } from '../routes/index.js';
import { isRawResponse } from './route.js';
import { createRequestValidation } from './validation.js';

describe('request validation', () => {
  // Validators compile on a route's first request, not at start-up: a schema ajv cannot
  // compile would only show there, as a 500. This compiles every one up front.
  it("compiles every route's request and response schemas, each a valid JSON Schema", () => {
    const validation = createRequestValidation({ checkSchemas: true });
    for (const route of allRoutes) {
      const validators = validation.compile(route);
      for (const [status, spec] of Object.entries(route.responses)) {
        if (isRawResponse(spec)) continue;
        expect(
          () => validation.checkResponse(validators, Number(status), {}),
          route.operationId,
        ).not.to.throw();
      }
    }
    expect(allRoutes.length).to.be.greaterThan(200);
  });

  it('refuses a schema that is not valid JSON Schema when asked to check', () => {
    const route = allRoutes.find((candidate) => candidate.operationId === 'defineFilter')!;
    const broken = {
      ...route,
      request: { body: { type: 'object', properties: 7 } },
    } as unknown as typeof route;
    expect(() => createRequestValidation({ checkSchemas: true }).compile(broken)).to.throw(
      /schema is invalid/,
    );
  });

  it('compiles a route once, however many requests it serves', () => {
    const validation = createRequestValidation();
    const route = allRoutes.find((candidate) => candidate.operationId === 'defineFilter');
    expect(route, 'defineFilter route').to.not.equal(undefined);
    expect(validation.compile(route!)).to.equal(validation.compile(route!));
  });
});
