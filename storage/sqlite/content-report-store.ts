import type { Statement } from 'better-sqlite3';
import type {
  ContentReportPage,
  ContentReportQuery,
  ContentReportStore,
  NewContentReport,
  StoredContentReport,
} from '../content-report-store.js';
import type { SqliteConnection } from './connection.js';
import type { EnqueueWrite } from './write-queue.js';

interface ReportRow {
  report_id: number;
  received_ts: number;
  reporter: string;
  room_id: string | null;
  event_id: string | null;
  user_id: string | null;
  reason: string | null;
}

export class SqliteContentReportStore implements ContentReportStore {
  private insert:
    | Statement<[number, string, string | null, string | null, string | null, string | null], void>
    | undefined;

  constructor(
    private readonly connection: SqliteConnection,
    private readonly enqueue: EnqueueWrite,
  ) {}

  addReport(report: NewContentReport): Promise<number> {
    return this.enqueue(() => {
      this.insert ??= this.connection.sqlite.prepare(
        `INSERT INTO content_reports (received_ts, reporter, room_id, event_id, user_id, reason)
         VALUES (?, ?, ?, ?, ?, ?)`,
      );
      const result = this.insert.run(
        report.receivedTs,
        report.reporter,
        report.roomId ?? null,
        report.eventId ?? null,
        report.userId ?? null,
        report.reason ?? null,
      );
      return Number(result.lastInsertRowid);
    });
  }

  async listReports(query: ContentReportQuery): Promise<ContentReportPage> {
    const conditions: string[] = [];
    const values: (string | number)[] = [];
    if (query.roomId !== undefined) {
      conditions.push('room_id = ?');
      values.push(query.roomId);
    }
    if (query.reporter !== undefined) {
      conditions.push('reporter = ?');
      values.push(query.reporter);
    }
    if (query.eventsOnly) conditions.push('event_id IS NOT NULL');
    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    const { sqlite } = this.connection;
    const total = sqlite
      .prepare<(string | number)[], { total: number }>(
        `SELECT count(*) AS total FROM content_reports ${where}`,
      )
      .get(...values)!.total;
    const order = query.direction === 'f' ? 'ASC' : 'DESC';
    const rows = sqlite
      .prepare<(string | number)[], ReportRow>(
        `SELECT * FROM content_reports ${where} ORDER BY report_id ${order} LIMIT ? OFFSET ?`,
      )
      .all(...values, query.limit, query.from);
    return { reports: rows.map(reportOf), total };
  }
}

function reportOf(row: ReportRow): StoredContentReport {
  return {
    reportId: row.report_id,
    receivedTs: row.received_ts,
    reporter: row.reporter,
    ...(row.room_id === null ? {} : { roomId: row.room_id }),
    ...(row.event_id === null ? {} : { eventId: row.event_id }),
    ...(row.user_id === null ? {} : { userId: row.user_id }),
    ...(row.reason === null ? {} : { reason: row.reason }),
  };
}
