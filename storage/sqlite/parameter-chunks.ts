/** SQLite limits the parameters bound to one statement; long ID lists are queried in slices. */
export function* parameterChunks<T>(items: readonly T[], size = 500): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
