/** Incoming EDUs by type (server-server "EDUs"): best effort, a failing handler is logged and skipped. */
import type { Logger } from 'pino';
import type { EduHandler, EduRegistry } from './federation.js';

export function createEduRegistry(log: Logger): EduRegistry {
  const handlers = new Map<string, EduHandler>();
  return {
    register(eduType, handler) {
      handlers.set(eduType, handler);
    },
    async dispatch(origin, edu) {
      if (typeof edu !== 'object' || edu === null) return;
      const { edu_type: eduType, content } = edu as { edu_type?: unknown; content?: unknown };
      if (typeof eduType !== 'string') return;
      const handler = handlers.get(eduType);
      if (!handler) {
        log.debug({ origin, eduType }, 'Ignored an EDU of an unhandled type');
        return;
      }
      try {
        await handler(origin, content);
      } catch (error) {
        log.info({ origin, eduType, err: error }, 'EDU handler failed');
      }
    },
  };
}
