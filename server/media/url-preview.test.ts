import { expect } from 'chai';
import { parseOpenGraph } from './url-preview.js';

describe('URL preview OpenGraph parsing', () => {
  it('reads OpenGraph tags, falling back to <title> and the description', async () => {
    expect(
      await parseOpenGraph(
        '<html><head><TITLE>T &amp; U</TITLE><meta name="description" content="D"><meta property="og:image" content="/i.png"></head></html>',
      ),
    ).to.deep.equal({ 'og:image': '/i.png', 'og:title': 'T & U', 'og:description': 'D' });
  });
});
