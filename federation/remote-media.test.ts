import { expect } from 'chai';
import { fileNameOf } from './remote-media.js';

describe('remote media: the file name of a Content-Disposition', () => {
  it('reads filename*=utf-8 first, then a quoted or bare filename', () => {
    expect(fileNameOf("inline; filename*=utf-8''map%20%F0%9F%8C%8D.png")).to.equal('map 🌍.png');
    expect(fileNameOf('attachment; filename="a b.txt"')).to.equal('a b.txt');
    expect(fileNameOf('attachment; filename=plain.bin')).to.equal('plain.bin');
  });

  it('gives null without a name or with a broken encoding', () => {
    expect(fileNameOf(undefined)).to.equal(null);
    expect(fileNameOf('inline')).to.equal(null);
    expect(fileNameOf("inline; filename*=utf-8''%E0%A4%A")).to.equal(null);
  });
});
