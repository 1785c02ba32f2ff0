/**
 * Outbound HTTP to a place a user named (URL previews, identity servers), through an
 * AddressGuard. A refused address answers 403 M_FORBIDDEN wherever it is found: a literal
 * address in the URL (which skips DNS and so the lookup hook) or any address the name
 * resolves to at connect time. 403 rather than 502: the server declines by its own policy,
 * nothing upstream failed, and asking again will not help.
 */

import { isIP } from 'node:net';
import type { Agent, Dispatcher } from 'undici';
import { MatrixError } from '../errors.js';
import { undici } from '../http/undici.js';
import { type AddressGuard, ForbiddenAddressError } from './address-guard.js';

export type GuardedRequest = Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'dispatcher'>;
export type GuardedResponse = Dispatcher.ResponseData;

export class GuardedFetch {
  private agentMade: Agent | undefined;

  /** `refusal`: the 403 message, naming what the user asked for. */
  constructor(
    private readonly guard: AddressGuard,
    private readonly connectTimeoutMs: number,
    private readonly refusal: string,
  ) {}

  /** @throws MatrixError 403 M_FORBIDDEN for a refused address; other failures as undici throws them. */
  async request(url: URL, options: GuardedRequest): Promise<GuardedResponse> {
    const host = url.hostname.replace(/^\[|\]$/gu, '');
    if (isIP(host) !== 0 && !this.guard.permits(host)) throw MatrixError.forbidden(this.refusal);
    try {
      return await undici().request(url, { ...options, dispatcher: this.agent() });
    } catch (error) {
      if (ForbiddenAddressError.isOrCauses(error)) throw MatrixError.forbidden(this.refusal);
      throw error;
    }
  }

  /** The guarded connection pool, made with the first request. */
  private agent(): Agent {
    this.agentMade ??= new (undici().Agent)({
      connect: { lookup: this.guard.lookup, timeout: this.connectTimeoutMs },
    });
    return this.agentMade;
  }

  close(): Promise<void> {
    return this.agentMade?.close() ?? Promise.resolve();
  }
}

/** The whole body, or `tooLarge()` thrown (and the rest of the body dropped) once it passes `limit` bytes. */
export async function readLimited(
  body: GuardedResponse['body'],
  limit: number,
  tooLarge: () => Error,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}
