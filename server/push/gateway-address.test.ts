import { expect } from 'chai';
import { gatewayUrlProblem } from './gateway-address.js';

const strict = { allowPrivate: false, allowedHosts: [] };

describe('push gateway addresses (SSRF guard)', () => {
  it('accepts public HTTPS notify URLs and refuses the rest', () => {
    expect(gatewayUrlProblem('https://push.example.org/_matrix/push/v1/notify', strict)).to.equal(null);
    expect(gatewayUrlProblem('http://push.example.org/_matrix/push/v1/notify', strict)).to.match(/HTTPS/);
    expect(gatewayUrlProblem('https://push.example.org/notify', strict)).to.match(/path/);
    expect(gatewayUrlProblem('https://u:p@push.example.org/_matrix/push/v1/notify', strict)).to.match(
      /credentials/,
    );
    expect(gatewayUrlProblem('not a url', strict)).to.match(/not a URL/);
    for (const host of ['127.0.0.1', '10.1.2.3', '[::1]', '169.254.169.254', '[::ffff:192.168.0.1]']) {
      expect(gatewayUrlProblem(`https://${host}/_matrix/push/v1/notify`, strict), host).to.match(/private/);
    }
    expect(
      gatewayUrlProblem('https://other.example.org/_matrix/push/v1/notify', {
        ...strict,
        allowedHosts: ['push.example.org'],
      }),
    ).to.match(/host/);
  });

  it('allows loopback and plain HTTP only when private gateways are allowed', () => {
    const open = { allowPrivate: true, allowedHosts: [] };
    expect(gatewayUrlProblem('http://127.0.0.1:8080/_matrix/push/v1/notify', open)).to.equal(null);
    expect(gatewayUrlProblem('https://8.8.8.8/_matrix/push/v1/notify', strict)).to.equal(null);
    expect(gatewayUrlProblem('https://[fd00::1]/_matrix/push/v1/notify', strict)).to.match(/private/);
  });
});
