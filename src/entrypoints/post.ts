// The post step's entry point (bundled to dist/post/index.js); see ./main.ts. A run that left
// post nothing to do is told so without loading the rest (src/post-quick.ts).
import { quickPostMessage } from '../post-quick.js'

const quick = quickPostMessage(process.env)
if (quick !== null) process.stdout.write(`${quick}\n`)
else {
  // A post step only ever warns: not even a bundle that fails to load fails the job.
  void import('../post.js')
    .then(post => post.run())
    .catch((error: unknown) => {
      process.stdout.write(`::warning::post step could not start: ${String(error)}\n`)
    })
}
