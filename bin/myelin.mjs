#!/usr/bin/env -S node --max-semi-space-size=4
// Runs the TypeScript sources directly (through tsx), so `npx myelin` works in
// a checkout right after `npm install`, with no build step. A 4 MB young
// generation (V8's default grows to 16 MB) keeps an idle server's RSS about
// 20 MB lower; only a flag at launch can set it.
import { register } from 'tsx/esm/api';

register();
await import('../server/main.ts');
