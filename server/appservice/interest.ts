/**
 * Which application services want a room event (application-service
 * "Registration"): one is interested when the event's sender, or the user a
 * membership event is about, is its sender or a local user of its user
 * namespace; when the room ID matches its room namespace; when one of the
 * room's local aliases matches its alias namespace; or when one of its users
 * is a joined member of the room. The last is the costly one: each room's
 * answer is cached and kept in step with the membership events of the
 * services' users (those of other users change nothing).
 */
import type { StoredEvent } from '../../storage/event-store.js';
import { LazyLruCache } from '../../storage/lazy-lru-cache.js';
import type { Storage } from '../../storage/storage.js';
import type { AppserviceRegistration } from './registration.js';
import type { AppserviceRegistry } from './registry.js';

const ROOM_CACHE_SIZE = 10_000;

export class AppserviceInterest {
  /** Room ID -> IDs of the services with a joined user in it. */
  private readonly byMembers = new LazyLruCache<string, ReadonlySet<string>>({ max: ROOM_CACHE_SIZE });
  private readonly anyAliasNamespace: boolean;

  constructor(
    private readonly registry: AppserviceRegistry,
    private readonly storage: Pick<Storage, 'memberships' | 'rooms'>,
  ) {
    this.anyAliasNamespace = registry.services.some((service) => service.namespaces.aliases.length > 0);
  }

  /**
   * The services interested in the event, in registration order. `aliasesByRoom` keeps the
   * rooms' aliases for the caller's batch (aliases change outside the event stream, so they
   * are not kept longer).
   */
  async servicesFor(
    event: StoredEvent,
    aliasesByRoom: Map<string, readonly string[]> = new Map(),
  ): Promise<AppserviceRegistration[]> {
    const { pdu, roomId } = event;
    const memberOf = pdu.type === 'm.room.member' && typeof pdu.state_key === 'string' ? pdu.state_key : null;
    const interested: AppserviceRegistration[] = [];
    let aliases: readonly string[] | undefined;
    let viaMembers: ReadonlySet<string> | undefined;
    for (const service of this.registry.services) {
      if (
        this.registry.isInterestedInUser(service, pdu.sender) ||
        (memberOf !== null && this.registry.isInterestedInUser(service, memberOf)) ||
        this.registry.isInterestedInRoomId(service, roomId)
      ) {
        interested.push(service);
        continue;
      }
      if (this.anyAliasNamespace && service.namespaces.aliases.length > 0) {
        aliases ??= aliasesByRoom.get(roomId);
        if (aliases === undefined) {
          aliases = (await this.storage.rooms.aliasesOfRoom(roomId)).map((record) => record.alias);
          aliasesByRoom.set(roomId, aliases);
        }
        if (aliases.some((alias) => this.registry.isInterestedInAlias(service, alias))) {
          interested.push(service);
          continue;
        }
      }
      viaMembers ??= await this.servicesWithMembersIn(roomId);
      if (viaMembers.has(service.id)) interested.push(service);
    }
    if (memberOf !== null) this.memberMoved(roomId, memberOf, pdu.content.membership);
    return interested;
  }

  /**
   * Keeps the room's cached answer in step with a membership event: a user of no service
   * changes nothing, a user of a service joining adds it; one leaving (the service may have
   * others in the room) makes the next event of the room look at its members again.
   */
  private memberMoved(roomId: string, userId: string, membership: unknown): void {
    const cached = this.byMembers.get(roomId);
    if (cached === undefined) return;
    const owners = this.registry.services.filter((service) =>
      this.registry.isInterestedInUser(service, userId),
    );
    if (owners.length === 0) return;
    if (membership !== 'join') {
      this.byMembers.delete(roomId);
      return;
    }
    if (owners.every((service) => cached.has(service.id))) return;
    const ids = new Set(cached);
    for (const service of owners) ids.add(service.id);
    this.byMembers.set(roomId, ids);
  }

  /**
   * For a membership event outside the room's timeline (an invite from a room this server is not
   * in): the services of the user it is about, and of its sender.
   */
  servicesForMember(event: StoredEvent): AppserviceRegistration[] {
    const { pdu } = event;
    if (pdu.type !== 'm.room.member' || typeof pdu.state_key !== 'string') return [];
    const target = pdu.state_key;
    return this.registry.services.filter(
      (service) =>
        this.registry.isInterestedInUser(service, target) ||
        this.registry.isInterestedInUser(service, pdu.sender),
    );
  }

  private async servicesWithMembersIn(roomId: string): Promise<ReadonlySet<string>> {
    const cached = this.byMembers.get(roomId);
    if (cached !== undefined) return cached;
    const members = await this.storage.memberships.membersOfRoom(roomId, ['join']);
    const ids = new Set<string>();
    for (const service of this.registry.services) {
      if (members.some((member) => this.registry.isInterestedInUser(service, member.userId))) {
        ids.add(service.id);
      }
    }
    this.byMembers.set(roomId, ids);
    return ids;
  }
}
