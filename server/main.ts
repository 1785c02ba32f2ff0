/** Process entry point: `node dist/server/main.js start` after `npm run build` (bin/myelin.mjs runs the sources). */
import { main } from './cli.js';

process.exitCode = await main(process.argv.slice(2));
