// Whether a script module was run as `node <script>` rather than imported.
import fs from 'node:fs'
import process from 'node:process'
import { fileURLToPath } from 'node:url'

/** Call with the module's own `import.meta.url`. Symlinked paths count as the same file. */
export function isMain(moduleUrl) {
  if (!process.argv[1]) return false
  try {
    return fs.realpathSync(process.argv[1]) === fs.realpathSync(fileURLToPath(moduleUrl))
  } catch {
    return false
  }
}
