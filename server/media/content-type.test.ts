import { expect } from 'chai';
import { contentDisposition, servedInline, sniffContentType } from './content-type.js';

describe('media content types', () => {
  it('sniffs the bytes, not the claim', async () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108020000009077', 'hex');
    expect(await sniffContentType(png, 'text/html')).to.equal('image/png');
    expect(await sniffContentType(Buffer.from('  <!DOCTYPE html><p>'), 'image/png')).to.equal('text/html');
    expect(await sniffContentType(Buffer.from('<svg xmlns="x">'), 'image/png')).to.equal('image/svg+xml');
    expect(await sniffContentType(Buffer.from('a,b\n1,2\n'), 'text/csv')).to.equal('text/csv; charset=utf-8');
    expect(await sniffContentType(Buffer.from('hello'), 'text/html')).to.equal('text/plain; charset=utf-8');
    expect(await sniffContentType(Buffer.from([0, 1, 2, 3, 250]), undefined)).to.equal(
      'application/octet-stream',
    );
    expect(await sniffContentType(Buffer.alloc(0), 'image/png')).to.equal('text/plain; charset=utf-8');
  });

  it("serves inline only the spec's safe list, with the file name", () => {
    expect(servedInline('image/png')).to.equal(true);
    expect(servedInline('text/plain; charset=utf-8')).to.equal(true);
    expect(servedInline('text/html')).to.equal(false);
    expect(servedInline('image/svg+xml')).to.equal(false);
    expect(contentDisposition('image/png', 'cat.png')).to.equal('inline; filename="cat.png"');
    expect(contentDisposition('text/html', null)).to.equal('attachment');
    expect(contentDisposition('application/pdf', 'résumé "final".pdf')).to.equal(
      "attachment; filename*=utf-8''r%C3%A9sum%C3%A9%20%22final%22.pdf",
    );
  });
});
