/**
 * Audio and video transcoding with ffmpeg (the Debian package), when it is
 * installed: voice messages to Opus, videos to H.264/AAC. Without ffmpeg the
 * server says so once at start-up and stores media as sent. Input is piped
 * on stdin (so encrypted media never touches the disk as plaintext) and the
 * output streams back from stdout.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { ImageSource } from './image-processing.js';

export interface Transcoder {
  readonly available: boolean;
  /** Ogg/Opus at `bitrate`, or undefined when ffmpeg is missing. */
  audio(source: ImageSource, bitrate: string, log: Logger): Promise<Readable | undefined>;
  /** MP4 (H.264/AAC, fragmented so it can stream) at `bitrate`, or undefined when ffmpeg is missing. */
  video(source: ImageSource, bitrate: string, log: Logger): Promise<Readable | undefined>;
  /** Duration in milliseconds (ffprobe), or undefined. */
  durationMs(source: ImageSource): Promise<number | undefined>;
}

/** Looks for ffmpeg once; logs once when it is missing. */
export async function createTranscoder(log: Logger): Promise<Transcoder> {
  const available = await runs('ffmpeg', ['-version']);
  const probe = available && (await runs('ffprobe', ['-version']));
  if (!available) {
    log.warn('ffmpeg is not installed: audio and video are stored as sent, without transcoding');
  }
  const transcode = async (source: ImageSource, args: string[]) => {
    if (!available) return undefined;
    const input = await source();
    // A plaintext file is given by path (ffmpeg can seek it: MP4 with its index at the end); streams go by stdin.
    const inputArg = typeof input === 'string' ? input : 'pipe:0';
    const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', inputArg, ...args, 'pipe:1'], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    if (typeof input === 'string') child.stdin.end();
    else feed(input, child.stdin);
    child.on('error', (error) => child.stdout.destroy(error));
    child.on('exit', (code) => {
      if (code !== 0) child.stdout.destroy(new Error(`ffmpeg exited with ${code}`));
    });
    return child.stdout;
  };
  return {
    available,
    audio: (source, bitrate) => transcode(source, ['-vn', '-c:a', 'libopus', '-b:a', bitrate, '-f', 'ogg']),
    video: (source, bitrate) =>
      transcode(source, [
        '-c:v',
        'libx264',
        '-preset',
        'veryfast',
        '-b:v',
        bitrate,
        '-c:a',
        'aac',
        '-movflags',
        'frag_keyframe+empty_moov',
        '-f',
        'mp4',
      ]),
    async durationMs(source) {
      if (!probe) return undefined;
      const fromHeader = Number.parseFloat(
        await ffprobe(await source(), ['-show_entries', 'format=duration']),
      );
      if (Number.isFinite(fromHeader)) return Math.round(fromHeader * 1000);
      // Streams read from a pipe (encrypted media) have no known length: take the end of the last packet.
      const packets = await ffprobe(await source(), [
        '-select_streams',
        '0',
        '-show_entries',
        'packet=pts_time,duration_time',
      ]);
      let end = Number.NaN;
      for (const line of packets.split('\n')) {
        const [pts, duration] = line.split(',').map(Number.parseFloat);
        if (Number.isFinite(pts))
          end = Math.max(Number.isFinite(end) ? end : 0, pts! + (Number.isFinite(duration) ? duration! : 0));
      }
      return Number.isFinite(end) ? Math.round(end * 1000) : undefined;
    },
  };
}

/** ffprobe's answer as plain values (one per line, fields comma-separated). */
async function ffprobe(input: string | Readable, args: string[]): Promise<string> {
  const child = spawn(
    'ffprobe',
    ['-v', 'error', ...args, '-of', 'csv=p=0', '-i', typeof input === 'string' ? input : 'pipe:0'],
    { stdio: ['pipe', 'pipe', 'ignore'] },
  );
  if (typeof input === 'string') child.stdin.end();
  else feed(input, child.stdin);
  let out = '';
  for await (const chunk of child.stdout) out += chunk;
  return out.trim();
}

function feed(input: string | Readable, stdin: Writable): void {
  const stream = typeof input === 'string' ? createReadStream(input) : input;
  // ffmpeg may stop reading early (it has what it needs): that is not an error.
  stdin.on('error', () => stream.destroy());
  stream.pipe(stdin);
}

function runs(command: string, args: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('exit', (code) => resolve(code === 0));
  });
}
