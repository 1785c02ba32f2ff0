export { configForNewServer, type GenerateConfigOptions, renderConfigYaml } from './generate.js';
export { applyEnvOverrides, ConfigError, ENV_PREFIX, loadConfigFile, parseConfig } from './load.js';
export { ConfigSchema, type ListenerConfig, type MyelinConfig } from './schema.js';

import { configForNewServer } from './generate.js';
import type { MyelinConfig } from './schema.js';

/** A complete valid config for tests and embedding: loopback listener, given data folder. */
export function defaultConfig(options: {
  server_name: string;
  data_dir: string;
  port?: number;
}): MyelinConfig {
  return configForNewServer({
    serverName: options.server_name,
    dataDir: options.data_dir,
    port: options.port ?? 0,
  });
}
