/**
 * Reports of rooms, events and users to this server's administrators
 * (client-server "Reporting content"), kept until an administrator deletes them.
 */

export interface NewContentReport {
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

export interface StoredContentReport extends NewContentReport {
  /** Increasing in the order reports arrived. */
  readonly reportId: number;
}

export interface ContentReportPage {
  readonly reports: StoredContentReport[];
  /** How many reports match, over all pages. */
  readonly total: number;
}

export interface ContentReportQuery {
  /** Reports skipped (offset into the order asked for). */
  readonly from: number;
  readonly limit: number;
  /** 'b': newest first (default), 'f': oldest first. */
  readonly direction: 'f' | 'b';
  /** Only reports about this room. */
  readonly roomId?: string;
  /** Only reports by this user. */
  readonly reporter?: string;
  /** Only reports of events (not of whole rooms or users). */
  readonly eventsOnly?: boolean;
}

export interface ContentReportStore {
  /** Resolves to the new report's ID once it is stored. */
  addReport(report: NewContentReport): Promise<number>;
  listReports(query: ContentReportQuery): Promise<ContentReportPage>;
}
