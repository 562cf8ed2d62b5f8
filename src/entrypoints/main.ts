// The main step's entry point: the file the runner starts (bundled to dist/main/index.js).
// It runs unconditionally, so no path comparison (which symlinks defeat) can skip the step;
// tests import ../main.ts, which has no side effects.
import { run } from '../main.js'

void run()
