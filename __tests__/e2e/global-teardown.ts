// jest globalTeardown for the e2e project: stops the services global-setup.ts started
// (not ones it reused). NCA_KEEP_SERVICES=1 leaves them running to look at afterwards.
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { asRoot } from '../../scripts/runner-machine.mjs'

const servicesScript = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../scripts/services.sh'
)

function teardown(): void {
  const dir = process.env.NCA_SERVICES_DIR
  if (!dir || process.env.NCA_SERVICES_OWNED !== '1') return
  if (process.env.NCA_KEEP_SERVICES === '1') {
    console.log(
      `e2e teardown: services kept running in ${dir} (stop: scripts/services.sh stop ${dir})`
    )
    return
  }
  const [command = '', ...args] = asRoot([servicesScript, 'stop', dir])
  execFileSync(command, args, { stdio: 'inherit' })
}

export default function globalTeardown(): Promise<void> {
  return Promise.resolve().then(teardown)
}
