// The post step's entry point (bundled to dist/post/index.js); see ./main.ts.
import { run } from '../post.js'

void run()
