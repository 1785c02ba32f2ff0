/**
 * Reports of rooms, events and users to this server's administrators (client-server
 * "Reporting content"). Each report is stored (storage/content-report-store.ts), where
 * administrators list them (GET /_synapse/admin/v1/event_reports), and logged as
 * structured JSON at warn level so that it also reaches the operator's log pipeline.
 */
import type { Logger } from 'pino';
import type {
  ContentReportPage,
  ContentReportQuery,
  NewContentReport,
} from '../../storage/content-report-store.js';
import type { Storage } from '../../storage/storage.js';

export type ContentReport = NewContentReport;

export interface ContentReports {
  record(report: ContentReport): Promise<void>;
  list(query: ContentReportQuery): Promise<ContentReportPage>;
}

export function createContentReports(storage: Storage, log: Pick<Logger, 'warn'>): ContentReports {
  return {
    async record(report) {
      const reportId = await storage.contentReports.addReport(report);
      log.warn({ contentReport: { reportId, ...report } }, 'Content reported');
    },
    list: (query) => storage.contentReports.listReports(query),
  };
}
