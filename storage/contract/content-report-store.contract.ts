import { expect } from 'chai';
import { type StorageFactory, useFreshStorage } from './contract-harness.js';

export function describeContentReportStoreContract(makeStorage: StorageFactory): void {
  describe('ContentReportStore', () => {
    const storage = useFreshStorage(makeStorage);

    it('keeps reports of events, rooms and users as given, and pages through them either way', async () => {
      const reports = storage().contentReports;
      const first = await reports.addReport({
        reporter: '@alice:example.org',
        roomId: '!room:example.org',
        eventId: '$event',
        reason: 'spam 🥫',
        receivedTs: 1000,
      });
      const second = await reports.addReport({
        reporter: '@bob:example.org',
        roomId: '!room:example.org',
        receivedTs: 2000,
      });
      const third = await reports.addReport({
        reporter: '@alice:example.org',
        userId: '@mallory:elsewhere.example',
        receivedTs: 3000,
      });
      expect(second).to.be.greaterThan(first);
      expect(third).to.be.greaterThan(second);

      const newest = await reports.listReports({ from: 0, limit: 2, direction: 'b' });
      expect(newest.total).to.equal(3);
      expect(newest.reports.map((r) => r.reportId)).to.deep.equal([third, second]);
      expect(newest.reports[0]).to.deep.equal({
        reportId: third,
        reporter: '@alice:example.org',
        userId: '@mallory:elsewhere.example',
        receivedTs: 3000,
      });
      const rest = await reports.listReports({ from: 2, limit: 2, direction: 'b' });
      expect(rest.reports).to.deep.equal([
        {
          reportId: first,
          reporter: '@alice:example.org',
          roomId: '!room:example.org',
          eventId: '$event',
          reason: 'spam 🥫',
          receivedTs: 1000,
        },
      ]);
      const oldest = await reports.listReports({ from: 0, limit: 10, direction: 'f' });
      expect(oldest.reports.map((r) => r.reportId)).to.deep.equal([first, second, third]);

      const ofRoom = await reports.listReports({
        from: 0,
        limit: 10,
        direction: 'b',
        roomId: '!room:example.org',
      });
      expect(ofRoom.total).to.equal(2);
      const eventsOnly = await reports.listReports({ from: 0, limit: 10, direction: 'b', eventsOnly: true });
      expect(eventsOnly.reports.map((r) => r.reportId)).to.deep.equal([first]);
      const byAlice = await reports.listReports({
        from: 0,
        limit: 10,
        direction: 'b',
        reporter: '@alice:example.org',
      });
      expect(byAlice.reports.map((r) => r.reportId)).to.deep.equal([third, first]);
    });
  });
}
