// Nix's SQLite database, written directly for one thing only: the signatures of paths the
// store cache's fast path has just registered. `nix-store --load-db` takes no signatures, and
// `nix store copy-sigs` reads a narinfo and commits a transaction per path (1.2-2 s at 2,000
// paths, measured); the same column written here in one transaction takes milliseconds. The
// column is the one Nix's own addSignatures updates (ValidPaths.sigs, signatures separated by
// spaces, there since Nix 2.0's schema). Node's built-in SQLite is there from Node 22.5 (the
// action runs on 24); without it the caller falls back to copy-sigs.
import { join } from 'node:path'

interface Statement {
  get(...values: string[]): unknown
  run(...values: string[]): unknown
}
interface Database {
  exec(sql: string): void
  prepare(sql: string): Statement
  close(): void
}
type SqliteModule = {
  DatabaseSync: new (file: string, options?: { timeout?: number }) => Database
}

/** The folder of the local store's database (NIX_STATE_DIR as Nix reads it). */
export function nixDatabaseDir(): string {
  return join(process.env.NIX_STATE_DIR ?? '/nix/var/nix', 'db')
}

/** The database of the store this process may write. */
export function nixDatabaseFile(): string {
  return join(nixDatabaseDir(), 'db.sqlite')
}

async function loadSqlite(): Promise<SqliteModule | null> {
  try {
    // Not bundled (a builtin the bundler's list may not know), and not typed by this
    // project's @types/node: a name in a variable.
    const builtin = 'node:sqlite'
    return (await import(/* webpackIgnore: true */ builtin)) as SqliteModule
  } catch {
    return null
  }
}

/** Each path's signatures once, in order: the recorded ones, then the new ones (pure). */
export function mergeSignatures(recorded: string, added: readonly string[]): string {
  const all = [...recorded.split(' '), ...added].filter(s => s !== '')
  return [...new Set(all)].join(' ')
}

/**
 * Add signatures to valid paths, all in one transaction: every path must be valid, or nothing
 * is written and this throws. Returns false when this Node has no SQLite (nothing written).
 */
export async function addSignaturesToDatabase(
  databaseFile: string,
  signatures: ReadonlyMap<string, readonly string[]>
): Promise<boolean> {
  const sqlite = await loadSqlite()
  if (sqlite === null) return false
  // Nix's own writers retry while the database is busy; so does this, for up to a minute.
  const db = new sqlite.DatabaseSync(databaseFile, { timeout: 60_000 })
  try {
    db.exec('BEGIN IMMEDIATE')
    try {
      const select = db.prepare('SELECT sigs FROM ValidPaths WHERE path = ?')
      const update = db.prepare('UPDATE ValidPaths SET sigs = ? WHERE path = ?')
      for (const [path, added] of signatures) {
        const row = select.get(path) as { sigs: string | null } | undefined
        if (row === undefined) throw new Error(`${path} is not valid in ${databaseFile}`)
        update.run(mergeSignatures(row.sigs ?? '', added), path)
      }
      db.exec('COMMIT')
    } catch (error) {
      db.exec('ROLLBACK')
      throw error
    }
  } finally {
    db.close()
  }
  return true
}
