/** Process entry point: bin/myelin.mjs imports the compiled dist/server/main.js when it is current (npm run build, run by npm install), else this file through tsx. */
import { main } from './cli.js';

process.exitCode = await main(process.argv.slice(2));
