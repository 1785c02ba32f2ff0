/**
 * The homeserver's questions to application services (application-service
 * "Querying"): does this room alias exist (query_room.yaml), does this user
 * (query_user.yaml). A service answering 2xx has made the entity; 404 says it
 * will not; anything else is logged and taken as "no".
 */
import type { Logger } from 'pino';
import type { AccountStore } from '../../storage/account-store.js';
import type { AppserviceClient, AppserviceResponse } from './appservice-client.js';
import type { AppserviceRegistration } from './registration.js';
import type { AppserviceRegistry } from './registry.js';

export class AppserviceQueries {
  /** Aliases being asked about: a lookup the service makes while answering is not asked again. */
  private readonly aliasesAsked = new Set<string>();

  constructor(
    private readonly registry: AppserviceRegistry,
    private readonly client: AppserviceClient,
    private readonly accounts: Pick<AccountStore, 'getAccount'>,
    private readonly log: Pick<Logger, 'info'>,
  ) {}

  /** Asks the services whose alias namespace covers the alias, in turn; true once one has made it. */
  async queryAlias(alias: string): Promise<boolean> {
    if (this.aliasesAsked.has(alias)) return false;
    this.aliasesAsked.add(alias);
    try {
      for (const service of this.registry.services) {
        if (service.url === null || !this.registry.isInterestedInAlias(service, alias)) continue;
        const path = `/_matrix/app/v1/rooms/${encodeURIComponent(alias)}`;
        if (this.made(service, await this.client.request(service, 'GET', path, undefined), alias))
          return true;
      }
      return false;
    } finally {
      this.aliasesAsked.delete(alias);
    }
  }

  /**
   * Before a transaction with an invite of a user of the service's namespace who has no account
   * yet (a bridged user not seen before) is sent to it: asks the service, so it can make the
   * user before it hears of the invite. The invite is sent whatever it answers. `events` are
   * the transaction's events as JSON text.
   */
  async queryInvitees(service: AppserviceRegistration, events: readonly string[]): Promise<void> {
    for (const json of events) {
      // Most events are not invites: a look at the text spares parsing them.
      if (!json.includes('"invite"') || !json.includes('"m.room.member"')) continue;
      const event = JSON.parse(json) as {
        type?: unknown;
        state_key?: unknown;
        content?: { membership?: unknown };
      };
      if (event.type !== 'm.room.member' || typeof event.state_key !== 'string') continue;
      if (event.content?.membership !== 'invite') continue;
      const userId = event.state_key;
      if (userId === service.sender || !this.registry.isInterestedInUser(service, userId)) continue;
      if ((await this.accounts.getAccount(userId)) !== null) continue;
      const path = `/_matrix/app/v1/users/${encodeURIComponent(userId)}`;
      this.made(service, await this.client.request(service, 'GET', path, undefined), userId);
    }
  }

  private made(service: AppserviceRegistration, outcome: AppserviceResponse, subject: string): boolean {
    if (outcome.kind === 'ok') return true;
    if (outcome.kind !== 'bad-status' || outcome.status !== 404) {
      const reason = 'status' in outcome ? `status ${outcome.status}` : outcome.message;
      this.log.info({ appservice: service.id, subject, reason }, 'Application service query failed');
    }
    return false;
  }
}
