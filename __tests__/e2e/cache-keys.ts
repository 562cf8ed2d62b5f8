// The store cache's key forms as the e2e tests expect them (docs/store-cache.md).

/** The base entry a commit with this primary key (`…/source-<h>`) saves on a miss. */
export const baseOf = (primaryKey: string | undefined): string =>
  (primaryKey ?? '').replace(/source-([0-9a-f]{16})$/, 'base-$1')
