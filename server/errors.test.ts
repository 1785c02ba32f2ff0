import { expect } from 'chai';
import { ProtocolError } from '../protocol/errors.js';
import { MatrixError, matrixErrorFromProtocolError } from './errors.js';

describe('MatrixError', () => {
  it('takes the status of its errcode from the one table', () => {
    expect(MatrixError.notFound('x').status).to.equal(404);
    expect(MatrixError.forbidden('x').status).to.equal(403);
    expect(MatrixError.badJson('x').status).to.equal(400);
    expect(MatrixError.notJson().status).to.equal(400);
    expect(MatrixError.tooLarge('x').status).to.equal(413);
    expect(MatrixError.missingToken().status).to.equal(401);
    expect(MatrixError.unknownToken().status).to.equal(401);
    expect(MatrixError.unrecognized().status).to.equal(404);
    expect(MatrixError.of('M_USER_IN_USE', 'taken').status).to.equal(400);
  });

  it('renders the standard error response with extra keys, errcode and error always present', () => {
    const error = MatrixError.of('M_INCOMPATIBLE_ROOM_VERSION', 'nope', {
      room_version: '1',
      errcode: 'M_FAKE',
    });
    expect(error.toJSON()).to.deep.equal({
      room_version: '1',
      errcode: 'M_INCOMPATIBLE_ROOM_VERSION',
      error: 'nope',
    });
  });

  it('405 keeps M_UNRECOGNIZED and names the allowed methods', () => {
    const error = MatrixError.methodNotAllowed(['GET', 'HEAD']);
    expect(error.status).to.equal(405);
    expect(error.errcode).to.equal('M_UNRECOGNIZED');
    expect(error.headers).to.deep.equal({ Allow: 'GET, HEAD' });
  });

  it('limitExceeded carries retry_after_ms and a Retry-After header in whole seconds', () => {
    const error = MatrixError.limitExceeded(1500.2);
    expect(error.status).to.equal(429);
    expect(error.toJSON()).to.deep.equal({
      errcode: 'M_LIMIT_EXCEEDED',
      error: 'Too many requests',
      retry_after_ms: 1501,
    });
    expect(error.headers).to.deep.equal({ 'Retry-After': '2' });
  });

  it('soft logout is only set when asked', () => {
    expect(MatrixError.unknownToken().toJSON()).to.not.have.property('soft_logout');
    expect(MatrixError.unknownToken('expired', true).toJSON()).to.include({ soft_logout: true });
  });

  it('maps ProtocolError codes to 400 errcodes, naming the field', () => {
    const cases: [ProtocolError, string][] = [
      [new ProtocolError('BAD_JSON', 'float'), 'M_BAD_JSON'],
      [new ProtocolError('EVENT_TOO_LARGE', 'big'), 'M_TOO_LARGE'],
      [new ProtocolError('BAD_IDENTIFIER', 'bad', 'user_id'), 'M_INVALID_PARAM'],
      [new ProtocolError('UNSUPPORTED_ROOM_VERSION', 'v99'), 'M_UNSUPPORTED_ROOM_VERSION'],
    ];
    for (const [protocolError, errcode] of cases) {
      const error = matrixErrorFromProtocolError(protocolError);
      expect(error.status).to.equal(400);
      expect(error.errcode).to.equal(errcode);
    }
    expect(
      matrixErrorFromProtocolError(new ProtocolError('BAD_IDENTIFIER', 'bad', 'user_id')).message,
    ).to.equal('bad (user_id)');
  });
});
