import { createHash } from 'node:crypto';
import { StorageError } from './errors.js';

/**
 * One schema step. Migrations are append-only: once released, a migration's
 * SQL never changes (its checksum is recorded and compared at every open);
 * fixes go into a new migration with the next version.
 */
export interface Migration {
  /** 1, 2, 3, ... without gaps. */
  readonly version: number;
  readonly name: string;
  /** SQL for the backend the list belongs to; must not open or commit transactions itself. */
  readonly sql: string;
}

export interface AppliedMigration {
  readonly version: number;
  readonly checksum: string;
}

/** What a backend provides so `runMigrations` can drive it. */
export interface MigrationTarget {
  /** Creates the bookkeeping table if needed and lists the migrations recorded in it. */
  appliedMigrations(): Promise<AppliedMigration[]>;
  /**
   * Runs the migration's SQL and records it, atomically: on failure nothing
   * of it remains. Must skip (not fail) if another process recorded it first.
   */
  applyMigration(migration: Migration, checksum: string): Promise<void>;
}

export interface MigrationReport {
  readonly fromVersion: number;
  readonly toVersion: number;
  readonly applied: number[];
}

export function migrationChecksum(migration: Migration): string {
  return createHash('sha256')
    .update(`${migration.version}\n${migration.name}\n${migration.sql}`)
    .digest('hex');
}

export async function runMigrations(
  target: MigrationTarget,
  migrations: readonly Migration[],
): Promise<MigrationReport> {
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new StorageError(
        'SCHEMA_MISMATCH',
        `migration list must be numbered 1..n without gaps; found ${migration.version} at position ${index + 1}`,
      );
    }
  });

  const applied = await target.appliedMigrations();
  const fromVersion = applied.reduce((max, m) => Math.max(max, m.version), 0);
  if (fromVersion > migrations.length) {
    throw new StorageError(
      'SCHEMA_MISMATCH',
      `database schema is at version ${fromVersion}, newer than this release knows (${migrations.length})`,
    );
  }
  for (const record of applied) {
    const known = migrations[record.version - 1];
    if (known && migrationChecksum(known) !== record.checksum) {
      throw new StorageError(
        'SCHEMA_MISMATCH',
        `applied migration ${record.version} (${known.name}) differs from the one in this release; migrations are append-only`,
      );
    }
  }

  const appliedNow: number[] = [];
  for (const migration of migrations.slice(fromVersion)) {
    try {
      await target.applyMigration(migration, migrationChecksum(migration));
    } catch (cause) {
      throw new StorageError(
        'MIGRATION_FAILED',
        `migration ${migration.version} (${migration.name}) failed`,
        {
          cause,
        },
      );
    }
    appliedNow.push(migration.version);
  }
  return { fromVersion, toVersion: migrations.length, applied: appliedNow };
}
