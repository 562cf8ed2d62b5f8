// The tag stage: give the loaded image every reference it will be pushed as.
import { run } from '../exec.js'

export interface TagOptions {
  /** The image as docker knows it: a loaded `name:tag` or an image ID. */
  source: string
  refs: string[]
}

export async function tagImage(options: TagOptions): Promise<void> {
  for (const ref of options.refs) {
    if (ref !== options.source) await run('docker', ['tag', options.source, ref])
  }
}
