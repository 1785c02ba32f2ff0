/**
 * Third-party networks served by application services (client-server
 * "Third-party networks", application-service "Third-party networks"): the
 * homeserver asks each service that declares a protocol in its registration,
 * and merges the answers. A service that fails or answers nonsense is left
 * out (and logged) rather than failing the client's request. Protocol
 * metadata is kept a minute: clients ask for it at every start.
 *
 * Each protocol instance gets the `instance_id` `{appserviceId}|{network_id}`,
 * the third_party_instance_id POST /publicRooms takes (network-directory.ts).
 */
import type { Logger } from 'pino';
import type { JsonObject } from '../../protocol/events.js';
import type { AppserviceClient } from './appservice-client.js';
import { thirdPartyInstanceId } from './network-directory.js';
import type { AppserviceRegistration } from './registration.js';
import type { AppserviceRegistry } from './registry.js';

const PROTOCOL_CACHE_MS = 60_000;

type ThirdPartyKind = 'user' | 'location';

export class ThirdPartyLookups {
  private readonly protocolCache = new Map<
    string,
    { readonly atMs: number; readonly value: JsonObject | null }
  >();

  constructor(
    private readonly registry: AppserviceRegistry,
    private readonly client: AppserviceClient,
    private readonly log: Pick<Logger, 'info'>,
  ) {}

  /** Every protocol some service declares, with its metadata; protocols no service describes are left out. */
  async protocols(): Promise<Record<string, JsonObject>> {
    const names = new Set(this.registry.services.flatMap((service) => service.protocols));
    const result: Record<string, JsonObject> = {};
    await Promise.all(
      [...names].map(async (name) => {
        const metadata = await this.protocol(name);
        if (metadata !== null) result[name] = metadata;
      }),
    );
    return result;
  }

  /** One protocol's metadata, its instances gathered from every service providing it; null when none answers. */
  async protocol(name: string): Promise<JsonObject | null> {
    const cached = this.protocolCache.get(name);
    if (cached !== undefined && Date.now() - cached.atMs < PROTOCOL_CACHE_MS) return cached.value;
    const path = `/_matrix/app/v1/thirdparty/protocol/${encodeURIComponent(name)}`;
    let merged: JsonObject | null = null;
    const instances: JsonObject[] = [];
    for (const service of this.providersOf(name)) {
      const answer = await this.ask(service, path);
      if (!isObject(answer)) continue;
      merged ??= { ...answer };
      for (const instance of Array.isArray(answer.instances) ? answer.instances : []) {
        if (!isObject(instance) || typeof instance.network_id !== 'string') continue;
        instances.push({ ...instance, instance_id: thirdPartyInstanceId(service.id, instance.network_id) });
      }
    }
    if (merged !== null) merged.instances = instances;
    this.protocolCache.set(name, { atMs: Date.now(), value: merged });
    return merged;
  }

  /** Whether some service declares the protocol. */
  isKnownProtocol(name: string): boolean {
    return this.providersOf(name).length > 0;
  }

  /** GET /thirdparty/{user,location}/{protocol}: the services' matches for the fields, together. */
  async query(kind: ThirdPartyKind, protocol: string, fields: Record<string, string>): Promise<JsonObject[]> {
    const query = new URLSearchParams(fields).toString();
    const path = `/_matrix/app/v1/thirdparty/${kind}/${encodeURIComponent(protocol)}${query === '' ? '' : `?${query}`}`;
    return this.gather(this.providersOf(protocol), path);
  }

  /** GET /thirdparty/location?alias= and /thirdparty/user?userid=: asked of every service with a protocol. */
  reverse(kind: ThirdPartyKind, value: string): Promise<JsonObject[]> {
    const parameter = kind === 'user' ? 'userid' : 'alias';
    const path = `/_matrix/app/v1/thirdparty/${kind}?${new URLSearchParams({ [parameter]: value }).toString()}`;
    return this.gather(
      this.registry.services.filter((service) => service.url !== null && service.protocols.length > 0),
      path,
    );
  }

  private providersOf(protocol: string): AppserviceRegistration[] {
    return this.registry.services.filter(
      (service) => service.url !== null && service.protocols.includes(protocol),
    );
  }

  private async gather(services: readonly AppserviceRegistration[], path: string): Promise<JsonObject[]> {
    const answers = await Promise.all(services.map((service) => this.ask(service, path)));
    return answers.flatMap((answer) => (Array.isArray(answer) ? answer.filter(isObject) : []));
  }

  /** The service's JSON answer, or undefined when it failed. */
  private async ask(service: AppserviceRegistration, path: string): Promise<unknown> {
    const outcome = await this.client.request(service, 'GET', path, undefined);
    if (outcome.kind !== 'ok') {
      const reason = 'status' in outcome ? `status ${outcome.status}` : outcome.message;
      this.log.info({ appservice: service.id, path, reason }, 'Third-party lookup failed');
      return undefined;
    }
    try {
      return JSON.parse(outcome.body) as unknown;
    } catch {
      this.log.info(
        { appservice: service.id, path },
        'Third-party lookup answered something other than JSON',
      );
      return undefined;
    }
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
