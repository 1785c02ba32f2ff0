/**
 * The configured application services and the questions asked of them
 * (application-service "Registration"): whose token is this, which service
 * may act as or is interested in a user, and who holds a user or alias
 * namespace exclusively. Pure lookups over the registrations; no I/O.
 */
import { belongsToServer } from '../../protocol/identifiers.js';
import { MatrixError } from '../errors.js';
import type { AppserviceRegistration, Namespace } from './registration.js';

export class AppserviceRegistry {
  private readonly byToken = new Map<string, AppserviceRegistration>();
  private readonly byId = new Map<string, AppserviceRegistration>();

  constructor(
    readonly services: readonly AppserviceRegistration[],
    private readonly serverName: string,
  ) {
    for (const service of services) {
      this.byToken.set(service.asToken, service);
      this.byId.set(service.id, service);
    }
  }

  get size(): number {
    return this.services.length;
  }

  /** The service that authenticated a request, if one did. */
  serviceOf(
    requester: { readonly appservice?: { readonly id: string } } | undefined,
  ): AppserviceRegistration | undefined {
    return requester?.appservice === undefined ? undefined : this.byId.get(requester.appservice.id);
  }

  /** The service whose as_token this is. */
  withToken(token: string): AppserviceRegistration | undefined {
    return this.byToken.get(token);
  }

  withId(id: string): AppserviceRegistration | undefined {
    return this.byId.get(id);
  }

  /**
   * Its sender, or a local user in its user namespace ("application services can only
   * register interest in local users").
   */
  isInterestedInUser(service: AppserviceRegistration, userId: string): boolean {
    if (userId === service.sender) return true;
    return belongsToServer(userId, this.serverName) && matches(service.namespaces.users, userId);
  }

  isInterestedInAlias(service: AppserviceRegistration, alias: string): boolean {
    return matches(service.namespaces.aliases, alias);
  }

  isInterestedInRoomId(service: AppserviceRegistration, roomId: string): boolean {
    return matches(service.namespaces.rooms, roomId);
  }

  /**
   * A new account `userId` (client-server registration, application-service "Server admin style
   * permissions"): a service registers only inside its own namespace, and nobody (user or other
   * service) inside a namespace another service holds exclusively. M_EXCLUSIVE either way.
   */
  checkUserCreation(userId: string, requester: AppserviceRegistration | undefined): void {
    if (requester !== undefined && !this.isInterestedInUser(requester, userId)) {
      throw MatrixError.of('M_EXCLUSIVE', "This user ID is outside the application service's namespace");
    }
    if (this.exclusiveOwnerOfUser(userId, requester) !== undefined) {
      throw MatrixError.of('M_EXCLUSIVE', 'This user ID is reserved by an application service');
    }
  }

  /** The same rule for creating or deleting a room alias. */
  checkAliasChange(alias: string, requester: AppserviceRegistration | undefined): void {
    if (requester !== undefined && !this.isInterestedInAlias(requester, alias)) {
      throw MatrixError.of('M_EXCLUSIVE', "This room alias is outside the application service's namespace");
    }
    const owner = this.services.find(
      (service) => service !== requester && matchesExclusively(service.namespaces.aliases, alias),
    );
    if (owner !== undefined) {
      throw MatrixError.of('M_EXCLUSIVE', 'This room alias is reserved by an application service');
    }
  }

  /** A service other than `except` holding the user exclusively (its sender, or an exclusive user namespace). */
  exclusiveOwnerOfUser(userId: string, except?: AppserviceRegistration): AppserviceRegistration | undefined {
    if (!belongsToServer(userId, this.serverName)) return undefined;
    return this.services.find(
      (service) =>
        service !== except &&
        (service.sender === userId || matchesExclusively(service.namespaces.users, userId)),
    );
  }
}

function matches(namespaces: readonly Namespace[], value: string): boolean {
  for (const namespace of namespaces) if (namespace.regex.test(value)) return true;
  return false;
}

function matchesExclusively(namespaces: readonly Namespace[], value: string): boolean {
  for (const namespace of namespaces) if (namespace.exclusive && namespace.regex.test(value)) return true;
  return false;
}
