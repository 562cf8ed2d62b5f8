// Types for run-action.mjs: run the bundled action as the GitHub runner does.
import type { Machine } from './runner-machine.d.mts'

export interface RunOptions {
  /** Action inputs by name as in action.yml, e.g. { flake: './examples/hello', tags: 'v1,latest' }. */
  inputs: Record<string, string>
  /** GITHUB_WORKSPACE and the steps' working directory; default process.cwd(). */
  cwd?: string
  /** Extra environment (DOCKER_HOST, NIX_CONFIG, ...); overrides the runner's defaults. */
  env?: Record<string, string>
  /** Directory holding main/index.js and post/index.js; default <repo>/dist. Input defaults
   * come from the action.yml beside it, when there is one. */
  distDir?: string
  /** Run the post step after main (whatever main's exit code, as post-if: always()); default true. */
  runPost?: boolean
  /** Command names (e.g. ['nix', 'docker', 'skopeo']) whose every run is recorded in `commands`. */
  watch?: string[]
  /** Per step; a step that runs longer is killed (with its children) and runAction rejects. */
  timeoutMs?: number
  /** Echo the steps' output to this process's stdout/stderr as it comes (the CLI does); default false. */
  stream?: boolean
  /** Called with every line a step writes to stdout, as it comes (a test can react to the log). */
  onLine?: (line: string) => void
  /** Run the steps inside this simulated runner machine, as its user (runner-machine.mjs);
   * default: this process, as this process's user. */
  machine?: Machine
}

export interface StepResult {
  exitCode: number
  /** Everything the step wrote, unmasked (`::add-mask::` lines included). */
  stdout: string
  stderr: string
}

export interface RunResult {
  main: StepResult
  post: StepResult | null
  /** Parsed from main's GITHUB_OUTPUT. */
  outputs: Record<string, string>
  /** Parsed from main's GITHUB_STATE; post got each as STATE_<name>. */
  state: Record<string, string>
  /** main's GITHUB_STEP_SUMMARY followed by post's. */
  summary: string
  /** The text main wrote to GITHUB_ENV. */
  envFile: string
  /** The text main wrote to GITHUB_PATH. */
  pathFile: string
  /** envFile parsed: the variables post got. */
  env: Record<string, string>
  /** pathFile parsed, in the order written; post's PATH has them prepended, last first. */
  paths: string[]
  /** argv of every run of a watched command (main and post), in order; argv[0] is the name. */
  commands: string[][]
  /** Values registered with `::add-mask::` (main, then post). */
  masks: string[]
  /** The run's temp dir (RUNNER_TEMP, RUNNER_TOOL_CACHE, command files); the caller removes it. */
  tempDir: string
}

export function runAction(o: RunOptions): Promise<RunResult>

/** INPUT_<name upper-cased, spaces to underscores>, as @actions/core's getInput reads it. */
export function inputVariableName(name: string): string

/** GITHUB_OUTPUT/STATE/ENV text (`name<<DELIMITER` heredocs and `name=value` lines). */
export function parseKeyValueText(text: string, label?: string): Record<string, string>

/** action.yml's inputs: name -> default (undefined when it has none). */
export function parseActionInputs(text: string): Map<string, string | undefined>

/** The Node that runs the bundles: NCA_ACTION_NODE when set, else process.execPath. */
export function actionNode(): string
