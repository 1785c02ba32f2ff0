import { writeFileSync } from 'node:fs';
import { renderSampleConfig } from './sample.js';

writeFileSync(new URL('../../config.sample.yaml', import.meta.url), renderSampleConfig());
