/**
 * The server's structured JSON logger. Credentials are redacted by path as a
 * second line of defence; the request logger never passes headers or raw
 * query strings in the first place.
 */
import { type DestinationStream, type Logger, pino } from 'pino';
import type { MyelinConfig } from './config/index.js';

export function createLogger(config: MyelinConfig['logging'], destination?: DestinationStream): Logger {
  const options = {
    level: config.level,
    base: { service: 'myelin' },
    redact: {
      paths: [
        'access_token',
        '*.access_token',
        'password',
        '*.password',
        'headers.authorization',
        '*.headers.authorization',
      ],
      censor: 'REDACTED',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
