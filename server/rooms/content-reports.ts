/**
 * Reports of rooms, events and users to this server's administrators (client-server
 * "Reporting content"). Storage has no reports table yet: each report is logged as
 * structured JSON at warn level (so it reaches the operator's log pipeline) and kept
 * in memory for the admin API to come. Reports do not survive a restart except in the log.
 */
import type { Logger } from 'pino';

export interface ContentReport {
  readonly reporter: string;
  /** The reported room, or the room of the reported event. */
  readonly roomId?: string;
  /** The reported event. */
  readonly eventId?: string;
  /** The reported user. */
  readonly userId?: string;
  readonly reason?: string;
  readonly receivedTs: number;
}

export interface ContentReports {
  record(report: ContentReport): Promise<void>;
  /** Most recent first. */
  list(): readonly ContentReport[];
}

const MAX_KEPT_REPORTS = 10_000;

export function createInMemoryContentReports(log: Pick<Logger, 'warn'>): ContentReports {
  const reports: ContentReport[] = [];
  return {
    async record(report) {
      log.warn({ contentReport: report }, 'Content reported');
      reports.unshift(report);
      if (reports.length > MAX_KEPT_REPORTS) reports.length = MAX_KEPT_REPORTS;
    },
    list: () => reports,
  };
}
