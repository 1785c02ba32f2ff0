/**
 * An application service on the WebSocket: its as_token has no login session,
 * so the periodic session check must not close its socket.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { LimitedWsHomeserver, WsClient } from './harness/ws-client.js';

describe('Application services on the WebSocket', function () {
  this.timeout(20_000);
  const AS_TOKEN = 'as-token-of-a-websocket-bridge';
  let folder: string;
  let hs: LimitedWsHomeserver;

  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'myelin-appservice-ws-'));
    await writeFile(
      path.join(folder, 'bridge.yaml'),
      [
        'id: wsbridge',
        'url: null',
        `as_token: ${AS_TOKEN}`,
        'hs_token: hs-token-of-a-websocket-bridge',
        'sender_localpart: wsbot',
        'namespaces:',
        '  users: [{ exclusive: true, regex: "@ws_.*:localhost" }]',
      ].join('\n'),
    );
    hs = await LimitedWsHomeserver.start({ sessionCheckIntervalMs: 50 }, (config) => {
      config.app_service_config_files = [path.join(folder, 'bridge.yaml')];
    });
  });

  after(async () => {
    await hs?.stop();
    await rm(folder, { recursive: true, force: true });
  });

  it('keeps a service’s socket open through the session checks', async () => {
    const client = await WsClient.authenticated(hs, AS_TOKEN);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(client.closeCode).to.equal(undefined);
    const whoami = await client.call('GET', '/_matrix/client/v3/account/whoami');
    expect(whoami.status).to.equal(200);
    expect(whoami.body).to.include({ user_id: '@wsbot:localhost' });
    await client.close();
  });
});
