/**
 * Writes the OpenAPI document of the route table to spec/openapi.json (or the
 * path given as the first argument):
 *   node --import tsx server/openapi/write.ts [output.json]
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { allRoutes } from '../routes/index.js';
import { buildOpenApiDocument } from './document.js';

const defaultOutput = fileURLToPath(new URL('../../spec/openapi.json', import.meta.url));
const output = path.resolve(process.argv[2] ?? defaultOutput);
writeFileSync(output, `${JSON.stringify(buildOpenApiDocument(allRoutes), null, 2)}\n`);
process.stdout.write(`Wrote ${output}\n`);
