/** Client filters (client-server "Filtering"), stored per user as uploaded. */
import type { JsonObject } from '../protocol/events.js';

export interface FilterStore {
  /** Stores the filter and resolves to its new ID (unique per user; opaque, URL-safe). */
  createFilter(userId: string, filter: JsonObject): Promise<string>;
  getFilter(userId: string, filterId: string): Promise<JsonObject | null>;
}
