/** config.sample.yaml is generated from the schema; `npm run config:sample` rewrites it, a test checks it is current. */
import { configForNewServer, renderConfigYaml } from './generate.js';

export function renderSampleConfig(): string {
  const config = configForNewServer({
    serverName: 'example.org',
    dataDir: '/var/lib/myelin',
    port: 8008,
    publicBaseUrl: 'https://matrix.example.org/',
  });
  return renderConfigYaml(
    config,
    [
      'Myelin sample configuration: every option, with its description and default.',
      'Generate your own with: myelin generate-config --server-name NAME --data-dir DIR',
      '',
      'Relative paths resolve against the working directory. Any option can be set from the',
      'environment: MYELIN_<KEY>, with __ between nested keys and list indexes, e.g.',
      'MYELIN_SERVER_NAME=example.org, MYELIN_LISTENERS__0__PORT=8448,',
      'MYELIN_DATABASE__BACKEND=postgres. Values are read as YAML (numbers, true/false, [a, b]).',
    ].join('\n'),
  );
}
