/**
 * The server's structured JSON logger. Credentials are redacted by path as a
 * second line of defence; the request logger never passes headers or raw
 * query strings in the first place.
 */
import { type DestinationStream, type Logger, pino } from 'pino';
import type { MyelinConfig } from './config/index.js';

/**
 * Where the server's lines go (stdout unless told): written in batches of about 4 KB, or every
 * 250 ms when fewer come, not one write (and one thread-pool round trip) per line. The access log
 * writes a line for every request, and writing each one cost more than the rest of the request's
 * HTTP handling (bench/README.md, "HTTP overhead"). pino flushes what is left when the process exits.
 */
export function logDestination(dest: number | string = 1): DestinationStream {
  return pino.destination({ dest, sync: false, minLength: 4096, periodicFlush: 250 });
}

export function createLogger(
  config: MyelinConfig['logging'],
  destination: DestinationStream = logDestination(),
): Logger {
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
  return pino(options, destination);
}
