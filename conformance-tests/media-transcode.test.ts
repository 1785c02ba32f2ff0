import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import { createUser, fastAccounts, type TestUser } from './harness/accounts.js';
import { TestHomeserver } from './harness/test-homeserver.js';

const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0;

/** `seconds` of a 440 Hz tone as 16-bit stereo 44.1 kHz PCM WAV (about 176 kB a second). */
function wav(seconds: number): Buffer {
  const rate = 44_100;
  const samples = rate * seconds;
  const data = Buffer.alloc(samples * 4);
  for (let i = 0; i < samples; i++) {
    const value = Math.round(Math.sin((2 * Math.PI * 440 * i) / rate) * 12_000);
    data.writeInt16LE(value, i * 4);
    data.writeInt16LE(value, i * 4 + 2);
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(2, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 4, 28);
  header.writeUInt16LE(4, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

describe('media: transcoding with ffmpeg', function () {
  this.timeout(60_000);
  let hs: TestHomeserver;
  let alice: TestUser;

  before(async function () {
    if (!hasFfmpeg) this.skip();
    hs = await TestHomeserver.start({
      configure: (config) => {
        fastAccounts(config);
        config.media.encryption.enabled = true;
      },
    });
    alice = await createUser(hs, 'alice');
  });
  after(() => hs?.stop());

  it('stores a large voice message as Opus, smaller, with its duration', async () => {
    const original = wav(8);
    const res = await hs.fetch('/_matrix/media/v3/upload?filename=voice.wav', {
      method: 'POST',
      headers: { Authorization: `Bearer ${alice.accessToken}`, 'Content-Type': 'audio/wav' },
      body: original,
    });
    const body = (await res.json()) as { content_uri: string; 'io.myelin.preview': Record<string, unknown> };
    expect(res.status, JSON.stringify(body)).to.equal(200);
    const preview = body['io.myelin.preview'];
    expect(preview.mimetype).to.match(/^audio\/ogg/);
    expect(preview.size).to.be.below(original.length / 5);
    expect(preview.duration).to.be.within(7900, 8100);
    const download = await hs.fetch(`/_matrix/client/v1/media/download/${body.content_uri.slice(6)}`, {
      headers: { Authorization: `Bearer ${alice.accessToken}` },
    });
    expect(download.headers.get('content-type')).to.match(/^audio\/ogg/);
    expect(download.headers.get('content-disposition')).to.equal('inline; filename="voice.wav"');
    expect((await download.arrayBuffer()).byteLength).to.equal(preview.size);
  });

  it('stores a large video as H.264 MP4, smaller, with its duration', async () => {
    // Two seconds of a test pattern as Motion JPEG in AVI: big, as camera recordings are.
    const made = spawnSync('ffmpeg', [
      ...[
        '-hide_banner',
        '-loglevel',
        'error',
        '-f',
        'lavfi',
        '-i',
        'testsrc=size=320x240:rate=25',
        '-t',
        '2',
      ],
      ...['-c:v', 'mjpeg', '-q:v', '2', '-f', 'avi', 'pipe:1'],
    ]);
    const original = made.stdout;
    expect(original.length).to.be.above(100_000);
    hs.config.media.compression.transcode_video_over_bytes = 50_000;
    try {
      const res = await hs.fetch('/_matrix/media/v3/upload', {
        method: 'POST',
        headers: { Authorization: `Bearer ${alice.accessToken}`, 'Content-Type': 'video/x-msvideo' },
        body: original,
      });
      const body = (await res.json()) as { 'io.myelin.preview': Record<string, unknown> };
      const preview = body['io.myelin.preview'];
      expect(preview.mimetype).to.equal('video/mp4');
      expect(preview.size).to.be.below(original.length);
      expect(preview.duration).to.be.within(1900, 2100);
    } finally {
      hs.config.media.compression.transcode_video_over_bytes = 20_971_520;
    }
  });
});
