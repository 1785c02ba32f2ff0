import type { Logger } from 'pino';

/** What the app's middleware puts on every Koa context before a route runs. */
export interface RequestState {
  requestId: string;
  /** A child logger carrying the request ID. */
  log: Logger;
}
