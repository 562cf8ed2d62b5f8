export const id = 689;
export const ids = [689];
export const modules = {

/***/ 828:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   $e: () => (/* binding */ warning),
/* harmony export */   Gu: () => (/* binding */ getState),
/* harmony export */   Os: () => (/* binding */ group),
/* harmony export */   Pq: () => (/* binding */ setSecret),
/* harmony export */   V4: () => (/* binding */ getInput),
/* harmony export */   fe: () => (/* binding */ appendSummary),
/* harmony export */   lm: () => (/* binding */ notice),
/* harmony export */   pq: () => (/* binding */ info)
/* harmony export */ });
/* unused harmony exports escapeData, keyValueMessage, setOutput, saveState, exportVariable, addPath, debug, error, setFailed, startGroup, endGroup */
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(7598);
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_crypto__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(3024);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__webpack_require__.n(node_fs__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(1455);
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_2___default = /*#__PURE__*/__webpack_require__.n(node_fs_promises__WEBPACK_IMPORTED_MODULE_2__);
/* harmony import */ var node_os__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(8161);
/* harmony import */ var node_os__WEBPACK_IMPORTED_MODULE_3___default = /*#__PURE__*/__webpack_require__.n(node_os__WEBPACK_IMPORTED_MODULE_3__);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(6760);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_4___default = /*#__PURE__*/__webpack_require__.n(node_path__WEBPACK_IMPORTED_MODULE_4__);
// The runner's side of a step, as the action uses it: inputs, outputs, state, the log's
// workflow commands, the job summary. The same functions, names and file formats as
// @actions/core (v3), which this replaces in the action's own code for one reason: importing
// @actions/core evaluates @actions/http-client and undici for its OIDC helper, about 90 ms of
// every step's start (measured on Node 24), which is an eighth of an unchanged re-push. The
// protocol is GitHub's documented one ("Workflow commands for GitHub Actions"); the libraries
// the action loads lazily (@actions/cache, @actions/tool-cache) still use @actions/core.





/** What @actions/core's toCommandValue makes of a value: strings as they are, the rest JSON. */
function commandValue(value) {
    if (value === null || value === undefined)
        return '';
    return typeof value === 'string' ? value : JSON.stringify(value);
}
/** A workflow command's data: what would end the line or start an escape is escaped. */
function escapeData(value) {
    return commandValue(value).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
function issue(command, message = '') {
    process.stdout.write(`::${command}::${escapeData(message)}${node_os__WEBPACK_IMPORTED_MODULE_3__.EOL}`);
}
/** A line appended to one of the runner's files (GITHUB_OUTPUT, GITHUB_STATE, ...). */
function appendToFile(name, text) {
    const file = process.env[`GITHUB_${name}`];
    if (!file)
        throw new Error(`Unable to find environment variable for file command ${name}`);
    if (!existsSync(file))
        throw new Error(`Missing file at path: ${file}`);
    appendFileSync(file, `${text}${EOL}`, { encoding: 'utf8' });
}
/** `name<<delimiter` … `delimiter`, with a delimiter neither the name nor the value holds. */
function keyValueMessage(name, value) {
    const end = `ghadelimiter_${randomUUID()}`;
    const text = commandValue(value);
    if (name.includes(end) || text.includes(end)) {
        throw new Error(`Unexpected input: the name or value contains the delimiter "${end}"`);
    }
    return `${name}<<${end}${EOL}${text}${EOL}${end}`;
}
/** The input's value as the runner passes it (`INPUT_<NAME>`); '' when not given. */
function getInput(name, options = {}) {
    const value = process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '';
    if (options.required && !value)
        throw new Error(`Input required and not supplied: ${name}`);
    return options.trimWhitespace === false ? value : value.trim();
}
function setOutput(name, value) {
    if (process.env.GITHUB_OUTPUT)
        appendToFile('OUTPUT', keyValueMessage(name, value));
    else
        process.stdout.write(`${EOL}::set-output name=${name}::${escapeData(value)}${EOL}`);
}
function saveState(name, value) {
    if (process.env.GITHUB_STATE)
        appendToFile('STATE', keyValueMessage(name, value));
    else
        issue(`save-state name=${name}`, value);
}
function getState(name) {
    return process.env[`STATE_${name}`] ?? '';
}
/** For this step (process.env) and the job's later steps (GITHUB_ENV). */
function exportVariable(name, value) {
    process.env[name] = commandValue(value);
    if (process.env.GITHUB_ENV)
        appendToFile('ENV', keyValueMessage(name, value));
    else
        issue(`set-env name=${name}`, value);
}
/** First on PATH, for this step and the job's later steps (GITHUB_PATH). */
function addPath(path) {
    if (process.env.GITHUB_PATH)
        appendToFile('PATH', path);
    else
        issue('add-path', path);
    process.env.PATH = `${path}${delimiter}${process.env.PATH ?? ''}`;
}
/** The runner masks the value in every later line of the log. */
function setSecret(secret) {
    issue('add-mask', secret);
}
function info(message) {
    process.stdout.write(`${message}${node_os__WEBPACK_IMPORTED_MODULE_3__.EOL}`);
}
function debug(message) {
    issue('debug', message);
}
function annotationText(message) {
    return message instanceof Error ? message.toString() : message;
}
function notice(message) {
    issue('notice', annotationText(message));
}
function warning(message) {
    issue('warning', annotationText(message));
}
function error(message) {
    issue('error', annotationText(message));
}
/** The step fails (exit code 1) with this message as an error annotation. */
function setFailed(message) {
    process.exitCode = 1;
    error(message);
}
function startGroup(name) {
    issue('group', name);
}
function endGroup() {
    issue('endgroup');
}
/** `fn` inside a collapsible group of the log, closed whatever it does. */
async function group(name, fn) {
    startGroup(name);
    try {
        return await fn();
    }
    finally {
        endGroup();
    }
}
/** Markdown appended to the job summary (GITHUB_STEP_SUMMARY); nothing when there is none. */
async function appendSummary(markdown) {
    const file = process.env.GITHUB_STEP_SUMMARY;
    if (!file)
        return;
    await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.appendFile)(file, markdown, { encoding: 'utf8' });
}


/***/ }),

/***/ 3916:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   g: () => (/* binding */ errorMessage)
/* harmony export */ });
/* unused harmony export firstLine */
// What an error says, whatever was thrown.
function errorMessage(error) {
    return error instanceof Error ? error.message : String(error);
}
function firstLine(text) {
    return text.split('\n')[0] ?? '';
}


/***/ }),

/***/ 1689:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

// ESM COMPAT FLAG
__webpack_require__.r(__webpack_exports__);

// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  run: () => (/* binding */ post_run)
});

// EXTERNAL MODULE: ./src/core.ts
var src_core = __webpack_require__(828);
// EXTERNAL MODULE: ./src/state-keys.ts
var state_keys = __webpack_require__(507);
;// CONCATENATED MODULE: ./src/state.ts
// Typed state from main to post: the keys live in one place (as in actions/setup-node).



function saveState(key, value) {
    core.saveState(key, value);
}
function getState(key) {
    const value = src_core/* getState */.Gu(key);
    return value === '' ? null : value;
}

// EXTERNAL MODULE: external "node:fs/promises"
var promises_ = __webpack_require__(1455);
// EXTERNAL MODULE: external "node:crypto"
var external_node_crypto_ = __webpack_require__(7598);
// EXTERNAL MODULE: ./node_modules/@actions/exec/lib/exec.js + 1 modules
var exec = __webpack_require__(1955);
// EXTERNAL MODULE: external "node:child_process"
var external_node_child_process_ = __webpack_require__(1421);
// EXTERNAL MODULE: external "node:string_decoder"
var external_node_string_decoder_ = __webpack_require__(6193);
// EXTERNAL MODULE: ./src/errors.ts
var errors = __webpack_require__(3916);
;// CONCATENATED MODULE: ./src/exec.ts
// The one place that runs programs. Every command is an argument array: no value from a
// workflow ever reaches a shell. Failures carry the command and the tail of its stderr.




const STDERR_TAIL_LINES = 25;
/** coreutils `timeout`'s exit code when it stopped the command. */
const TIMED_OUT = 124;
/** A command that exited non-zero (or could not start). */
class exec_CommandError extends Error {
    command;
    exitCode;
    stderr;
    constructor(command, exitCode, stderr) {
        const tail = exec_tailLines(stderr, STDERR_TAIL_LINES);
        const status = exitCode === null ? 'could not run' : `failed with exit code ${exitCode}`;
        super(`\`${command.join(' ')}\` ${status}${tail ? `:\n${tail}` : ''}`);
        this.command = command;
        this.exitCode = exitCode;
        this.stderr = stderr;
        this.name = 'CommandError';
    }
    /** The last lines of stderr, for one-line error messages. */
    tail(lines = STDERR_TAIL_LINES) {
        return exec_tailLines(this.stderr, lines);
    }
}
function exec_tailLines(text, lines) {
    return text.trimEnd().split('\n').slice(-lines).join('\n').trim();
}
/** Run a command and capture its output; throws CommandError on a non-zero exit. */
async function exec_run(command, args, options = {}) {
    const argv = [command, ...args];
    const limit = options.timeoutSeconds;
    const [program, programArgs] = limit
        ? ['timeout', ['--kill-after=5', String(limit), ...argv]]
        : [command, [...args]];
    let result;
    try {
        result = await exec/* getExecOutput */.H(program, programArgs, {
            input: typeof options.input === 'string' ? Buffer.from(options.input) : options.input,
            env: options.env ? { ...processEnv(), ...options.env } : undefined,
            cwd: options.cwd,
            silent: options.silent ?? false,
            ignoreReturnCode: true,
            listeners: options.onOutput ? interleaved(options.onOutput) : undefined
        });
    }
    catch (error) {
        // @actions/exec throws when the program cannot be found or started.
        throw new exec_CommandError(argv, null, (0,errors/* errorMessage */.g)(error));
    }
    if (result.exitCode !== 0 && !options.allowFailure) {
        const stderr = limit && result.exitCode === TIMED_OUT
            ? `${result.stderr}\ntimed out after ${limit} s`
            : result.stderr;
        throw new exec_CommandError(argv, result.exitCode, stderr);
    }
    return result;
}
/** stdout and stderr listeners feeding one callback, multi-byte characters kept whole. */
function interleaved(onOutput) {
    const decoders = { stdout: new external_node_string_decoder_.StringDecoder('utf8'), stderr: new external_node_string_decoder_.StringDecoder('utf8') };
    return {
        stdout: (data) => onOutput(decoders.stdout.write(data)),
        stderr: (data) => onOutput(decoders.stderr.write(data))
    };
}
/** The current environment without undefined values, as @actions/exec wants it. */
function processEnv() {
    const env = {};
    for (const [name, value] of Object.entries(process.env)) {
        if (value !== undefined)
            env[name] = value;
    }
    return env;
}
/**
 * Start a command whose stdout is consumed as a stream (an image stream script, `zstd -dc`).
 * @actions/exec only takes a Buffer on stdin and collects stdout, so streams need spawn.
 */
function exec_spawnProducer(command, args, stdin) {
    const argv = [command, ...args];
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    if (stdin)
        stdin.pipe(child.stdin);
    else
        child.stdin.end();
    let stderr = '';
    child.stderr.on('data', (chunk) => {
        stderr = exec_tailLines(stderr + chunk.toString(), STDERR_TAIL_LINES * 4);
    });
    const done = new Promise((resolve, reject) => {
        child.on('error', error => reject(new exec_CommandError(argv, null, error.message)));
        child.on('close', code => {
            if (code === 0)
                resolve();
            else
                reject(new exec_CommandError(argv, code, stderr));
        });
    });
    return { stdout: child.stdout, done };
}
/**
 * Run a command with a stream on its stdin and capture its output (e.g. `docker load`).
 * The command line is echoed like @actions/exec does, so the log reads the same.
 */
async function runWithStdin(command, args, stdin) {
    const argv = [command, ...args];
    process.stdout.write(`[command]${argv.join(' ')}\n`);
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
        stdout += chunk.toString();
        process.stdout.write(chunk);
    });
    child.stderr.on('data', (chunk) => {
        stderr += chunk.toString();
        process.stderr.write(chunk);
    });
    // The consumer may exit early (bad archive): don't let EPIPE crash the action.
    child.stdin.on('error', () => undefined);
    stdin.pipe(child.stdin);
    const exitCode = await new Promise((resolve, reject) => {
        child.on('error', error => reject(new exec_CommandError(argv, null, error.message)));
        child.on('close', resolve);
    });
    if (exitCode !== 0)
        throw new exec_CommandError(argv, exitCode, stderr);
    return { exitCode, stdout, stderr };
}
/**
 * Wait for every promise, then throw the first failure. Unlike Promise.all, a second failure
 * (a producer that dies of EPIPE after its consumer failed) is never left unhandled.
 */
async function exec_settleAll(promises) {
    const results = await Promise.allSettled(promises);
    for (const result of results) {
        if (result.status === 'rejected')
            throw result.reason;
    }
    return results.map(result => result.value);
}

;// CONCATENATED MODULE: ./src/nix/command.ts
// Running `nix` with the action's own settings, and store paths in batches a command line holds.
// Stages, the store cache and the SBOM all call Nix, so this lives below them: none has to
// import another to get the same flags.

/** The action's own Nix calls enable these without touching the user's nix.conf. */
const NIX_FEATURE_ARGS = ['--extra-experimental-features', 'nix-command flakes'];
/** `nix <args>` with the features the action relies on (flakes, the nix command). */
function command_runNix(args, options) {
    return exec_run('nix', [...NIX_FEATURE_ARGS, ...args], options);
}
// Keeps each command line far below the kernel's argument limit (2 MiB for argv and the
// environment), whatever the closure size: a store path is at most 256 bytes, and even staged
// under a scratch directory 2,000 of them take under 700 KiB. Each command costs a start of
// Nix (~50 ms), so the batches are as large as that allows.
const PATHS_PER_COMMAND = 2000;
/** Store paths (or anything) in groups small enough for one command line each. */
function command_batches(items, size = PATHS_PER_COMMAND) {
    const result = [];
    for (let i = 0; i < items.length; i += size)
        result.push(items.slice(i, i + size));
    return result;
}
/** The Nix system this machine builds for by default (`x86_64-linux`, ...). */
async function command_currentSystem() {
    const { stdout } = await command_runNix(['eval', '--impure', '--raw', '--expr', 'builtins.currentSystem'], {
        silent: true
    });
    return stdout.trim();
}
/** NIX_REMOTE that leaves Nix opening the store itself (unset, `local`, `auto`), not a daemon. */
function command_isLocalStore(nixRemote) {
    return ['', 'local', 'auto'].includes(nixRemote ?? '');
}
/**
 * Whether the store trusts this user (a daemon ignores restricted settings, such as `builders`,
 * from a user it does not trust): `nix store info --json` (2.19+), `nix store ping --json`
 * before it; null when neither says (Nix 2.8 has no --json there).
 */
async function command_storeTrustsUser() {
    for (const command of ['info', 'ping']) {
        const result = await command_runNix(['store', command, '--json'], { silent: true, allowFailure: true });
        if (result.exitCode === 0)
            return parseTrusted(result.stdout);
    }
    return null;
}
/**
 * Whether the store trusts this user, from `nix store info|ping --json` (Nix 2.15 on says
 * `trusted`, as 1/0 or true/false); null when Nix does not say (older Nix, or not a daemon).
 */
function parseTrusted(stdout) {
    try {
        const json = JSON.parse(stdout);
        if (json.trusted === 1 || json.trusted === true)
            return true;
        if (json.trusted === 0 || json.trusted === false)
            return false;
    }
    catch {
        // Nix before --json: nothing said.
    }
    return null;
}

;// CONCATENATED MODULE: ./src/cache/nix-store.ts
// The Nix side of the store cache: what a flake's key is made of, which paths a build and the
// flake's inputs need, and which of them the store lacks.


/** Parse `nix flake metadata --json` (pure). */
function parseFlakeMetadata(stdout) {
    const json = JSON.parse(stdout);
    const sourceHash = json.locked?.narHash ?? json.path;
    if (!sourceHash)
        throw new Error('nix flake metadata named neither a narHash nor a path');
    const nodes = Object.keys(json.locks?.nodes ?? {});
    const hasInputs = nodes.some(node => node !== 'root');
    return { sourceHash, lock: hasInputs ? JSON.stringify(json.locks) : null };
}
async function nix_store_flakeMetadata(flake) {
    const { stdout } = await runNix(['flake', 'metadata', '--json', flake], { silent: true });
    return parseFlakeMetadata(stdout);
}
function nix_store_isDerivation(storePath) {
    return storePath.endsWith('.drv');
}
function nix_store_lines(text) {
    return text
        .split('\n')
        .map(line => line.trim())
        .filter(line => line !== '');
}
/**
 * What building the image needed: the derivation's requisites with their (valid) outputs, the
 * output included. Without a derivation, the output's runtime closure.
 */
async function buildClosure(drvPath, storePath) {
    const args = drvPath ? ['-qR', '--include-outputs', drvPath] : ['-qR', storePath];
    const { stdout } = await exec_run('nix-store', args, { silent: true });
    return [...new Set([...nix_store_lines(stdout), storePath])].sort();
}
/**
 * The store paths of a flake's inputs, however deep, from `nix flake archive --json --dry-run`
 * (pure). The flake's own source is left out: it is the checkout, copied into the store anew
 * by every evaluation of it.
 */
function parseFlakeArchive(stdout) {
    const found = new Set();
    const visit = (node) => {
        for (const input of Object.values(node.inputs ?? {})) {
            if (input.path)
                found.add(input.path);
            visit(input);
        }
    };
    visit(JSON.parse(stdout));
    return [...found].sort();
}
/**
 * The sources of the flake's locked inputs. `--dry-run` computes their store paths from the
 * lock file instead of fetching them (after a build they are in the store anyway).
 */
async function flakeInputPaths(flake) {
    const { stdout } = await command_runNix(['flake', 'archive', '--json', '--dry-run', flake], {
        silent: true
    });
    return parseFlakeArchive(stdout);
}
/** The paths that are not valid in the local store. */
async function nix_store_invalidPaths(paths) {
    const invalid = [];
    for (const batch of command_batches(paths)) {
        const { stdout } = await exec_run('nix-store', ['--check-validity', '--print-invalid', ...batch], {
            silent: true
        });
        invalid.push(...nix_store_lines(stdout));
    }
    return invalid;
}
/** Delete paths that nothing else keeps alive (never forced). */
async function nix_store_deletePaths(paths) {
    if (paths.length === 0)
        return;
    await run('nix-store', ['--delete', ...paths], { silent: true });
}

;// CONCATENATED MODULE: ./src/cache/keys.ts
// The store cache's keys: which entries a run restores, and under which key post saves.
//
// Entries are layered by how often things change. A base holds a whole closure and is keyed by
// the lock (what flake.lock pins changes rarely); a delta holds only what a commit's closure
// adds to a base and names that base in its key, so the restore knows which base to download
// with it:
//   <system>/<attribute>/lock-<h>/base-<source h>                    a base (a whole closure)
//   <system>/<attribute>/lock-<h>/source-<h>/on-base-<source h>      a delta on that base
// The primary key (`lock-<h>/source-<h>`, the `cache-key` output) names the commit; an entry
// saved by it is its delta or its base.



const KEY_PREFIX = 'nix-container-store';
function shortHash(text) {
    return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
const HASH = '[0-9a-f]{16}';
const BASE_KEY = new RegExp(`^(.*/lock-(?:none|${HASH})/)base-${HASH}$`);
const DELTA_KEY = new RegExp(`^(.*/lock-(?:none|${HASH})/)source-${HASH}/on-base-(${HASH})$`);
/** The base an entry of this lock prefix and source hash would be saved as. */
function baseKey(lockPrefix, sourceHash) {
    return `${lockPrefix}base-${sourceHash}`;
}
/** Read an entry's key: a base, a delta (and the base it needs), or a whole entry. */
function keys_parseEntryKey(key) {
    const delta = DELTA_KEY.exec(key);
    if (delta?.[1] && delta[2]) {
        return { kind: 'delta', key, lock: delta[1], base: baseKey(delta[1], delta[2]) };
    }
    const base = BASE_KEY.exec(key);
    if (base?.[1])
        return { kind: 'base', key, lock: base[1] };
    return { kind: 'whole', key };
}
/** The key of a delta of this commit on `base`. */
function deltaKey(keys, base) {
    const parsed = keys_parseEntryKey(base);
    if (keys.layers === null || parsed.kind !== 'base' || !isSameLock(keys, base)) {
        throw new Error(`no delta on ${base}: not a base of this lock, or cache-key is set`);
    }
    return `${keys.layers.deltaPrefix}on-${base.slice(parsed.lock.length)}`;
}
/** The entry was saved under this commit's lock (a delta may only build on such a base). */
function isSameLock(keys, key) {
    const entry = keys_parseEntryKey(key);
    return entry.kind !== 'whole' && entry.lock === keys.layers?.lock;
}
/** The restored entry is this commit's own: its delta, its base, or the primary key. */
function keys_isExactHit(keys, restoredKey) {
    if (restoredKey === keys.primary)
        return true;
    if (keys.layers === null)
        return false;
    return restoredKey === keys.layers.base || restoredKey.startsWith(keys.layers.deltaPrefix);
}
/**
 * `nix-container-store/<system>/<attribute>/lock-<hash>/source-<hash>`. The attribute is
 * URI-encoded and every part ends in `/`, so `container` never prefix-matches `container-zstd`
 * and no key holds a comma (which the cache service refuses).
 */
function cacheKeys(facts) {
    const scope = `${KEY_PREFIX}/${facts.system}/${encodeURIComponent(facts.attribute)}/`;
    const lock = `${scope}lock-${facts.metadata.lock === null ? 'none' : shortHash(facts.metadata.lock)}/`;
    const source = shortHash(facts.metadata.sourceHash);
    if (facts.override !== null) {
        return { primary: facts.override, restore: [lock, scope], layers: null, scope };
    }
    const primary = `${lock}source-${source}`;
    const layers = { lock, base: baseKey(lock, source), deltaPrefix: `${primary}/` };
    return { primary, restore: [layers.deltaPrefix, layers.base, lock, scope], layers, scope };
}
/** The keys of this run: the system and the flake's lock and source asked of Nix. */
async function keys_computeKeys(source) {
    const [system, metadata] = await Promise.all([
        source.system ?? currentSystem(),
        flakeMetadata(source.flake)
    ]);
    return cacheKeys({ system, attribute: source.attribute, metadata, override: source.cacheKey });
}

;// CONCATENATED MODULE: ./src/cache/github-caches.ts
// GitHub's REST API for a repository's Actions caches: list the entries of a key prefix on a ref,
// delete those of one key on one ref. @actions/cache can only restore and save, so the entries a
// newer save superseded would otherwise stay until GitHub evicts them, crowding the repository's
// cache quota. Endpoints and status codes (API version 2022-11-28):
// https://docs.github.com/en/rest/actions/cache
// Both document 200 only; the 404 of a delete that matched nothing is what GitHub answers (and
// what `gh cache delete` reads as "no such cache"), every other status is an error here.
/** How long one request may take before it is abandoned (milliseconds). */
const REQUEST_TIMEOUT_MS = 30_000;
/** The largest page the list endpoint serves. */
const PER_PAGE = 100;
class CachesApiError extends Error {
    /** The HTTP status, or 0 when no answer came (network error, timeout). */
    status;
    /** 403: the token may not do this (a job's token without `actions: write`, say). */
    forbidden;
    constructor(status, message) {
        super(message);
        this.name = 'CachesApiError';
        this.status = status;
        this.forbidden = status === 403;
    }
}
/**
 * The API to talk to from the runner's environment, and the token; or why not, naming what is
 * missing. The runner sets GITHUB_API_URL (GitHub Enterprise Server has its own) and
 * GITHUB_REPOSITORY; the token is the action's github-token input.
 */
function cachesApiFrom(env, token) {
    if (!token)
        return { missing: 'no github-token' };
    const repository = env.GITHUB_REPOSITORY;
    if (!repository)
        return { missing: 'GITHUB_REPOSITORY is not set' };
    if (!/^[^/\s]+\/[^/\s]+$/.test(repository)) {
        return { missing: `GITHUB_REPOSITORY is not owner/name: ${repository}` };
    }
    const apiUrl = (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, '');
    return { apiUrl, repository, token };
}
/**
 * Every committed entry whose key starts with `keyPrefix` on `ref`, page after page. Oldest
 * first: new entries then land on later pages, so a save while paging shifts nothing already
 * read (the default order, last access, changes with every restore).
 */
async function listCaches(api, filter, timeoutMs = REQUEST_TIMEOUT_MS) {
    const records = new Map();
    for (let page = 1;; page++) {
        const query = {
            key: filter.keyPrefix,
            ref: filter.ref,
            sort: 'created_at',
            direction: 'asc',
            per_page: String(PER_PAGE),
            page: String(page)
        };
        const { body } = await call(api, 'GET', query, [200], timeoutMs);
        const list = cacheList(body, `GET ${cachesPath(api, query)}`);
        for (const record of list.records)
            records.set(record.id, record);
        // A short page is the last; total_count stops a server whose last page is exactly full.
        if (list.records.length < PER_PAGE || page * PER_PAGE >= list.totalCount)
            break;
    }
    return [...records.values()];
}
/**
 * Delete the entries of `key` on `ref`: how many went (0 when none matched). The docs promise a
 * complete key, but github.com has been seen deleting the entries the key is a prefix of
 * (cli/cli#10624): a caller keeping `k-1` should not delete a key `k`. A 404 also answers a
 * repository the token cannot see; listCaches, which says so, comes first.
 */
async function deleteCachesByKey(api, entry, timeoutMs = REQUEST_TIMEOUT_MS) {
    const query = { key: entry.key, ref: entry.ref };
    const { status, body } = await call(api, 'DELETE', query, [200, 404], timeoutMs);
    if (status === 404)
        return 0;
    return cacheList(body, `DELETE ${cachesPath(api, query)}`).records.length;
}
/** The path (and query) of the repository's caches: what an error names, never the token. */
function cachesPath(api, query) {
    const [owner = '', repo = ''] = api.repository.split('/');
    const path = `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/actions/caches`;
    return `${path}?${new URLSearchParams(query).toString()}`;
}
/**
 * One request; its status (one of `expected`) and JSON body (null if none). Any other status,
 * no answer in time, or no answer at all throws a CachesApiError naming the method, the path
 * and GitHub's message.
 */
async function call(api, method, query, expected, timeoutMs) {
    const path = cachesPath(api, query);
    const what = `GitHub API ${method} ${path}`;
    let response;
    let text;
    try {
        response = await fetch(`${api.apiUrl}${path}`, {
            method,
            headers: {
                Accept: 'application/vnd.github+json',
                Authorization: `Bearer ${api.token}`,
                'X-GitHub-Api-Version': '2022-11-28',
                'User-Agent': 'nix-container-action'
            },
            signal: AbortSignal.timeout(timeoutMs)
        });
        text = await response.text();
    }
    catch (error) {
        throw apiError(api, 0, `${what}: no answer (${failure(error, timeoutMs)})`);
    }
    const body = parseJson(text);
    if (!expected.includes(response.status)) {
        const hint = response.status === 403 ? forbiddenHint(method) : '';
        const message = githubMessage(body) ?? (text.trim().slice(0, 200) || response.statusText);
        throw apiError(api, response.status, `${what}: ${response.status} ${message}${hint}`);
    }
    return { status: response.status, body };
}
/** The permission a job's token lacks when GitHub answers 403. */
function forbiddenHint(method) {
    const permission = method === 'GET' ? 'actions: read' : 'actions: write';
    return ` (the token may not do this: a job's GITHUB_TOKEN needs \`permissions: ${permission}\`)`;
}
/**
 * Why fetch threw: the timeout by name, else the cause undici hides behind "fetch failed".
 * Duck-typed: the abort's DOMException need not be an Error of this realm.
 */
function failure(error, timeoutMs) {
    const { name, message, cause } = isObject(error) ? error : {};
    if (name === 'TimeoutError')
        return `no response within ${timeoutMs / 1000} s`;
    if (isObject(cause) && typeof cause.message === 'string')
        return cause.message;
    return typeof message === 'string' ? message : String(error);
}
/** The error, with the token cut out should anything (a proxy, an echo) have repeated it. */
function apiError(api, status, message) {
    return new CachesApiError(status, api.token ? message.split(api.token).join('***') : message);
}
function parseJson(text) {
    try {
        return text ? JSON.parse(text) : null;
    }
    catch {
        return null;
    }
}
/** GitHub's error bodies are `{ message, documentation_url }`. */
function githubMessage(body) {
    const message = isObject(body) ? body.message : undefined;
    return typeof message === 'string' && message ? message : undefined;
}
function isObject(value) {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
}
/** `{ total_count, actions_caches: [...] }`, checked: a body of another shape is an error. */
function cacheList(body, what) {
    const caches = isObject(body) ? body.actions_caches : undefined;
    const totalCount = isObject(body) ? body.total_count : undefined;
    if (!Array.isArray(caches) || typeof totalCount !== 'number') {
        throw new CachesApiError(200, `GitHub API ${what}: not a list of caches`);
    }
    return { totalCount, records: caches.map(cache => cacheRecord(cache, what)) };
}
function cacheRecord(cache, what) {
    if (!isObject(cache) || typeof cache.id !== 'number' || typeof cache.key !== 'string') {
        throw new CachesApiError(200, `GitHub API ${what}: a cache without an id or a key`);
    }
    const text = (value) => (typeof value === 'string' ? value : '');
    return {
        id: cache.id,
        key: cache.key,
        ref: text(cache.ref),
        version: text(cache.version),
        createdAt: text(cache.created_at),
        lastAccessedAt: text(cache.last_accessed_at),
        sizeInBytes: typeof cache.size_in_bytes === 'number' ? cache.size_in_bytes : 0
    };
}

;// CONCATENATED MODULE: ./src/cache/prune.ts
// Deleting the entries a save superseded, through GitHub's REST API, so that a lock and branch
// keep one base and one delta however many commits go by. Only this ref's entries of the same
// lock, saved before this job began (a job running beside this one keeps what it saved).


/**
 * The listed entries the save superseded (pure). Never a key that a kept key starts with:
 * github.com has been seen deleting by prefix (cli/cli#10624).
 */
function supersededEntries(records, scope) {
    return records.filter(r => r.ref === scope.ref &&
        r.key.startsWith(scope.lockPrefix) &&
        !scope.keep.some(kept => kept.startsWith(r.key)) &&
        Date.parse(r.createdAt) < scope.startedAt.getTime());
}
const PERMISSION = 'give the job `permissions: actions: write` to let the action delete the entries it superseded';
/** Delete the superseded entries; never throws: what could not be done is a notice. */
async function pruneSuperseded(scope, env, token) {
    const api = cachesApiFrom(env, token);
    if ('missing' in api) {
        return {
            deleted: [],
            notice: null,
            skipped: `superseded entries not looked for: ${api.missing}`
        };
    }
    const deleted = [];
    try {
        const records = await listCaches(api, { keyPrefix: scope.lockPrefix, ref: scope.ref });
        const keys = [...new Set(supersededEntries(records, scope).map(r => r.key))];
        for (const key of keys) {
            if ((await deleteCachesByKey(api, { key, ref: scope.ref })) > 0)
                deleted.push(key);
        }
        return { deleted, notice: null, skipped: null };
    }
    catch (error) {
        const why = error instanceof CachesApiError && error.forbidden
            ? `the token may not (${PERMISSION})`
            : (0,errors/* errorMessage */.g)(error);
        const done = deleted.length > 0 ? ` after deleting ${deleted.length}` : '';
        return {
            deleted,
            notice: `superseded entries were not all deleted${done}: ${why}`,
            skipped: null
        };
    }
}

// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(3024);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(6760);
;// CONCATENATED MODULE: ./src/tree.ts
// Moving and removing directory trees that may be read-only, as store paths are. Root skips
// these permission checks; the unprivileged `runner` user on GitHub's runners does not.



const OWNER_WRITE = 0o200;
/**
 * rename(2) a file or directory to another parent. Linux needs write permission on a directory
 * to move it to another parent (its `..` entry changes), which a read-only store path's owner
 * lacks: the directory is made writable for the move only, then given its mode back, so the
 * path ends as read-only as Nix would have it. Synchronous system calls: a restore moves
 * thousands of paths in a row, and the thread pool's round trip costs more than each call.
 */
function tree_moveTree(from, to) {
    const { mode } = lstatSync(from);
    const readOnlyDir = (mode & 0o170000) === 0o040000 && (mode & OWNER_WRITE) === 0;
    if (!readOnlyDir)
        return renameSync(from, to);
    // Not our directory (chmod refused): the rename says whether we may move it anyway (root).
    let opened = true;
    try {
        chmodSync(from, (mode | OWNER_WRITE) & 0o7777);
    }
    catch {
        opened = false;
    }
    try {
        renameSync(from, to);
    }
    catch (error) {
        if (opened)
            chmodSync(from, mode & 0o7777);
        throw error;
    }
    if (opened)
        chmodSync(to, mode & 0o7777);
}
/**
 * rm -rf for a tree whose directories may be read-only. Only directories are made writable:
 * files may be hard links to the store's own, whose mode must not change.
 */
async function tree_removeTree(dir) {
    const entries = await (0,promises_.readdir)(dir, { withFileTypes: true, recursive: true }).catch(() => null);
    if (entries === null) {
        await (0,promises_.rm)(dir, { force: true });
        return;
    }
    await (0,promises_.chmod)(dir, 0o755).catch(() => undefined);
    for (const entry of entries) {
        if (entry.isDirectory()) {
            await (0,promises_.chmod)((0,external_node_path_.join)(entry.parentPath, entry.name), 0o755).catch(() => undefined);
        }
    }
    await (0,promises_.rm)(dir, { recursive: true, force: true });
}

// EXTERNAL MODULE: external "node:events"
var external_node_events_ = __webpack_require__(8474);
// EXTERNAL MODULE: external "node:zlib"
var external_node_zlib_ = __webpack_require__(8522);
// EXTERNAL MODULE: ./node_modules/tar/dist/esm/index.min.js
var index_min = __webpack_require__(8697);
;// CONCATENATED MODULE: ./src/cache/nar-hash.ts
// NAR hashes of the trees an extraction writes, computed from the bytes as they go by: the
// restore checks each store path against the NAR hash of its registration, and hashing what
// the extraction already holds in hand costs no second pass over the bytes (nor a `nix hash
// path` process per core), while the other core decompresses. A NAR (Nix's archive format) is
// the tree serialised with each directory's entries sorted by name: a tar lists them in the
// order its writer read them, so a directory tree's files are kept (by reference to the chunks
// read) until the tree is whole, then serialised; a tree that is one file is hashed as it
// streams. What cannot be hashed here (a tree over the memory budget, or whose members do not
// come together) gets no hash, and the caller hashes it with Nix.


/** The memory a tree's kept bytes may hold, at most (a bigger tree is hashed by Nix). */
const TREE_BUDGET = (/* unused pure expression or super */ null && (256 * 1024 * 1024));
const PADDING = Buffer.alloc(8);
/** NAR's string: its length (u64, little-endian), its bytes, zeros to a multiple of 8. */
function putString(hash, value) {
    const bytes = typeof value === 'string' ? Buffer.from(value) : value;
    putContentsHeader(hash, bytes.length);
    hash.update(bytes);
    putPadding(hash, bytes.length);
}
function putContentsHeader(hash, length) {
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(length));
    hash.update(size);
}
function putPadding(hash, length) {
    const pad = (8 - (length % 8)) % 8;
    if (pad > 0)
        hash.update(PADDING.subarray(0, pad));
}
function putFileHeader(hash, executable) {
    for (const s of ['(', 'type', 'regular'])
        putString(hash, s);
    if (executable) {
        putString(hash, 'executable');
        putString(hash, '');
    }
    putString(hash, 'contents');
}
/** Serialise a node into the hash, as `nix-store --dump` writes it. */
function putNode(hash, node) {
    switch (node.type) {
        case 'symlink':
            for (const s of ['(', 'type', 'symlink', 'target', node.target, ')'])
                putString(hash, s);
            return;
        case 'regular': {
            const size = node.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
            putFileHeader(hash, node.executable);
            putContentsHeader(hash, size);
            for (const chunk of node.chunks)
                hash.update(chunk);
            putPadding(hash, size);
            putString(hash, ')');
            return;
        }
        case 'link': {
            const bytes = readFileSync(node.path);
            const executable = (statSync(node.path).mode & 0o100) !== 0;
            putNode(hash, { type: 'regular', executable, chunks: [bytes] });
            return;
        }
        case 'directory': {
            for (const s of ['(', 'type', 'directory'])
                putString(hash, s);
            const names = [...node.entries.keys()]
                .map(name => Buffer.from(name))
                .sort((a, b) => Buffer.compare(a, b));
            for (const name of names) {
                putString(hash, 'entry');
                putString(hash, '(');
                putString(hash, 'name');
                putString(hash, name);
                putString(hash, 'node');
                putNode(hash, node.entries.get(name.toString()));
                putString(hash, ')');
            }
            putString(hash, ')');
        }
    }
}
function narHash(node) {
    const hash = createHash('sha256');
    putString(hash, 'nix-archive-1');
    putNode(hash, node);
    return hash.digest('hex');
}
/**
 * The NAR hashes (sha256, base16) of the trees extracted, by root name, each computed once its
 * tree is whole. Members must come tree by tree, each tree's together (as tar writes a
 * directory walk); a tree whose members come apart, or that is bigger than `budget`, gets no
 * hash.
 */
class nar_hash_TreeHashes {
    budget;
    current = null;
    hashes = new Map();
    unhashed = new Set();
    constructor(budget = TREE_BUDGET) {
        this.budget = budget;
    }
    /**
     * A member of the tree `root` at `rel` (its parts below the root; [] for the root itself).
     * For a file, where its bytes go.
     */
    member(root, rel, member) {
        if (this.current?.root !== root)
            this.start(root);
        const current = this.current;
        if (current === null || this.unhashed.has(root))
            return null;
        if (rel.length === 0 && member.kind === 'file') {
            // A tree that is one file: hashed as it streams.
            const hash = createHash('sha256');
            putString(hash, 'nix-archive-1');
            putFileHeader(hash, member.executable);
            putContentsHeader(hash, member.size);
            current.streaming = hash;
            return {
                data: chunk => hash.update(chunk),
                end: () => {
                    putPadding(hash, member.size);
                    putString(hash, ')');
                }
            };
        }
        const node = this.nodeOf(member);
        if (!this.place(current, rel, node)) {
            this.giveUp(root);
            return null;
        }
        if (node.type !== 'regular')
            return null;
        return {
            data: chunk => {
                if (this.current !== current || current.node === null)
                    return;
                // A small piece of a read keeps the whole read's memory: copied, it keeps its own.
                const small = chunk.length * 2 < chunk.buffer.byteLength;
                current.bytes += small ? chunk.length : chunk.buffer.byteLength;
                if (current.bytes > this.budget)
                    this.giveUp(root);
                else
                    node.chunks.push(small ? Buffer.from(chunk) : chunk);
            },
            end: () => undefined
        };
    }
    /** Every tree's hash, the last one's included; the trees that got none are left out. */
    finish() {
        this.end();
        return this.hashes;
    }
    nodeOf(member) {
        switch (member.kind) {
            case 'directory':
                return { type: 'directory', entries: new Map() };
            case 'symlink':
                return { type: 'symlink', target: member.target };
            case 'file':
                return { type: 'regular', executable: member.executable, chunks: [] };
            case 'hardlink':
                return { type: 'link', path: member.path };
        }
    }
    /** Put `node` at `rel` in the current tree (parents made as directories); false: no place. */
    place(current, rel, node) {
        if (rel.length === 0) {
            if (current.node !== null)
                return current.node.type === 'directory' && node.type === 'directory';
            current.node = node;
            return true;
        }
        current.node ??= { type: 'directory', entries: new Map() };
        let dir = current.node;
        for (const part of rel.slice(0, -1)) {
            if (dir.type !== 'directory')
                return false;
            let next = dir.entries.get(part);
            if (next === undefined) {
                next = { type: 'directory', entries: new Map() };
                dir.entries.set(part, next);
            }
            dir = next;
        }
        if (dir.type !== 'directory')
            return false;
        const name = rel[rel.length - 1] ?? '';
        const there = dir.entries.get(name);
        if (there !== undefined)
            return there.type === 'directory' && node.type === 'directory';
        dir.entries.set(name, node);
        return true;
    }
    start(root) {
        this.end();
        if (this.unhashed.has(root))
            return;
        if (this.hashes.has(root)) {
            // Its members came apart: what was hashed is not the whole tree.
            this.giveUp(root);
            return;
        }
        this.current = { root, node: null, streaming: null, bytes: 0 };
    }
    end() {
        const current = this.current;
        this.current = null;
        if (current === null || this.unhashed.has(current.root))
            return;
        if (current.streaming !== null)
            this.hashes.set(current.root, current.streaming.digest('hex'));
        else if (current.node !== null)
            this.hashes.set(current.root, narHash(current.node));
    }
    giveUp(root) {
        this.unhashed.add(root);
        this.hashes.delete(root);
        if (this.current?.root === root)
            this.current = null;
    }
}

;// CONCATENATED MODULE: ./src/cache/extract.ts
// Extracting a store cache archive, which is untrusted input, confined to a folder: nothing is
// written outside it, whatever the archive holds. Every member is checked before anything is
// written for it, against the rules below and the layout the caller expects; the first member
// that breaks one stops the writing: the rest of the archive is only read, to name every member
// that breaks one (RefusedMembers), and the caller discards what was extracted (the whole
// entry). Only regular files, directories, symbolic links and
// hard links are written, each by this process with calls that never follow a symbolic link
// (O_EXCL | O_NOFOLLOW, mkdir, symlink, link), owned by the user that runs the action, with the
// modes Nix gives the store (0444 or 0555 for files, 0555 for directories): no special bits, no
// device, no owner taken from the archive. Refused:
// - a name that is absolute, holds `..`, or an empty or `.` part;
// - a member inside a member that is not a directory (a symbolic link: the classic way out,
//   a symlink to a folder outside followed by a file "through" it);
// - a hard link whose target is not a regular file extracted before it from the same archive;
// - a device, a FIFO, or any other type; setuid, setgid or sticky bits;
// - a second member of the same name (it would replace or write through the first);
// - anything the layout does not have where it stands (which also keeps symbolic links out of
//   everything but the store paths' own trees).







/** A member that may not be extracted. */
class RefusedMember extends Error {
    member;
    why;
    constructor(member, why) {
        super(`${JSON.stringify(member)} is ${why}`);
        this.member = member;
        this.why = why;
        this.name = 'RefusedMember';
    }
}
/** How many refused members an error names. */
const NAMED_AT_MOST = 20;
/** The members of an archive that may not be extracted, each named with why. */
class extract_RefusedMembers extends Error {
    refused;
    constructor(refused) {
        const named = refused.slice(0, NAMED_AT_MOST).map(r => r.message);
        const more = refused.length > NAMED_AT_MOST ? `; and ${refused.length - NAMED_AT_MOST} more` : '';
        super(refused.length === 1
            ? `its member ${named.join('')}`
            : `${refused.length} of its members may not be extracted: ${named.join('; ')}${more}`);
        this.refused = refused;
        this.name = 'RefusedMembers';
    }
}
const KINDS = {
    File: 'file',
    OldFile: 'file',
    ContiguousFile: 'file',
    Directory: 'directory',
    SymbolicLink: 'symlink',
    Link: 'hardlink'
};
const TYPE_NAMES = {
    CharacterDevice: 'a character device',
    BlockDevice: 'a block device',
    FIFO: 'a FIFO'
};
const SPECIAL_BITS = 0o7000;
/** What is wrong with a member's name or a hard link's target, or null. */
function nameProblem(name) {
    if (name.startsWith('/'))
        return 'an absolute name';
    const parts = name.split('/');
    if (parts.includes('..'))
        return 'a name with `..`';
    if (parts.some(part => part === '' || part === '.'))
        return 'a name with an empty or `.` part';
    return null;
}
function fits(kind, place) {
    if (place === 'tree')
        return true;
    return kind === place;
}
/**
 * Check one member against the rules and the layout (pure, but for `written`, which the caller
 * updates once the member is written): its name's parts and its kind, or a RefusedMember.
 * Parents of the member that `written` does not know are checked by the caller on disk.
 */
function checkMember(member, written, layout) {
    // A directory's name ends with a slash in the archive.
    const name = member.type === 'Directory' ? member.path.replace(/\/+$/, '') : member.path;
    const refuse = (why) => new RefusedMember(member.path, why);
    const problem = nameProblem(name);
    if (problem !== null)
        throw refuse(problem);
    const parts = name.split('/');
    const kind = KINDS[member.type];
    if (kind === undefined) {
        throw refuse(TYPE_NAMES[member.type] ?? `of type ${member.type} (not a file, directory or link)`);
    }
    const mode = member.mode ?? 0;
    if ((mode & SPECIAL_BITS) !== 0) {
        throw refuse(`setuid, setgid or sticky (mode ${(mode & 0o7777).toString(8).padStart(4, '0')})`);
    }
    for (let i = parts.length - 1; i > 0; i--) {
        const parent = parts.slice(0, i).join('/');
        const there = written.get(parent);
        if (there === undefined)
            continue;
        if (there !== 'directory' && there !== 'implicit') {
            throw refuse(`inside ${JSON.stringify(parent)}, a ${describeKind(there)}`);
        }
        break; // checked when it was written, with its own parents
    }
    const before = written.get(name);
    if (before !== undefined && !(before === 'implicit' && kind === 'directory')) {
        throw refuse('a second member of that name');
    }
    const place = layout(parts);
    if (place === null)
        throw refuse("not part of the store cache's layout");
    if (!fits(kind, place))
        throw refuse(`a ${describeKind(kind)} where the layout has a ${place}`);
    if (kind === 'hardlink') {
        const target = member.linkpath ?? '';
        const targetProblem = nameProblem(target);
        if (targetProblem !== null) {
            throw refuse(`a hard link to ${JSON.stringify(target)}, ${targetProblem}`);
        }
        if (written.get(target) !== 'file') {
            throw refuse(`a hard link to ${JSON.stringify(target)}, not a file extracted before it from this archive`);
        }
    }
    return { name, parts, kind, place };
}
function describeKind(kind) {
    return kind === 'symlink' ? 'symbolic link' : kind === 'hardlink' ? 'hard link' : kind;
}
// --- the archive's bytes -------------------------------------------------------------------
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
/** As @actions/cache's own extraction (`unzstd --long=30`): a window of up to 1 GiB. */
const ZSTD_WINDOW_LOG_MAX = 30;
const READ_CHUNK = (/* unused pure expression or super */ null && (1 << 16));
function startsWith(head, magic) {
    return head.subarray(0, magic.length).equals(magic);
}
/**
 * The archive as a tar stream: zstd (what @actions/cache writes) decompressed by the `zstd`
 * program through a pipe, which @actions/cache saves zstd only where it is installed (measured
 * faster than Node 24's own zstd here: it decompresses on the other core, and Node 20 has none);
 * gzip (its fallback without zstd) by Node. `done` settles when the decompression has ended
 * (the program's exit status).
 */
function tarStream(archive) {
    const head = Buffer.alloc(4);
    const fd = openSync(archive, 'r');
    try {
        readSync(fd, head, 0, head.length, 0);
    }
    finally {
        closeSync(fd);
    }
    if (startsWith(head, ZSTD_MAGIC)) {
        return spawnProducer('zstd', ['-d', '-c', `--long=${ZSTD_WINDOW_LOG_MAX}`, '--', archive]);
    }
    const source = createReadStream(archive, { highWaterMark: READ_CHUNK });
    if (!startsWith(head, GZIP_MAGIC)) {
        return { stdout: source, done: once(source, 'end').then(() => undefined) };
    }
    const gunzip = createGunzip();
    source.on('error', error => gunzip.destroy(error));
    gunzip.on('close', () => source.destroy());
    source.pipe(gunzip);
    return { stdout: gunzip, done: once(gunzip, 'end').then(() => undefined) };
}
const BLOCK = 512;
/** Extended headers (pax, GNU long names) bigger than this are not a store cache's. */
const META_LIMIT = (/* unused pure expression or super */ null && (1 << 20));
const META_TYPES = new Set([
    'ExtendedHeader',
    'OldExtendedHeader',
    'GlobalExtendedHeader',
    'NextFileHasLongPath',
    'OldGnuLongPath',
    'NextFileHasLongLinkpath'
]);
/**
 * The framing of a tar stream (ustar, pax, GNU long names), fed chunk by chunk: each member's
 * header (decoded by node-tar's Header, pax records by its Pax) goes to `member`, whose sink
 * takes its bytes straight from the chunks (no copy, no stream per member: a store cache holds
 * thousands of small files). The end-of-archive blocks are required: an archive cut short is
 * an error, whether mid-member or between members.
 */
class TarReader {
    member;
    block = Buffer.alloc(BLOCK);
    filled = 0;
    remain = 0;
    padding = 0;
    sink = null;
    meta = null;
    ex;
    gex;
    nullBlocks = 0;
    ended = false;
    constructor(member) {
        this.member = member;
    }
    write(chunk) {
        let at = 0;
        while (at < chunk.length && !this.ended) {
            if (this.remain > 0) {
                const n = Math.min(this.remain, chunk.length - at);
                this.body(chunk.subarray(at, at + n));
                this.remain -= n;
                at += n;
                if (this.remain === 0)
                    this.endMember();
            }
            else if (this.padding > 0) {
                const n = Math.min(this.padding, chunk.length - at);
                this.padding -= n;
                at += n;
            }
            else {
                const n = Math.min(BLOCK - this.filled, chunk.length - at);
                chunk.copy(this.block, this.filled, at, at + n);
                this.filled += n;
                at += n;
                if (this.filled === BLOCK) {
                    this.filled = 0;
                    this.header();
                }
            }
        }
    }
    /** The input has ended: throws when the archive has not. */
    end() {
        if (!this.ended)
            throw new Error('the archive is truncated (it ends before its end-of-archive blocks)');
    }
    header() {
        const header = new Header(this.block, 0, this.ex, this.gex);
        if (header.nullBlock) {
            if (++this.nullBlocks === 2)
                this.ended = true;
            return;
        }
        if (this.nullBlocks > 0)
            throw new Error('the archive has a lone zero block between members');
        if (!header.cksumValid)
            throw new Error('the archive has a header with a bad checksum');
        const size = header.size ?? 0;
        this.remain = size;
        this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
        if (META_TYPES.has(header.type)) {
            if (size > META_LIMIT)
                throw new Error(`the archive has an extended header of ${size} bytes`);
            this.meta = { type: header.type, chunks: [] };
        }
        else {
            // Header puts the ustar fields (a truncated name, a prefix) over the pax ones for the
            // name and the link's target: the pax record is the member's, as in GNU tar.
            const ex = this.ex;
            this.ex = undefined;
            this.sink = this.member({
                path: ex?.path ?? header.path ?? '',
                type: header.type,
                mode: header.mode,
                linkpath: ex?.linkpath ?? header.linkpath,
                mtime: header.mtime,
                size
            });
        }
        if (this.remain === 0)
            this.endMember();
    }
    body(chunk) {
        if (this.meta !== null)
            this.meta.chunks.push(Buffer.from(chunk));
        else
            this.sink?.data(chunk);
    }
    endMember() {
        if (this.meta !== null) {
            const { type, chunks } = this.meta;
            this.meta = null;
            const text = Buffer.concat(chunks).toString('utf8');
            if (type === 'GlobalExtendedHeader')
                this.gex = Pax.parse(text, this.gex, true);
            else if (type === 'ExtendedHeader' || type === 'OldExtendedHeader') {
                this.ex = Pax.parse(text, this.ex, false);
            }
            else {
                const value = text.replace(/\0.*/s, '');
                this.ex = { ...this.ex, [type === 'NextFileHasLongLinkpath' ? 'linkpath' : 'path']: value };
            }
            return;
        }
        const sink = this.sink;
        this.sink = null;
        sink?.end();
    }
}
// --- writing -------------------------------------------------------------------------------
/** The modes Nix gives the store: no write bit, executable or not. */
function fileMode(mode) {
    return (mode & 0o111) !== 0 ? 0o555 : 0o444;
}
/** A store path's directories are 0555 (set once their contents are in); the layout's own stay writable. */
function directoryMode(place) {
    return place === 'tree' ? 0o555 : 0o755;
}
const CREATE_FILE = external_node_fs_.constants.O_WRONLY | external_node_fs_.constants.O_CREAT | external_node_fs_.constants.O_EXCL | external_node_fs_.constants.O_NOFOLLOW;
function writeAll(fd, chunk) {
    for (let at = 0; at < chunk.length;)
        at += writeSync(fd, chunk, at, chunk.length - at);
}
/** The name of the tree a member of a `tree` place belongs to: its shortest `tree` prefix. */
function treeRoot(parts, layout) {
    for (let i = 1; i < parts.length; i++)
        if (layout(parts.slice(0, i)) === 'tree')
            return i;
    return parts.length;
}
/**
 * Extract `archive` (a tar, zstd- or gzip-compressed) into the folder `into`, which this process
 * made: only what the rules and `layout` allow, and nothing at all from the first member they
 * refuse on (RefusedMembers names every one of them). An archive that does not read (truncated,
 * a bad header) is an error too. Either way, what was written stays inside `into`, for the caller to remove.
 */
async function extract_extractConfined(archive, into, layout, { hashTrees = true } = {}) {
    const written = new Map();
    const directories = [];
    let members = 0;
    const trees = new TreeHashes();
    let openFd = null;
    /** Parents the archive did not list (or that an earlier archive made): real directories only. */
    const parentsOf = (parts) => {
        for (let i = 1; i < parts.length; i++) {
            const name = parts.slice(0, i).join('/');
            if (written.has(name))
                continue;
            const place = layout(parts.slice(0, i));
            if (place === null || place === 'file') {
                throw new RefusedMember(parts.join('/'), `inside ${JSON.stringify(name)}, which the layout does not have as a directory`);
            }
            const path = join(into, name);
            const stat = lstatSync(path, { throwIfNoEntry: false });
            if (stat === undefined) {
                mkdirSync(path, 0o700);
                directories.push({ path, mode: directoryMode(place), mtime: undefined });
            }
            else if (!stat.isDirectory()) {
                throw new RefusedMember(parts.join('/'), `inside ${JSON.stringify(name)}, which is not a directory`);
            }
            written.set(name, 'implicit');
        }
    };
    /** Once a member is refused, nothing more is written: the rest is only checked. */
    const refused = [];
    const onMember = (member) => {
        let checked;
        try {
            checked = checkMember(member, written, layout);
            if (refused.length === 0)
                parentsOf(checked.parts);
        }
        catch (error) {
            if (!(error instanceof RefusedMember))
                throw error;
            refused.push(error);
            return null;
        }
        const { name, parts, kind, place } = checked;
        const tree = hashTrees && place === 'tree' ? treeRoot(parts, layout) : null;
        const root = tree === null ? '' : parts.slice(0, tree).join('/');
        const rel = tree === null ? [] : parts.slice(tree);
        if (refused.length > 0) {
            // As if written, so that what comes after it is checked against it.
            for (let i = 1; i < parts.length; i++) {
                const parent = parts.slice(0, i).join('/');
                if (!written.has(parent))
                    written.set(parent, 'implicit');
            }
            written.set(name, kind);
            return null;
        }
        const path = join(into, name);
        const mtime = member.mtime;
        members++;
        switch (kind) {
            case 'directory':
                if (written.get(name) !== 'implicit') {
                    try {
                        mkdirSync(path, 0o700);
                    }
                    catch (error) {
                        // Made by an earlier archive into the same folder: a real directory only.
                        if (error.code !== 'EEXIST')
                            throw error;
                        if (!lstatSync(path).isDirectory())
                            throw error;
                    }
                }
                directories.push({ path, mode: directoryMode(place), mtime });
                written.set(name, 'directory');
                if (tree !== null)
                    trees.member(root, rel, { kind: 'directory' });
                return null;
            case 'symlink': {
                const target = member.linkpath ?? '';
                symlinkSync(target, path);
                if (mtime)
                    lutimesSync(path, mtime, mtime);
                written.set(name, 'symlink');
                if (tree !== null)
                    trees.member(root, rel, { kind: 'symlink', target });
                return null;
            }
            case 'hardlink': {
                const target = join(into, member.linkpath ?? '');
                linkSync(target, path);
                written.set(name, 'hardlink');
                if (tree !== null)
                    trees.member(root, rel, { kind: 'hardlink', path: target });
                return null;
            }
            case 'file': {
                const fd = openSync(path, CREATE_FILE, 0o600);
                openFd = fd;
                written.set(name, 'file');
                const mode = fileMode(member.mode ?? 0);
                const size = member.size ?? 0;
                const hash = tree === null
                    ? null
                    : trees.member(root, rel, { kind: 'file', executable: mode === 0o555, size });
                return {
                    data: chunk => {
                        writeAll(fd, chunk);
                        hash?.data(chunk);
                    },
                    end: () => {
                        hash?.end();
                        if (mtime)
                            futimesSync(fd, mtime, mtime);
                        fchmodSync(fd, mode);
                        openFd = null;
                        closeSync(fd);
                    }
                };
            }
        }
    };
    const reader = new TarReader(onMember);
    const { stdout: stream, done } = tarStream(archive);
    // Awaited below; a rejection while the loop still runs must not go unhandled meanwhile.
    done.catch(() => undefined);
    try {
        for await (const chunk of stream) {
            reader.write(chunk);
            if (reader.ended)
                break;
        }
        reader.end();
        if (!stream.destroyed)
            await done;
    }
    catch (error) {
        // A hostile archive that is also cut short: the members it holds are what to say.
        if (refused.length === 0)
            throw error;
    }
    finally {
        stream.destroy();
        if (openFd !== null)
            closeSync(openFd);
    }
    if (refused.length > 0)
        throw new extract_RefusedMembers(refused);
    // Deepest first, once their contents are in: a store path's directories become read-only.
    for (const { path, mode, mtime } of directories.reverse()) {
        chmodSync(path, mode);
        if (mtime)
            utimesSync(path, mtime, mtime);
    }
    const narHashes = new Map();
    for (const [root, hash] of trees.finish())
        narHashes.set(join(into, root), hash);
    return { members, narHashes };
}

;// CONCATENATED MODULE: ./src/cache/manifest.ts
// The archive's manifest: its layout version and the store paths it holds.


/** Bump when the archive's layout changes, so old entries are never restored. */
const MANIFEST_VERSION = 2;
const manifest_MANIFEST_FILE = 'nix-container-action.json';
const STORE_PATH = /^\/[^\n]*\/[0-9a-z]{32}-[^/\n]+$/;
/** Parse and check a manifest (pure, for tests): an older layout or a non-path is an error. */
function parseManifest(text) {
    const json = JSON.parse(text);
    if (json.version !== MANIFEST_VERSION) {
        throw new Error(`the archive's manifest has version ${String(json.version)}, not ${MANIFEST_VERSION}`);
    }
    const paths = Array.isArray(json.paths) ? json.paths : [];
    const bad = paths.find(p => typeof p !== 'string' || !STORE_PATH.test(p));
    if (bad !== undefined)
        throw new Error(`the archive's manifest lists ${JSON.stringify(bad)}, not a store path`);
    if (json.signatures === undefined)
        return { version: MANIFEST_VERSION, paths };
    return { version: MANIFEST_VERSION, paths, signatures: parseSignatures(json.signatures) };
}
function parseSignatures(value) {
    const ok = typeof value === 'object' &&
        value !== null &&
        !Array.isArray(value) &&
        Object.values(value).every(sigs => Array.isArray(sigs) && sigs.every(sig => typeof sig === 'string'));
    if (!ok)
        throw new Error("the archive's manifest has signatures that are not lists of strings");
    // No prototype: a path named like an Object member must not find one.
    return Object.assign(Object.create(null), value);
}
/** The manifest of the archive in `dir`. */
async function manifest_readManifest(dir) {
    return parseManifest(await readFile(join(dir, manifest_MANIFEST_FILE), 'utf8'));
}
/** Write the manifest of an archive of `paths` into `dir`. */
async function writeManifest(dir, paths, signatures = null) {
    const manifest = { version: MANIFEST_VERSION, paths };
    if (signatures !== null)
        manifest.signatures = signatures;
    await (0,promises_.writeFile)((0,external_node_path_.join)(dir, manifest_MANIFEST_FILE), JSON.stringify(manifest));
}

;// CONCATENATED MODULE: ./src/cache/service.ts
// The GitHub cache service through @actions/cache, for one directory.

/**
 * @actions/cache and its Azure SDK are most of the bundle: loaded only when the cache is used,
 * so that a run with `cache: false` starts as fast as a shell step. The download (download.ts,
 * the client's own modules without its extraction) comes with it.
 */
const loadCacheClient = () => Promise.all(/* import() */[__webpack_require__.e(409), __webpack_require__.e(682)]).then(__webpack_require__.bind(__webpack_require__, 8682));
const loadDownload = () => Promise.all(/* import() */[__webpack_require__.e(409), __webpack_require__.e(728)]).then(__webpack_require__.bind(__webpack_require__, 728));
/**
 * The directory's name is all @actions/cache sees of it: the entry's "version" is a hash of the
 * paths as given, so a name relative to a fixed parent keeps entries restorable on every runner
 * (an absolute path would differ between runners and between RUNNER_TEMPs). Its suffix changes
 * with the archive's layout, so that entries of an older layout are not even found.
 */
const service_CACHE_DIR_NAME = 'nix-container-action-store-v3';
/**
 * The protocol @actions/cache speaks, decided as its config does: v2 (Twirp at
 * ACTIONS_RESULTS_URL, archives in Azure Blob storage) when ACTIONS_CACHE_SERVICE_V2 is set,
 * except on GitHub Enterprise Server, which has only v1 (the REST API at ACTIONS_CACHE_URL).
 */
function cacheServiceVersion(env) {
    const host = new URL(env.GITHUB_SERVER_URL || 'https://github.com').hostname.toLowerCase();
    const ghes = host !== 'github.com' && !host.endsWith('.ghe.com') && !host.endsWith('.localhost');
    return env.ACTIONS_CACHE_SERVICE_V2 && !ghes ? 'v2' : 'v1';
}
/**
 * Why the client has no cache service, naming the variable it lacks; null when it has one.
 * `urlAvailable` is the client's own verdict (isFeatureAvailable), which checks only the URL;
 * without ACTIONS_RUNTIME_TOKEN every call would fail, so that counts as no service too.
 */
function missingCacheService(env, urlAvailable) {
    if (!urlAvailable) {
        if (cacheServiceVersion(env) === 'v2') {
            return 'no cache service: ACTIONS_RESULTS_URL is not set (ACTIONS_CACHE_SERVICE_V2 is, so @actions/cache speaks the v2 protocol)';
        }
        const results = env.ACTIONS_RESULTS_URL
            ? ' (ACTIONS_RESULTS_URL is, but without ACTIONS_CACHE_SERVICE_V2 @actions/cache speaks v1)'
            : '';
        return `no cache service: ACTIONS_CACHE_URL is not set${results}`;
    }
    if (!env.ACTIONS_RUNTIME_TOKEN)
        return 'no cache service: ACTIONS_RUNTIME_TOKEN is not set';
    return null;
}
/**
 * The client's isFeatureAvailable, read from the same variables without loading the client
 * (pure; its unit test compares the two): the service URL of the protocol it speaks is set.
 */
function serviceUrlAvailable(env) {
    return Boolean(cacheServiceVersion(env) === 'v2' ? env.ACTIONS_RESULTS_URL : env.ACTIONS_CACHE_URL);
}
/**
 * Why there is no cache service to use (see missingCacheService), or null. Decided from the
 * environment: a job without a cache service never loads the client (2.4 MB of code, about
 * 0.1 s of every step's CPU).
 */
function service_cacheServiceMissing() {
    return missingCacheService(process.env, serviceUrlAvailable(process.env));
}
/**
 * @actions/cache archives paths relative to GITHUB_WORKSPACE and resolves them from the working
 * directory, so both point at the parent for the duration of the call. Nothing else runs in this
 * process meanwhile.
 */
async function inParent(parent, work) {
    await (0,promises_.mkdir)(parent, { recursive: true });
    const workspace = process.env.GITHUB_WORKSPACE;
    const cwd = process.cwd();
    process.env.GITHUB_WORKSPACE = parent;
    process.chdir(parent);
    try {
        return await work();
    }
    finally {
        process.chdir(cwd);
        if (workspace === undefined)
            delete process.env.GITHUB_WORKSPACE;
        else
            process.env.GITHUB_WORKSPACE = workspace;
    }
}
/** Start loading the cache client now, so that it is ready when the restore begins. */
function service_preloadCacheClient() {
    if (service_cacheServiceMissing() !== null)
        return;
    loadCacheClient().catch(() => undefined);
    loadDownload().catch(() => undefined);
}
/**
 * Download the archive of the entry of `primaryKey`, else of the newest one of each of
 * `restoreKeys` prefixes, to `archivePath`, without extracting it (an entry is untrusted input:
 * extract.ts extracts it): the key found, or null on a miss. A service or download error is a
 * warning (as @actions/cache words it) and a miss.
 */
async function service_downloadFirst(primaryKey, restoreKeys, archivePath) {
    const { downloadArchive } = await loadDownload();
    return downloadArchive([service_CACHE_DIR_NAME], primaryKey, restoreKeys, archivePath);
}
/**
 * Save <parent>/CACHE_DIR_NAME under key. False when the service refused or failed:
 * @actions/cache has logged why (a warning, or a line for a reservation conflict).
 */
async function saveDirectory(parent, key) {
    const cache = await loadCacheClient();
    const id = await inParent(parent, () => cache.saveCache([service_CACHE_DIR_NAME], key));
    return id !== -1;
}

;// CONCATENATED MODULE: ./src/signing/nix-key.ts
// Store paths' signatures as Nix makes them (`secret-key-files`, `nix store sign`) and checks
// them (`trusted-public-keys`): ed25519 over the path's fingerprint
// `1;<path>;sha256:<nix32 NAR hash>;<NAR size>;<references, comma-separated>`, written
// `<key name>:<base64 signature>`. Keys are Nix's: `<name>:<base64 of the 64-byte secret key
// (seed and public key)>` as `nix key generate-secret` prints it, `<name>:<base64 of the 32-byte
// public key>` as `nix key convert-secret-to-public` does.
//
// Errors never carry a secret key or anything decoded from it: only a fixed reason.

const NIX32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';
const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._+@-]*$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const SEED_BYTES = 32;
const SECRET_BYTES = 64;
const PUBLIC_BYTES = 32;
const SIGNATURE_BYTES = 64;
/** Nix's base32 (libutil's printHash32): the last character holds the lowest bits. */
function nix_key_encodeNix32(bytes) {
    const length = Math.ceil((bytes.length * 8) / 5);
    let text = '';
    for (let n = length - 1; n >= 0; n--) {
        const bit = n * 5;
        const i = Math.floor(bit / 8);
        const j = bit % 8;
        const low = (bytes[i] ?? 0) >> j;
        const high = i + 1 < bytes.length ? (bytes[i + 1] ?? 0) << (8 - j) : 0;
        text += NIX32_ALPHABET[(low | high) & 0x1f];
    }
    return text;
}
/** The fingerprint Nix signs (ValidPathInfo::fingerprint). */
function fingerprint(info) {
    const hash = nix_key_encodeNix32(Buffer.from(info.narHash, 'hex'));
    return `1;${info.path};sha256:${hash};${info.narSize};${info.references.join(',')}`;
}
function base64Of(text, bytes) {
    if (!BASE64.test(text))
        return null;
    const decoded = Buffer.from(text, 'base64');
    return decoded.length === bytes ? decoded : null;
}
function splitKey(text) {
    const colon = text.indexOf(':');
    if (colon <= 0)
        return null;
    const name = text.slice(0, colon);
    return KEY_NAME.test(name) ? { name, data: text.slice(colon + 1) } : null;
}
function ed25519Jwk(publicKey, seed) {
    return {
        kty: 'OKP',
        crv: 'Ed25519',
        x: publicKey.toString('base64url'),
        ...(seed ? { d: seed.toString('base64url') } : {})
    };
}
/**
 * A secret key as `nix key generate-secret` prints it. Throws an Error whose message never
 * holds the key; its public half must be what its seed makes.
 */
function nix_key_parseNixSecretKey(text) {
    const fail = (why) => new Error(why);
    const parts = splitKey(text.trim());
    if (parts === null) {
        throw fail('is not a Nix secret key: expected <name>:<base64>, as `nix key generate-secret` prints it');
    }
    const bytes = base64Of(parts.data, SECRET_BYTES);
    if (bytes === null) {
        throw fail(`is not a Nix secret key: the part after "${parts.name}:" is not 64 bytes in base64`);
    }
    const seed = bytes.subarray(0, SEED_BYTES);
    const half = bytes.subarray(SEED_BYTES);
    let privateKey;
    try {
        privateKey = (0,external_node_crypto_.createPrivateKey)({ key: ed25519Jwk(half, seed), format: 'jwk' });
    }
    catch {
        throw fail('is not a Nix secret key: not an ed25519 key');
    }
    const derived = Buffer.from((0,external_node_crypto_.createPublicKey)(privateKey).export({ format: 'jwk' }).x, 'base64url');
    if (!derived.equals(half)) {
        throw fail('is not a Nix secret key: its public half does not match its secret half');
    }
    return { name: parts.name, privateKey, publicKey: `${parts.name}:${half.toString('base64')}` };
}
/** One public key as `nix key convert-secret-to-public` prints it; throws naming what is wrong. */
function nix_key_parseNixPublicKey(text) {
    const parts = splitKey(text);
    const bytes = parts && base64Of(parts.data, PUBLIC_BYTES);
    if (!parts || !bytes) {
        throw new Error(`${JSON.stringify(text)} is not a Nix public key (<name>:<base64 of 32 bytes>, as \`nix key convert-secret-to-public\` prints it)`);
    }
    try {
        return { name: parts.name, key: createPublicKey({ key: ed25519Jwk(bytes), format: 'jwk' }) };
    }
    catch {
        throw new Error(`${JSON.stringify(text)} is not an ed25519 public key`);
    }
}
/** The path's signature as Nix writes it: `<key name>:<base64>`. */
function signPath(key, info) {
    const signature = (0,external_node_crypto_.sign)(null, Buffer.from(fingerprint(info)), key.privateKey);
    return `${key.name}:${signature.toString('base64')}`;
}
/** The names of the keys a signature string claims (for messages); '' when unparseable. */
function nix_key_signatureKeyName(signature) {
    return splitKey(signature)?.name ?? '';
}
/** Each (key, signature bytes) pair worth checking: a well-formed signature by a key's name. */
function candidates(signatures, keys) {
    return signatures.flatMap(text => {
        const parts = splitKey(text);
        const bytes = parts && base64Of(parts.data, SIGNATURE_BYTES);
        if (!parts || !bytes)
            return [];
        return keys.filter(k => k.name === parts.name).map(k => ({ key: k.key, bytes }));
    });
}
/**
 * Whether one of `signatures` is a valid signature of the path by one of `keys`
 * (Nix's checkSignatures with a threshold of one).
 */
function nix_key_verifyPath(info, signatures, keys) {
    const message = Buffer.from(fingerprint(info));
    return candidates(signatures, keys).some(c => verify(null, message, c.key, c.bytes));
}
/** verifyPath, each check in libuv's thread pool: thousands of paths are checked on every core. */
async function nix_key_verifyPathInPool(info, signatures, keys) {
    const message = Buffer.from(fingerprint(info));
    for (const { key, bytes } of candidates(signatures, keys)) {
        const valid = await new Promise((resolve, reject) => {
            verify(null, message, key, bytes, (error, ok) => (error ? reject(error) : resolve(ok)));
        });
        if (valid)
            return true;
    }
    return false;
}
/** The key as `nix key generate-secret` prints it, for a file Nix reads (`secret-key=`). */
function nix_key_formatNixSecretKey(key) {
    const jwk = key.privateKey.export({ format: 'jwk' });
    const seed = Buffer.from(jwk.d ?? '', 'base64url');
    const publicKey = Buffer.from(jwk.x ?? '', 'base64url');
    return `${key.name}:${Buffer.concat([seed, publicKey]).toString('base64')}`;
}

;// CONCATENATED MODULE: ./src/cache/signatures.ts
// The store cache's signatures: a save signs each path it writes with `cache-signing-key`
// (recorded in the manifest, beside the registration); a restore with `cache-trusted-keys`
// takes an entry only when every one of its paths carries a valid signature by one of them;
// the signatures then go into Nix's database with the paths (a narinfo per path, which
// `nix store copy-sigs` reads), so that a daemon with `require-sigs` accepts them.





/** Each path's signature by `key`, by path (pure). */
function signRegistrations(key, registrations) {
    const signatures = {};
    for (const r of registrations)
        signatures[r.path] = [signPath(key, r)];
    return signatures;
}
/** The signatures of `path` a manifest recorded (none when it recorded none). */
function signatures_signaturesOf(signatures, path) {
    const found = signatures && Object.hasOwn(signatures, path) ? signatures[path] : undefined;
    return found ?? [];
}
/**
 * Why the entry may not be restored, naming the first path that is not signed by a trusted key
 * and the key(s) it is signed by; null when every path is (pure).
 */
function untrustedPath(entries, trusted) {
    const names = trusted.map(k => k.name).join(', ');
    for (const entry of entries) {
        if (verifyPath(entry, entry.signatures, trusted))
            continue;
        if (entry.signatures.length === 0) {
            return `${entry.path} is not signed (trusted keys: ${names})`;
        }
        const by = [...new Set(entry.signatures.map(s => signatureKeyName(s) || '(unreadable)'))];
        const claims = by.some(name => trusted.some(k => k.name === name))
            ? 'whose signature does not verify'
            : 'not by a trusted key';
        return `${entry.path} is signed by key ${by.map(n => JSON.stringify(n)).join(', ')}, ${claims} (trusted keys: ${names})`;
    }
    return null;
}
/** untrustedPath, with every path's signatures checked at once on all cores. */
async function signatures_firstUntrustedPath(entries, trusted) {
    const verified = await Promise.all(entries.map(e => verifyPathInPool(e, e.signatures, trusted)));
    const first = verified.indexOf(false);
    return first === -1 ? null : untrustedPath([entries[first]], trusted);
}
/** A narinfo that holds what `nix store copy-sigs` reads of a path: its hash, size, signatures. */
function narinfo(entry) {
    return [
        `StorePath: ${entry.path}`,
        // Never fetched: copy-sigs reads the path's info only.
        `URL: nar/${basename(entry.path)}.nar`,
        'Compression: none',
        `NarHash: sha256:${encodeNix32(Buffer.from(entry.narHash, 'hex'))}`,
        `NarSize: ${entry.narSize}`,
        `References: ${entry.references.map(r => basename(r)).join(' ')}`,
        ...entry.signatures.map(sig => `Sig: ${sig}`),
        ''
    ].join('\n');
}
/**
 * Add the recorded signatures of these (valid) paths to the store's database: a local binary
 * cache of narinfos only under `dir`, from which `nix store copy-sigs` copies them (it checks
 * that each narinfo's NAR hash is the path's). `store`: a store URI, or null for the default.
 */
async function signatures_addSignatures(dir, storeDir, entries, store) {
    const signed = entries.filter(e => e.signatures.length > 0);
    if (signed.length === 0)
        return 0;
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'nix-cache-info'), `StoreDir: ${storeDir}\n`);
    await Promise.all(signed.map(e => writeFile(join(dir, `${basename(e.path).slice(0, 32)}.narinfo`), narinfo(e))));
    const storeArgs = store === null ? [] : ['--store', store];
    const paths = signed.map(e => e.path);
    // A `.drv` stands for its outputs unless `--derivation` is given, and with `--derivation`
    // other paths are left out (Nix 2.8): two calls.
    for (const [group, extra] of [
        [paths.filter(p => !isDerivation(p)), []],
        [paths.filter(isDerivation), ['--derivation']]
    ]) {
        for (const batch of batches(group)) {
            await runNix(['store', 'copy-sigs', ...storeArgs, ...extra, '--substituter', `file://${dir}`, ...batch], { silent: true });
        }
    }
    return signed.length;
}

;// CONCATENATED MODULE: ./src/nix/db.ts
// Nix's SQLite database, written directly for one thing only: the signatures of paths the
// store cache's fast path has just registered. `nix-store --load-db` takes no signatures, and
// `nix store copy-sigs` reads a narinfo and commits a transaction per path (1.2-2 s at 2,000
// paths, measured); the same column written here in one transaction takes milliseconds. The
// column is the one Nix's own addSignatures updates (ValidPaths.sigs, signatures separated by
// spaces, there since Nix 2.0's schema). Node's built-in SQLite is there from Node 22.5 (the
// action runs on 24); without it the caller falls back to copy-sigs.

/** The folder of the local store's database (NIX_STATE_DIR as Nix reads it). */
function db_nixDatabaseDir() {
    return join(process.env.NIX_STATE_DIR ?? '/nix/var/nix', 'db');
}
/** The database of the store this process may write. */
function db_nixDatabaseFile() {
    return join(db_nixDatabaseDir(), 'db.sqlite');
}
async function loadSqlite() {
    try {
        // Not bundled (a builtin the bundler's list may not know), and not typed by this
        // project's @types/node: a name in a variable.
        const builtin = 'node:sqlite';
        return (await import(/* webpackIgnore: true */ builtin));
    }
    catch {
        return null;
    }
}
/** Each path's signatures once, in order: the recorded ones, then the new ones (pure). */
function mergeSignatures(recorded, added) {
    const all = [...recorded.split(' '), ...added].filter(s => s !== '');
    return [...new Set(all)].join(' ');
}
/**
 * Add signatures to valid paths, all in one transaction: every path must be valid, or nothing
 * is written and this throws. Returns false when this Node has no SQLite (nothing written).
 */
async function db_addSignaturesToDatabase(databaseFile, signatures) {
    const sqlite = await loadSqlite();
    if (sqlite === null)
        return false;
    // Nix's own writers retry while the database is busy; so does this, for up to a minute.
    const db = new sqlite.DatabaseSync(databaseFile, { timeout: 60_000 });
    try {
        db.exec('BEGIN IMMEDIATE');
        try {
            const select = db.prepare('SELECT sigs FROM ValidPaths WHERE path = ?');
            const update = db.prepare('UPDATE ValidPaths SET sigs = ? WHERE path = ?');
            for (const [path, added] of signatures) {
                const row = select.get(path);
                if (row === undefined)
                    throw new Error(`${path} is not valid in ${databaseFile}`);
                update.run(mergeSignatures(row.sigs ?? '', added), path);
            }
            db.exec('COMMIT');
        }
        catch (error) {
            db.exec('ROLLBACK');
            throw error;
        }
    }
    finally {
        db.close();
    }
    return true;
}

// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __webpack_require__(8161);
;// CONCATENATED MODULE: ./src/cache/store-archive.ts
// The store cache's archive: the store paths themselves (as files, under `store/`) and their
// registration in the form `nix-store --dump-db` writes and `--load-db` reads (the release
// tarball's `.reginfo`). Restoring is one extraction into a staging directory on the store's
// filesystem, a NAR hash check of every path against its registration, a rename of each missing
// path into the store and one `nix-store --load-db` for them: no byte is written twice, and no
// path is registered valid before it is whole and checked.










/** The directory (under the archive's root) holding the store paths' files. */
const store_archive_STORE_SUBDIR = 'store';
const store_archive_REGISTRATION_FILE = 'registration';
/**
 * Parse `nix-store --dump-db` output: per path, its path, NAR hash, NAR size, deriver (maybe
 * empty), the number of references and the references, one a line.
 */
function store_archive_parseRegistrations(text) {
    const rows = text.split('\n');
    const result = [];
    let at = 0;
    while (at < rows.length && rows[at] !== '') {
        const [path = '', narHash = '', size = '', deriver = '', count = ''] = rows.slice(at, at + 5);
        const refCount = Number(count);
        if (!/^[0-9a-f]{64}$/.test(narHash) || !Number.isInteger(refCount) || refCount < 0) {
            throw new Error(`the registration of ${JSON.stringify(path)} is not in --dump-db form`);
        }
        const references = rows.slice(at + 5, at + 5 + refCount);
        if (references.length !== refCount)
            throw new Error(`the registration ends inside ${path}`);
        result.push({ path, narHash, narSize: Number(size) || 0, deriver, references });
        at += 5 + refCount;
    }
    return result;
}
/** The inverse of parseRegistrations, for `nix-store --load-db`. */
function formatRegistrations(entries) {
    return entries
        .map(e => [
        e.path,
        e.narHash,
        String(e.narSize),
        e.deriver,
        String(e.references.length),
        ...e.references
    ]
        .map(row => `${row}\n`)
        .join(''))
        .join('');
}
/**
 * Extract into the store and register directly when this process may write both the store and
 * its database, as Nix would open it (a single-user store, or root); otherwise let Nix import
 * the paths (`nix copy`, through the daemon), which is slower but needs no rights.
 */
function store_archive_restoreMethod(facts) {
    if (!isLocalStore(facts.nixRemote)) {
        return { fast: false, reason: `NIX_REMOTE=${facts.nixRemote}: the store is not local` };
    }
    if (!facts.storeWritable)
        return { fast: false, reason: 'the store directory is not writable' };
    if (!facts.dbWritable) {
        return { fast: false, reason: 'the Nix database is not writable (a daemon store)' };
    }
    return { fast: true };
}
async function writable(path) {
    return access(path, constants.W_OK).then(() => true, () => false);
}
function store_archive_storeDirectory() {
    return process.env.NIX_STORE_DIR ?? '/nix/store';
}
async function store_archive_storeAccess(storeDir = store_archive_storeDirectory()) {
    const [storeWritable, dbWritable] = await Promise.all([
        writable(storeDir),
        writable(nixDatabaseDir())
    ]);
    return { nixRemote: process.env.NIX_REMOTE ?? null, storeWritable, dbWritable };
}
// --- save ------------------------------------------------------------------------------------
/** The registrations of valid paths (`nix-store --dump-db`), in the order given. */
async function store_archive_registrationsOf(paths) {
    const registrations = [];
    for (const batch of command_batches(paths)) {
        const { stdout } = await exec_run('nix-store', ['--dump-db', ...batch], { silent: true });
        registrations.push(...store_archive_parseRegistrations(stdout));
    }
    return registrations;
}
/** NAR bytes of these paths, as registered. */
function store_archive_narBytes(registrations) {
    return registrations.reduce((sum, r) => sum + r.narSize, 0);
}
/**
 * Write the archive's contents into `dir`: the registration, and the paths under `store/` as
 * hard links (no copy: the files are read-only and nothing writes to them) where the filesystem
 * and the kernel allow it, else as a copy.
 */
async function writeArchive(dir, registrations) {
    const paths = registrations.map(r => r.path);
    await (0,promises_.writeFile)((0,external_node_path_.join)(dir, store_archive_REGISTRATION_FILE), formatRegistrations(registrations));
    const storeCopy = (0,external_node_path_.join)(dir, store_archive_STORE_SUBDIR);
    try {
        await copyInto(storeCopy, paths, '-al');
    }
    catch {
        // Another filesystem, or fs.protected_hardlinks with a store someone else owns.
        await tree_removeTree(storeCopy);
        await copyInto(storeCopy, paths, '-a');
    }
}
async function copyInto(target, paths, mode) {
    await exec_run('mkdir', ['-p', target], { silent: true });
    for (const batch of command_batches(paths)) {
        await exec_run('cp', [mode, '--', ...batch, target], { silent: true });
    }
}
// --- restore ---------------------------------------------------------------------------------
/** How many hashing processes run side by side: one per core, at most 4. */
function hashLanes() {
    return Math.max(1, Math.min(4, availableParallelism()));
}
/** Split paths into at most `lanes` groups of about equal NAR bytes (largest first). */
function balance(entries, lanes) {
    const groups = Array.from({ length: Math.max(1, lanes) }, () => ({
        bytes: 0,
        entries: []
    }));
    const bySize = [...entries].sort((a, b) => b.narSize - a.narSize || a.path.localeCompare(b.path));
    for (const entry of bySize) {
        const lightest = groups.reduce((best, group) => (group.bytes < best.bytes ? group : best));
        lightest.bytes += entry.narSize;
        lightest.entries.push(entry);
    }
    return groups.filter(group => group.entries.length > 0).map(group => group.entries);
}
/** The entries whose staged copy's NAR hash differs from the registration (pure). */
function hashMismatches(entries, hashes) {
    return entries.filter((entry, i) => hashes[i]?.trim() !== entry.narHash);
}
/**
 * Check each staged path's NAR hash against its registration and throw when one differs or is
 * missing: the hashes the extraction computed as it wrote them (`known`, by staged path), and
 * for the paths it has none of, `nix hash path` (one process per lane).
 */
async function store_archive_checkStagedHashes(entries, known = new Map(), lanes = hashLanes()) {
    const differ = (bad) => new Error(`${bad.length} path(s) differ from their registered NAR hash, e.g. ${bad[0]?.path ?? ''}`);
    const hashed = entries.filter(e => known.has(e.staged));
    const bad = hashMismatches(hashed, hashed.map(e => known.get(e.staged) ?? ''));
    if (bad.length > 0)
        throw differ(bad);
    const rest = entries.filter(e => !known.has(e.staged));
    await settleAll(balance(rest, lanes).map(async (group) => {
        for (const batch of batches(group)) {
            const { stdout } = await runNix(['hash', 'path', '--type', 'sha256', '--base16', ...batch.map(e => e.staged)], { silent: true });
            const mismatched = hashMismatches(batch, lines(stdout));
            if (mismatched.length > 0)
                throw differ(mismatched);
        }
    }));
}
/**
 * Move the checked paths from the staging store into the store and register them in one
 * `nix-store --load-db`. A leftover of an earlier, unregistered path of the same name (invalid,
 * so Nix's own garbage) is moved aside into the staging directory first. When registering
 * fails, the moved paths go back to the staging directory: nothing of the archive stays.
 */
async function store_archive_moveIntoStore(stagingDir, entries, 
/** Called between the moves and the registration (the restore's log times both). */
onMoved = () => undefined) {
    const trash = join(stagingDir, 'trash');
    const moved = [];
    try {
        for (const entry of entries) {
            // lstat: a leftover may be a dangling symlink.
            if (lstatSync(entry.path, { throwIfNoEntry: false }) !== undefined) {
                await run('mkdir', ['-p', trash], { silent: true });
                moveTree(entry.path, join(trash, basename(entry.path)));
            }
            moveTree(entry.staged, entry.path);
            moved.push(entry);
        }
        onMoved();
        await run('nix-store', ['--load-db'], { input: formatRegistrations(entries), silent: true });
    }
    catch (error) {
        for (const entry of moved) {
            try {
                moveTree(entry.path, entry.staged);
            }
            catch {
                // Left where it is: invalid, so Nix's own garbage.
            }
        }
        throw error;
    }
}
/**
 * Where Nix must do the writing (a daemon store): register the staged paths in a store of their
 * own (`local?root=`, the staged files in its store directory), then `nix copy` them from there,
 * which checks each NAR hash as it adds the path.
 */
async function store_archive_importThroughNix(chrootDir, storeDir, staged, missing) {
    const chrootStore = join(chrootDir, storeDir);
    await run('mkdir', ['-p', chrootStore], { silent: true });
    // Every staged path, so that `nix copy` finds each missing path's references there too.
    for (const entry of staged)
        moveTree(entry.staged, join(chrootStore, basename(entry.path)));
    const from = `local?root=${chrootDir}`;
    await run('nix-store', ['--store', from, '--load-db'], {
        input: formatRegistrations(staged),
        silent: true
    });
    // `nix copy` takes each path's signatures along: a daemon with `require-sigs` checks them.
    await addSignatures(join(chrootDir, '..', 'narinfo-chroot'), storeDir, missing, from);
    const paths = missing.map(e => e.path);
    // A `.drv` given to `nix copy` stands for its outputs unless `--derivation` is given, and with
    // `--derivation` other paths are left out (Nix 2.8): two calls, sources and outputs first.
    for (const [group, extra] of [
        [paths.filter(p => !isDerivation(p)), []],
        [paths.filter(isDerivation), ['--derivation']]
    ]) {
        for (const batch of batches(group)) {
            await runNix(['copy', '--from', from, '--no-check-sigs', ...extra, ...batch], {
                silent: true
            });
        }
    }
}

;// CONCATENATED MODULE: ./src/cache/restore.ts
// Restoring the store cache: the newest entry for the keys is downloaded and, when it is a
// delta, the base it builds on; each is extracted, confined (an entry is untrusted input:
// extract.ts), into a staging folder beside the store (or in the scratch directory), every NAR
// hash is checked, and only the paths the store lacks, with their references whole, are moved
// in (or imported through Nix). The import is whole or not at all.
















/** The subdirectory of CACHE_DIR_NAME an entry of this kind is archived under. */
function layerDirectory(kind) {
    return kind === 'delta' ? 'delta' : 'base';
}
/** File holding the RestoreRecord as JSON, for post. */
function restore_restoreRecordFile(workDir) {
    return join(workDir, 'restored.json');
}
async function restore_writeRestoreRecord(file, record) {
    await writeFile(file, JSON.stringify(record));
}
/** The record main wrote; null when there is none (a miss before the keys were known). */
async function readRestoreRecord(file) {
    if (file === null)
        return null;
    const text = await (0,promises_.readFile)(file, 'utf8').catch(() => '');
    return text === '' ? null : JSON.parse(text);
}
/**
 * Where the archive is extracted: beside the store (same filesystem, so that moving a path in
 * is a rename) when the paths go straight in, else the scratch directory.
 */
function stagingDirFor(fast, storeDir, workDir) {
    const name = `.nca-staging-${randomBytes(6).toString('hex')}`;
    return fast ? join(storeDir, name) : join(workDir, name);
}
/**
 * Download the entries for `keys` and import what the store lacks; null when there is none.
 * Throws when the archives cannot be used (they are then discarded and the store left as it
 * was).
 */
async function restore_restoreEntry(keys, workDir, timer = phases(), 
/** `cache-trusted-keys`: when any, every path must carry a valid signature by one of them. */
trustedKeys = []) {
    const storeDir = storeDirectory();
    const method = restoreMethod(await storeAccess(storeDir));
    if (!method.fast)
        core.info(`Paths will be imported through nix copy: ${method.reason}`);
    const staging = stagingDirFor(method.fast, storeDir, workDir);
    try {
        await mkdir(staging);
        // The NAR hash of each staged path, computed as it was extracted (the fast path checks
        // them; `nix copy` checks its own).
        const narHashes = new Map();
        const fetch = (primary, restore) => fetchLayer({ staging, workDir, primary, restore, narHashes: method.fast ? narHashes : null });
        const first = await fetch(keys.primary, keys.restore);
        if (first === null)
            return null;
        const found = first.key;
        const entries = await withBase(fetch, first);
        timer.end('download and extract');
        const layers = await readLayers(join(staging, CACHE_DIR_NAME), entries);
        timer.end('read the registrations');
        if (trustedKeys.length > 0) {
            await checkSignatures(layers, trustedKeys);
            timer.end('check signatures');
        }
        const staged = uniqueRegistrations(layers);
        const { importedCount, leftOut } = await importAll({
            staging,
            storeDir,
            method,
            staged,
            narHashes,
            timer
        });
        core.info(`Restore phases: ${timer.summary()}`);
        const valid = staged.filter(r => !leftOut.has(r.path));
        // What post builds on: a path left out is not in the store, whatever its entry holds.
        const restored = layers.map(({ layer }) => ({
            ...layer,
            paths: layer.paths.filter(p => !leftOut.has(p))
        }));
        return {
            key: found,
            layers: restored,
            paths: valid.map(r => r.path).sort(),
            importedCount,
            bytes: narBytes(valid)
        };
    }
    finally {
        // What was moved into the store is no longer here; the rest (a discarded archive, paths
        // that were valid already) only takes disk.
        await removeTree(staging).catch(() => undefined);
    }
}
/**
 * Where each member of an entry's archive may stand: its layer's folder (`base/` or `delta/`,
 * so that a delta and its base never write into each other's), holding the manifest, the
 * registration and `store/`, under which lie the store paths' own trees (the only place for a
 * symbolic link or a hard link).
 */
function layerLayout(kind) {
    const layer = layerDirectory(kind);
    return parts => {
        const [root, dir, name] = parts;
        if (root !== CACHE_DIR_NAME)
            return null;
        if (dir === undefined)
            return 'directory';
        if (dir !== layer)
            return null;
        if (name === undefined)
            return 'directory';
        if (name === STORE_SUBDIR)
            return parts.length === 3 ? 'directory' : 'tree';
        if (parts.length === 3 && (name === REGISTRATION_FILE || name === MANIFEST_FILE))
            return 'file';
        return null;
    };
}
/**
 * Download the entry of `primary` (else the newest of each `restore` prefix) and extract it,
 * confined, into the staging folder: its key, or null on a miss. An archive that holds a
 * member that may not be extracted, or that does not extract, is an error: the caller discards
 * the whole staging folder.
 */
async function fetchLayer(o) {
    const archive = join(o.workDir, `entry-${randomBytes(6).toString('hex')}.tar.zst`);
    try {
        const found = await downloadFirst(o.primary, o.restore, archive);
        if (found === null)
            return null;
        const entry = parseEntryKey(found);
        const started = performance.now();
        try {
            const { members, narHashes } = await extractConfined(archive, o.staging, layerLayout(entry.kind), { hashTrees: o.narHashes !== null });
            for (const [path, hash] of narHashes)
                o.narHashes?.set(path, hash);
            const seconds = ((performance.now() - started) / 1000).toFixed(2);
            core.info(`Extracted ${found}: ${members} members in ${seconds} s`);
        }
        catch (error) {
            if (error instanceof RefusedMembers) {
                throw new Error(`the entry ${found} was discarded: ${error.message}`);
            }
            throw new Error(`the entry ${found} does not extract: ${errorMessage(error)}`);
        }
        return entry;
    }
    finally {
        await rm(archive, { force: true });
    }
}
/**
 * The entry restored and, for a delta, its base, downloaded after it (a delta is small: one
 * look-up less for a base than looking up first and downloading both side by side). A base
 * that is gone (evicted, or superseded and deleted) is replaced by the newest base of the same
 * lock, if any.
 */
async function withBase(fetch, found) {
    if (found.kind !== 'delta')
        return [found];
    // A base key is never the prefix of another: what this finds is that base.
    const base = await fetch(found.base, []);
    if (base !== null)
        return [found, base];
    core.info(`The base ${found.base} of ${found.key} is not in the cache: looking for another one`);
    const newest = `${found.lock}base-`;
    const other = await fetch(newest, [newest]);
    if (other === null || !other.key.startsWith(newest))
        return [found];
    core.info(`Restored the base ${other.key}; paths of the delta that need the old one are left out`);
    return [found, other];
}
/** Every path of the manifest with its registration, or an error naming what is wrong. */
function manifestRegistrations(paths, text, storeDir) {
    const registrations = parseRegistrations(text);
    const registered = new Set(registrations.map(r => r.path));
    const unregistered = paths.find(p => !registered.has(p));
    if (unregistered !== undefined)
        throw new Error(`the archive does not register ${unregistered}`);
    const elsewhere = registrations.find(r => dirname(r.path) !== storeDir);
    if (elsewhere !== undefined)
        throw new Error(`${elsewhere.path} is not in the store ${storeDir}`);
    return registrations.filter(r => registered.has(r.path));
}
async function readLayers(cacheDir, entries) {
    const storeDir = storeDirectory();
    return Promise.all(entries.map(async (entry) => {
        const dir = join(cacheDir, layerDirectory(entry.kind));
        const manifest = await readManifest(dir);
        const text = await readFile(join(dir, REGISTRATION_FILE), 'utf8');
        const registrations = manifestRegistrations(manifest.paths, text, storeDir);
        const staged = registrations.map(r => ({
            ...r,
            staged: join(dir, STORE_SUBDIR, r.path.slice(storeDir.length + 1)),
            signatures: signaturesOf(manifest.signatures, r.path)
        }));
        const layer = {
            key: entry.key,
            kind: entry.kind,
            paths: manifest.paths,
            narBytes: narBytes(registrations)
        };
        return { layer, staged };
    }));
}
/**
 * Every path of every downloaded entry must carry a valid signature by a trusted key, checked
 * before anything is registered; the first entry that has one that does not is discarded
 * whole, and with it the restore (a miss), naming the path and the key.
 */
async function checkSignatures(layers, trusted) {
    for (const { layer, staged } of layers) {
        const why = await firstUntrustedPath(staged, trusted);
        if (why !== null)
            throw new Error(`the entry ${layer.key} was discarded: ${why}`);
    }
}
/** Each path once (a path two layers hold is taken from the first). */
function uniqueRegistrations(layers) {
    const byPath = new Map();
    for (const staged of layers.flatMap(l => l.staged)) {
        if (!byPath.has(staged.path))
            byPath.set(staged.path, staged);
    }
    return [...byPath.values()];
}
/**
 * The missing paths whose every reference is valid or imported with them (pure): a path whose
 * closure the downloaded entries do not hold (a delta whose base is gone) is left out, and so
 * is every path that refers to it.
 */
function wholeClosures(missing, isValid) {
    const importing = new Map(missing.map(r => [r.path, r]));
    for (let changed = true; changed;) {
        changed = false;
        for (const [path, entry] of importing) {
            if (entry.references.some(ref => !isValid(ref) && !importing.has(ref))) {
                importing.delete(path);
                changed = true;
            }
        }
    }
    return missing.filter(r => importing.has(r.path));
}
/**
 * The paths the store does not hold valid. In a local store this process writes, only those
 * with a file in the store are asked of Nix: Nix keeps every valid path on disk, so a path
 * without one is not valid (on a fresh runner, none are asked).
 */
async function invalidAmong(paths, local) {
    if (!local)
        return new Set(await invalidPaths(paths));
    const onDisk = paths.filter(p => lstatSync(p, { throwIfNoEntry: false }) !== undefined);
    const asked = new Set(onDisk);
    const invalid = new Set(paths.filter(p => !asked.has(p)));
    for (const path of await invalidPaths(onDisk))
        invalid.add(path);
    return invalid;
}
/** Which of the staged paths to import: the missing ones with whole closures. */
async function pathsToImport(staged, local) {
    const inArchive = new Set(staged.map(s => s.path));
    const elsewhere = [...new Set(staged.flatMap(s => s.references).filter(r => !inArchive.has(r)))];
    const invalid = await invalidAmong([...inArchive, ...elsewhere], local);
    const missing = staged.filter(s => invalid.has(s.path));
    const whole = wholeClosures(missing, path => !invalid.has(path));
    const importing = new Set(whole.map(s => s.path));
    const leftOut = new Set(missing.map(s => s.path).filter(p => !importing.has(p)));
    if (leftOut.size > 0) {
        core.info(`${leftOut.size} paths left out: they need paths neither the store nor the entries hold`);
    }
    return { importing: whole, leftOut };
}
/**
 * Bring in the paths the store lacks, each checked against its NAR hash before it is
 * registered. A failure leaves the store as it was: the import is whole or not at all.
 */
async function importAll(o) {
    const { staged } = o;
    const { importing: missing, leftOut } = await pathsToImport(staged, o.method.fast);
    o.timer.end('check validity');
    if (missing.length === 0)
        return { importedCount: 0, leftOut };
    core.info(`Importing ${missing.length} of ${staged.length} paths`);
    try {
        if (o.method.fast) {
            await checkStagedHashes(missing, o.narHashes);
            o.timer.end('check NAR hashes');
            await moveIntoStore(o.staging, missing, () => o.timer.end('move in'));
            o.timer.end('register (load-db)');
            await keepSignatures(o, missing);
        }
        else {
            await importThroughNix(join(o.staging, 'chroot'), o.storeDir, staged, missing);
            o.timer.end('import through nix copy');
        }
        return { importedCount: missing.length, leftOut };
    }
    catch (error) {
        // Nix checked each path it added; still, the import goes whole or not at all.
        if (!o.method.fast)
            await rollBack(missing.map(r => r.path));
        throw new Error(`the archive did not import cleanly and was discarded: ${errorMessage(error)}`);
    }
}
/**
 * The fast path: the paths are registered (load-db takes no signatures); add theirs, straight
 * into the database this process just registered them in (copy-sigs where this Node has no
 * SQLite). A failure leaves valid paths without signatures, which is a warning, not a reason to
 * discard them.
 */
async function keepSignatures(o, paths) {
    const signed = new Map(paths.filter(p => p.signatures.length > 0).map(p => [p.path, p.signatures]));
    if (signed.size === 0)
        return;
    try {
        if (await addSignaturesToDatabase(nixDatabaseFile(), signed)) {
            o.timer.end('add signatures');
        }
        else if (await addSignatures(join(o.staging, 'narinfo'), o.storeDir, paths, null)) {
            o.timer.end('add signatures (copy-sigs)');
        }
    }
    catch (error) {
        core.warning(`Store cache: the restored paths are valid but their signatures were not recorded: ${errorMessage(error)}`);
    }
}
async function rollBack(missing) {
    try {
        const stillInvalid = new Set(await invalidPaths(missing));
        const added = missing.filter(p => !stillInvalid.has(p));
        await deletePaths(added);
        if (added.length > 0)
            core.info(`Removed the ${added.length} paths this import had added`);
    }
    catch (error) {
        core.warning(`Store cache: could not remove the paths of a failed import: ${errorMessage(error)}`);
    }
}

;// CONCATENATED MODULE: ./src/cache/save-rules.ts
// Whether post saves the store cache, and as what (pure): the rules, before and after looking
// at the store.
/** Why the post step does not save, before looking at the store; null: look further. */
function saveSkipReason(facts) {
    if (!facts.cacheSave)
        return 'cache-save: false';
    if (facts.serviceMissing !== null)
        return facts.serviceMissing;
    if (facts.primaryKey === null)
        return 'no cache key: the restore step could not compute one';
    if (!facts.built)
        return 'the build did not run to the end';
    if (facts.exactHit !== null) {
        return `exact hit on ${facts.exactHit}: the entry already holds this build`;
    }
    return null;
}
/** The closure's paths that the restored cache did not have (sorted). */
function pathsNotRestored(closure, restored) {
    const had = new Set(restored);
    return closure.filter(p => !had.has(p)).sort();
}
function closureSkipReason(closure, restored) {
    if (pathsNotRestored(closure, restored).length > 0)
        return null;
    return `the closure holds no path that the restored cache did not already have (${closure.length} paths)`;
}
/**
 * A delta may hold at most this share of its base's NAR bytes; beyond it the commit saves a new
 * base. It bounds what a lock and branch keep (a base and one delta: 1.25x a closure) and what
 * a restore downloads that the build may not need.
 */
const DELTA_SHARE = 0.25;
/** Whether a delta of `deltaBytes` may build on a base of `baseBytes` (NAR bytes). */
function deltaFits(deltaBytes, baseBytes) {
    return deltaBytes <= DELTA_SHARE * baseBytes;
}

;// CONCATENATED MODULE: ./src/cache/save.ts
// Saving the store cache: what goes in (the build closures and the flake inputs' sources), as
// what (a delta on the restored base, or a new base), and writing the archive.












/** The union of every build's closure. */
async function closureOfBuilds(drvPaths, storePaths) {
    const drvs = (drvPaths ?? '').split('\n');
    const closure = new Set();
    for (const [i, storePath] of storePaths.split('\n').filter(Boolean).entries()) {
        for (const path of await buildClosure(drvs[i] || null, storePath))
            closure.add(path);
    }
    return [...closure].sort();
}
/**
 * The build closures (one per system built) and the sources of the flake's inputs (sorted).
 * `drvPaths` and `storePaths` are one a line, in the same order ('' where a drv is unknown).
 */
async function save_pathsToCache(flake, drvPaths, storePaths) {
    const [closure, inputs] = await Promise.all([
        closureOfBuilds(drvPaths, storePaths),
        flakeInputPaths(flake)
    ]);
    // An input the evaluation never needed may not be in the store: nothing to keep of it.
    const absent = new Set(await nix_store_invalidPaths(inputs));
    return [...new Set([...closure, ...inputs.filter(p => !absent.has(p))])].sort();
}
/**
 * A delta when this lock's base was restored and what the closure adds to it stays within
 * DELTA_SHARE of it; otherwise a new base (or, with `cache-key`, one whole entry).
 */
async function planSave(keys, closure, layers) {
    const whole = async (note) => ({
        kind: keys.layers === null ? 'whole' : 'base',
        key: keys.layers?.base ?? keys.primary,
        registrations: await store_archive_registrationsOf(closure),
        base: null,
        note
    });
    const base = layers.find(l => l.kind === 'base' && isSameLock(keys, l.key));
    if (keys.layers === null || base === undefined)
        return whole(null);
    const delta = await store_archive_registrationsOf(pathsNotRestored(closure, base.paths));
    const bytes = store_archive_narBytes(delta);
    if (!deltaFits(bytes, base.narBytes)) {
        return whole(`what the closure adds to the base ${base.key} (${save_megabytes(bytes)}) is more than ${DELTA_SHARE * 100}% of it (${save_megabytes(base.narBytes)}): a new base`);
    }
    return {
        kind: 'delta',
        key: deltaKey(keys, base.key),
        registrations: delta,
        base: base.key,
        note: null
    };
}
function save_megabytes(bytes) {
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
/**
 * Write the archive of the plan under `workDir` and save it: its NAR bytes (its size before
 * compression), or null when the cache service did not take it (@actions/cache has said why).
 */
async function saveEntry(workDir, plan, 
/** `cache-signing-key`: each path is signed with it; null: the entry is unsigned. */
signingKey = null) {
    const dir = (0,external_node_path_.join)(workDir, service_CACHE_DIR_NAME);
    const layerDir = (0,external_node_path_.join)(dir, layerDirectory(plan.kind));
    await tree_removeTree(dir);
    await (0,promises_.mkdir)(layerDir, { recursive: true });
    try {
        const paths = plan.registrations.map(r => r.path);
        const bytes = store_archive_narBytes(plan.registrations);
        const on = plan.base === null ? '' : ` (a delta on ${plan.base})`;
        src_core/* info */.pq(`Saving ${paths.length} paths, ${save_megabytes(bytes)}, as ${plan.key}${on}`);
        await writeArchive(layerDir, plan.registrations);
        const signatures = signingKey && signRegistrations(signingKey, plan.registrations);
        if (signingKey)
            src_core/* info */.pq(`Signed the ${paths.length} paths with the key ${signingKey.name}`);
        await writeManifest(layerDir, paths, signatures);
        return (await saveDirectory(workDir, plan.key)) ? bytes : null;
    }
    finally {
        await tree_removeTree(dir).catch(() => undefined);
    }
}

;// CONCATENATED MODULE: ./src/temp.ts
// The one place that says where the action's temporary files go: the runner's temp directory
// (private to the job, emptied by the runner after it), or the system's outside a runner.


/** RUNNER_TEMP, or the system's temp directory when it is unset or empty. */
function runnerTemp() {
    return process.env.RUNNER_TEMP || (0,external_node_os_.tmpdir)();
}
/** The action's own folder in it: the job's nix.conf, the store cache's scratch space, logins. */
function temp_actionTempDir(root = runnerTemp()) {
    return (0,external_node_path_.join)(root, 'nix-container-action');
}

;// CONCATENATED MODULE: ./src/stages/store-cache.ts
// The store cache stage: restore before the build (main), save after it (post).
//
// What is cached is the build closure of the image (the derivation's requisites with their
// outputs) and the sources of the flake's locked inputs, so that an exact hit needs the network
// for nothing, in layers: a base per lock and a delta per commit. This file is the order of
// things; the keys, the save rules, the archive, its restore and save, and the deletion of
// superseded entries live in src/cache/.











/**
 * Begin loading the cache client (most of the bundle) while the stages before the restore run:
 * it is then ready when the restore starts.
 */
function prepareStoreCache() {
    preloadCacheClient();
}
/** Restore the store cache; never throws: a failed restore is a warning and a miss. */
async function restoreStoreCache(options) {
    const recordFile = restoreRecordFile(options.workDir);
    const result = {
        outcome: 'miss',
        keys: null,
        restoredKey: null,
        hit: false,
        recordFile,
        pathCount: 0,
        importedCount: 0,
        bytes: 0,
        reason: null
    };
    try {
        await mkdir(options.workDir, { recursive: true });
        await writeFile(recordFile, '');
        const timer = phases();
        // Nix computes the keys while the cache client loads (preloadCacheClient).
        const missingService = cacheServiceMissing();
        const keys = await computeKeys(options);
        result.keys = keys;
        await writeRestoreRecord(recordFile, { keys, layers: [] });
        core.info(`Primary key: ${keys.primary}`);
        core.info(`Restore keys: ${keys.restore.join(', ')}`);
        if (missingService !== null)
            return { ...result, outcome: 'unavailable', reason: missingService };
        timer.end('keys and service');
        const entry = await restoreEntry(keys, options.workDir, timer, options.trustedKeys ?? []);
        if (entry === null)
            return { ...result, reason: `no entry for ${keys.primary} or its restore keys` };
        await writeRestoreRecord(recordFile, { keys, layers: entry.layers });
        const from = entry.layers.map(l => `${l.kind} ${l.key}`).join(' + ');
        core.info(`Restored ${from}: ${entry.paths.length} paths (${megabytes(entry.bytes)}), ${entry.importedCount} imported, the rest already valid`);
        return {
            ...result,
            outcome: 'restored',
            restoredKey: entry.key,
            hit: isExactHit(keys, entry.key),
            pathCount: entry.paths.length,
            importedCount: entry.importedCount,
            bytes: entry.bytes
        };
    }
    catch (error) {
        const reason = errorMessage(error);
        core.warning(`Store cache: restore failed, building without the cache: ${reason}`);
        return { ...result, outcome: 'failed', reason: firstLine(reason) };
    }
}
function describeRestore(result) {
    switch (result.outcome) {
        case 'restored': {
            const which = result.hit ? 'hit' : 'restore-key hit';
            return `${which} ${result.restoredKey ?? ''}: ${result.pathCount} paths, ${megabytes(result.bytes)}, ${result.importedCount} imported`;
        }
        case 'miss':
            return `miss: ${result.reason ?? ''}`;
        case 'unavailable':
            return `skipped: ${result.reason ?? ''}`;
        case 'failed':
            return `failed (warning): ${result.reason ?? ''}`;
    }
}
/**
 * Save what the build needed that the restored entries lacked: a delta on this lock's base, or
 * a new base; then delete what that superseded. Unless there is no point.
 */
async function saveStoreCache(options) {
    const record = await readRestoreRecord(options.recordFile);
    const restoredKey = options.restoredKey;
    const skip = saveSkipReason({
        cacheSave: options.cacheSave,
        serviceMissing: service_cacheServiceMissing(),
        primaryKey: options.primaryKey,
        exactHit: record && restoredKey && keys_isExactHit(record.keys, restoredKey) ? restoredKey : null,
        built: options.storePath !== null
    });
    if (skip !== null || record === null || options.storePath === null) {
        return { saved: false, reason: skip ?? 'nothing to save: main recorded no keys' };
    }
    const closure = await save_pathsToCache(options.flake, options.drvPath, options.storePath);
    const restored = [...new Set(record.layers.flatMap(l => l.paths))];
    const noNewPaths = closureSkipReason(closure, restored);
    if (noNewPaths !== null)
        return { saved: false, reason: noNewPaths };
    const plan = await planSave(record.keys, closure, record.layers);
    if (plan.note !== null)
        src_core/* info */.pq(plan.note);
    const bytes = await saveEntry(options.workDir, plan, options.signingKey ?? null);
    if (bytes === null) {
        return {
            saved: false,
            failed: true,
            reason: 'the cache service did not take the entry (see the message above)'
        };
    }
    const pruned = await pruneAfterSave(record.keys, plan, options);
    return {
        saved: true,
        key: plan.key,
        kind: plan.kind,
        pathCount: plan.registrations.length,
        newCount: pathsNotRestored(closure, restored).length,
        bytes,
        pruned
    };
}
/** Delete the lock's entries on this ref that the new one superseded (not with `cache-key`). */
async function pruneAfterSave(keys, plan, options) {
    const ref = process.env.GITHUB_REF;
    if (keys.layers === null || !ref || options.startedAt === null)
        return null;
    const lockPrefix = keys.layers.lock;
    const keep = [plan.key, ...(plan.base === null ? [] : [plan.base])];
    const result = await pruneSuperseded({ lockPrefix, keep, ref, startedAt: options.startedAt }, process.env, options.githubToken);
    for (const key of result.deleted)
        src_core/* info */.pq(`Deleted the superseded entry ${key}`);
    if (result.notice !== null)
        src_core/* notice */.lm(`Store cache: ${result.notice}`);
    if (result.skipped !== null)
        src_core/* info */.pq(result.skipped);
    return result;
}
function describeSave(result) {
    if (!result.saved)
        return `not saved: ${result.reason}`;
    const pruned = result.pruned?.deleted.length ?? 0;
    const deleted = pruned > 0 ? `; ${pruned} superseded deleted` : '';
    return `saved ${result.kind} ${result.key}: ${result.pathCount} paths (${result.newCount} new), ${save_megabytes(result.bytes)}${deleted}`;
}
// --- helpers --------------------------------------------------------------------------------
/** Scratch space for the archive: the runner's temp directory, emptied after each job. */
function storeCacheWorkDir() {
    return temp_actionTempDir();
}

;// CONCATENATED MODULE: ./src/image/plain-archive.ts
// Reading an uncompressed docker archive by seeking: tar has no index, but each header says
// how far to skip, so manifest.json and the config are found without reading the layers.
// (node-tar parses the headers; only the skipping is done here.)




const plain_archive_BLOCK = 512;
/** `./a/b` and `a/b` are the same entry. */
function entryName(path) {
    return posix.normalize(path).replace(/^\.\//, '').replace(/\/$/, '');
}
async function readAt(file, offset, length) {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await file.read(buffer, 0, length, offset);
    return buffer.subarray(0, bytesRead);
}
// Headers of small files lie close together: read ahead, so a layer of many small files
// costs one read per window rather than one per header.
const READ_AHEAD = (/* unused pure expression or super */ null && (64 * 1024));
/** Reads at offsets through a read-ahead window. */
class WindowReader {
    file;
    window = Buffer.alloc(0);
    windowOffset = 0;
    constructor(file) {
        this.file = file;
    }
    async read(offset, length) {
        const start = offset - this.windowOffset;
        if (start < 0 || start + length > this.window.length) {
            this.window = await readAt(this.file, offset, Math.max(length, READ_AHEAD));
            this.windowOffset = offset;
            return this.window.subarray(0, length);
        }
        return this.window.subarray(start, start + length);
    }
}
/** Every entry of an uncompressed tar file (or of a tar inside it), by name, with where its data is. */
async function indexTar(path, region) {
    const entries = new Map();
    const file = await open(path, 'r');
    const reader = new WindowReader(file);
    const end = region ? region.offset + region.size : Infinity;
    try {
        let offset = region?.offset ?? 0;
        // A pax header or GNU long name describes the entry after it.
        let extended;
        while (offset < end) {
            if (offset + plain_archive_BLOCK > end)
                throw new Error(`not a tar archive (cut short at byte ${offset})`);
            const block = await reader.read(offset, plain_archive_BLOCK);
            if (block.length < plain_archive_BLOCK)
                break;
            const header = new Header(block, 0, extended);
            if (header.nullBlock)
                break;
            if (!header.cksumValid)
                throw new Error(`not a tar archive (bad header at byte ${offset})`);
            const size = header.size ?? 0;
            const dataOffset = offset + plain_archive_BLOCK;
            if (header.type === 'ExtendedHeader') {
                extended = Pax.parse((await reader.read(dataOffset, size)).toString('utf8'));
            }
            else if (header.type === 'NextFileHasLongPath') {
                const longPath = (await reader.read(dataOffset, size)).toString('utf8').replace(/\0+$/, '');
                extended = { path: longPath };
            }
            else if (header.type !== 'GlobalExtendedHeader') {
                entries.set(entryName(header.path ?? ''), {
                    offset: dataOffset,
                    size,
                    type: header.type,
                    linkpath: header.linkpath ?? null
                });
                extended = undefined;
            }
            offset = dataOffset + Math.ceil(size / plain_archive_BLOCK) * plain_archive_BLOCK;
        }
    }
    finally {
        await file.close();
    }
    return entries;
}
/** The file entry `name` names, following a symbolic link within the archive; null if none. */
function fileEntry(entries, name) {
    let entry = entries.get(entryName(name));
    if (entry?.type === 'SymbolicLink' && entry.linkpath) {
        entry = entries.get(entryName(posix.join(posix.dirname(entryName(name)), entry.linkpath)));
    }
    return entry?.type === 'File' ? entry : null;
}
/** The content of an entry, following a symbolic link within the archive. */
async function readEntry(path, entries, name) {
    const entry = fileEntry(entries, name);
    if (!entry)
        return null;
    const file = await open(path, 'r');
    try {
        return await readAt(file, entry.offset, entry.size);
    }
    finally {
        await file.close();
    }
}
function plain_archive_sha256Digest(content) {
    return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

// EXTERNAL MODULE: external "node:http"
var external_node_http_ = __webpack_require__(7067);
// EXTERNAL MODULE: external "node:https"
var external_node_https_ = __webpack_require__(4708);
;// CONCATENATED MODULE: ./src/registry/http.ts
// The registry's HTTP API (distribution spec), spoken directly where a skopeo process costs more
// than the request itself: a manifest query is one GET, and skopeo's start-up is most of its
// 40-50 ms. Credentials come from the Docker config files skopeo reads (their `auths`); Basic
// and token (Bearer) authentication are both spoken. Anything this cannot answer for sure (a
// credential helper, Docker Hub, a proxy, TLS it cannot verify, an unexpected status) is left
// to skopeo.








/** Registries refuse manifests over 4 MiB; an answer bigger than that is not one to read. */
const MAX_ANSWER_BYTES = (/* unused pure expression or super */ null && (4 * 1024 * 1024));
/**
 * One GET with node:http(s), on a connection of its own that closes after it. Not fetch: its
 * first request in a process costs 70-80 ms of loading undici, more than the whole question.
 */
const httpGet = (url, headers, timeoutMs) => new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const fail = (error) => {
        clearTimeout(timer);
        request.destroy();
        reject(error);
    };
    const request = send(target, { method: 'GET', headers, agent: false }, response => {
        const chunks = [];
        let bytes = 0;
        response.on('data', (chunk) => {
            bytes += chunk.length;
            if (bytes > MAX_ANSWER_BYTES)
                fail(new Error(`GET ${url}: an answer over 4 MiB`));
            else
                chunks.push(chunk);
        });
        response.on('error', fail);
        response.on('end', () => {
            clearTimeout(timer);
            resolve({
                status: response.statusCode ?? 0,
                header: name => {
                    const value = response.headers[name.toLowerCase()];
                    return Array.isArray(value) ? value.join(', ') : (value ?? null);
                },
                body: Buffer.concat(chunks)
            });
        });
    });
    // unref: a bound on this request, never a reason for the step's process to stay.
    const timer = setTimeout(() => {
        fail(Object.assign(new Error(`GET ${url} timed out`), { name: 'TimeoutError' }));
    }, timeoutMs).unref();
    request.on('error', fail);
    request.end();
});
/** A Get made of a fetch (the mount's, whose callers and tests give one). */
function getOverFetch(fetchImpl) {
    return async (url, headers, timeoutMs) => {
        const response = await fetchImpl(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
        const body = Buffer.from(await response.arrayBuffer());
        return { status: response.status, header: name => response.headers.get(name), body };
    };
}
/** A registry failure worth another attempt: the message names the status, as retry.ts reads it. */
class TransientRegistryError extends (/* unused pure expression or super */ null && (Error)) {
}
/** Who asks, in the registry's logs. */
const USER_AGENT = 'nix-container-action';
/** Docker Hub's references say docker.io; its API lives elsewhere. */
function apiHost(registry) {
    return registry === 'docker.io' ? 'registry-1.docker.io' : registry;
}
/** `http://` for loopback registries (as docker and the action's skopeo flags treat them). */
function baseUrl(registry) {
    return `${isLoopbackHost(registry) ? 'http' : 'https'}://${apiHost(registry)}`;
}
/** `Bearer realm="...",service="..."` -> scheme and parameters (pure, for tests). */
function parseChallenge(header) {
    if (!header)
        return null;
    const match = /^\s*(\w+)\s*(.*)$/.exec(header);
    if (!match)
        return null;
    const params = {};
    for (const [, key, quoted, bare] of (match[2] ?? '').matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) {
        params[key.toLowerCase()] = quoted ?? bare ?? '';
    }
    return { scheme: match[1].toLowerCase(), params };
}
/** The token URL for a Bearer challenge, asking for these scopes (pure, for tests). */
function tokenUrl(params, scopes) {
    if (!params.realm)
        throw new Error('the registry asked for a token but named no realm');
    const url = new URL(params.realm);
    if (params.service)
        url.searchParams.set('service', params.service);
    for (const scope of scopes)
        url.searchParams.append('scope', scope);
    return url.toString();
}
function basicHeader(credentials) {
    return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}
function failIfTransient(status, what) {
    if (status === 429 || status >= 500) {
        throw new TransientRegistryError(`${what}: HTTP ${status}`);
    }
}
/** The Authorization header a 401's challenge asks for, or null when there is no way to answer it. */
async function authorize(challengeHeader, scopes, credentials, get, timeoutMs) {
    const challenge = parseChallenge(challengeHeader);
    if (challenge?.scheme === 'basic')
        return credentials ? basicHeader(credentials) : null;
    if (challenge?.scheme !== 'bearer')
        return null;
    const headers = { 'User-Agent': USER_AGENT };
    if (credentials)
        headers.Authorization = basicHeader(credentials);
    const response = await get(tokenUrl(challenge.params, scopes), headers, timeoutMs);
    failIfTransient(response.status, 'token request');
    if (response.status < 200 || response.status > 299)
        return null;
    const body = JSON.parse(response.body.toString('utf8'));
    const token = body.token ?? body.access_token;
    if (!token)
        return null;
    core.setSecret(token);
    return `Bearer ${token}`;
}
/** The Docker config files skopeo would read for credentials, in its order. */
function credentialFiles(authFile) {
    if (authFile)
        return [authFile];
    const files = [];
    if (process.env.REGISTRY_AUTH_FILE)
        files.push(process.env.REGISTRY_AUTH_FILE);
    if (process.env.XDG_RUNTIME_DIR) {
        files.push(join(process.env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
    }
    files.push(join(homedir(), '.config', 'containers', 'auth.json'));
    files.push(join(process.env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json'));
    return files;
}
/** `https://ghcr.io/v1/` and `ghcr.io` name the same registry. */
function hostOfAuthKey(key) {
    return key.replace(/^https?:\/\//, '').split('/')[0] ?? '';
}
/** The `auths` entry for a registry in a Docker config's text (pure, for tests). */
function credentialsIn(configText, registry) {
    return credentialsOf(JSON.parse(configText), registry);
}
function credentialsOf(config, registry) {
    const wanted = registry === 'docker.io' ? ['docker.io', 'index.docker.io'] : [registry];
    for (const [key, entry] of Object.entries(config.auths ?? {})) {
        if (!wanted.includes(hostOfAuthKey(key)))
            continue;
        if (entry.username && entry.password) {
            return { username: entry.username, password: entry.password };
        }
        if (entry.auth) {
            const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
            const colon = decoded.indexOf(':');
            if (colon > 0)
                return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
        }
    }
    return null;
}
/**
 * Does a Docker config hold what only skopeo can use for this registry: a credential helper,
 * or an `auths` entry without a user and password (an identity or registry token)?
 */
function needsSkopeo(config, registry) {
    if (config.credsStore || Object.keys(config.credHelpers ?? {}).length > 0)
        return true;
    const listed = Object.keys(config.auths ?? {}).some(key => hostOfAuthKey(key) === registry);
    return listed && credentialsOf(config, registry) === null;
}
/**
 * Credentials for a registry from the first config file that has them (null: anonymous), and
 * whether a file read on the way is not JSON or holds what only skopeo can use (needsSkopeo):
 * then only skopeo can say what it would send.
 */
async function searchCredentials(registry, authFile) {
    let unsure = false;
    for (const file of credentialFiles(authFile)) {
        const text = await readFile(file, 'utf8').catch(() => null);
        if (text === null)
            continue;
        let config;
        try {
            config = JSON.parse(text);
        }
        catch {
            unsure = true; // not JSON: skopeo would fail on it too
            continue;
        }
        unsure ||= needsSkopeo(config, registry);
        const credentials = credentialsOf(config, registry);
        if (credentials)
            return { credentials, unsure };
    }
    return { credentials: null, unsure };
}
/** Credentials for a registry from the first config file that has them; null: anonymous. */
async function findCredentials(registry, authFile) {
    return (await searchCredentials(registry, authFile)).credentials;
}
/** The manifest types skopeo accepts, so that the registry answers both alike. */
const MANIFEST_TYPES = [
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.docker.distribution.manifest.v2+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.docker.distribution.manifest.v1+prettyjws',
    'application/vnd.docker.distribution.manifest.v1+json'
].join(', ');
/** Distribution's error codes for "no such manifest" and "no such repository". */
const MISSING_CODES = new Set(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
/** Does a 404's body say the manifest or repository is unknown (pure, for tests)? */
function saysMissing(body) {
    try {
        const parsed = JSON.parse(body);
        return (parsed.errors ?? []).some(error => MISSING_CODES.has(error.code ?? ''));
    }
    catch {
        return false;
    }
}
/** Network failures of a request that another attempt may get past, in retry.ts's words. */
const TRANSIENT_NETWORK = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    EPIPE: 'connection reset (broken pipe)',
    ETIMEDOUT: 'timed out',
    UND_ERR_CONNECT_TIMEOUT: 'timed out',
    UND_ERR_SOCKET: 'connection reset',
    ENOTFOUND: 'no such host',
    EAI_AGAIN: 'temporary failure in name resolution'
};
/** The transient network failure behind a fetch error, in retry.ts's words; null: another. */
function transientNetworkFailure(error) {
    // Read by shape: AbortSignal's DOMException and undici's errors may come from another realm.
    const failure = error;
    if (failure?.name === 'TimeoutError')
        return 'timed out';
    const code = failure?.code ?? failure?.cause?.code;
    return (typeof code === 'string' && TRANSIENT_NETWORK[code]) || null;
}
/** The variables through which skopeo (Go's net/http) would use a proxy. */
const PROXY_VARIABLES = (/* unused pure expression or super */ null && (['HTTPS_PROXY', 'HTTP_PROXY', 'ALL_PROXY']));
/** Is a proxy configured for this job (any case, as Go and curl read them)? (pure, for tests) */
function proxyConfigured(env) {
    return PROXY_VARIABLES.some(name => Boolean(env[name] || env[name.toLowerCase()]));
}
/**
 * The manifest's bytes under a ref, asked with one GET: its text; null when the registry says
 * it has no such manifest or repository. A transient failure (5xx, 429, a refused or reset
 * connection, a timeout) throws, for the caller's retries: each attempt is one request.
 * undefined when this way cannot tell for sure (a credential helper, an authentication it
 * cannot answer, TLS it cannot verify, any other status): skopeo is asked then, and its answers
 * and errors are the ones the action has always had.
 */
async function http_fetchRawManifest(ref, authFile, timeoutMs, get = httpGet) {
    const parsed = parseReference(ref);
    const registry = parsed.domain;
    // Docker Hub (library/ names, its own limits) and refs without a registry: skopeo's. So is
    // a job behind a proxy: skopeo goes through it, node:http would not.
    if (registry === null || registry === 'docker.io' || proxyConfigured(process.env)) {
        return undefined;
    }
    const { credentials, unsure } = await searchCredentials(registry, authFile);
    if (unsure)
        return undefined;
    const reference = parsed.digest ?? parsed.tag ?? 'latest';
    const url = `${baseUrl(registry)}/v2/${parsed.path}/manifests/${reference}`;
    const ask = (authorization) => get(url, {
        Accept: MANIFEST_TYPES,
        'User-Agent': USER_AGENT,
        ...(authorization ? { Authorization: authorization } : {})
    }, timeoutMs);
    try {
        let response = await ask(null);
        if (response.status === 401) {
            const scopes = [`repository:${parsed.path}:pull`];
            const header = response.header('www-authenticate');
            const authorization = await authorize(header, scopes, credentials, get, timeoutMs);
            if (authorization === null)
                return undefined;
            response = await ask(authorization);
        }
        failIfTransient(response.status, `query ${ref}`);
        const body = response.body.toString('utf8');
        if (response.status === 404)
            return saysMissing(body) ? null : undefined;
        if (response.status !== 200)
            return undefined;
        // The digest is of the bytes: a text that does not give them back is skopeo's to read. A
        // pinned ref's answer must be those very bytes.
        if (!Buffer.from(body, 'utf8').equals(response.body))
            return undefined;
        if (parsed.digest !== null && sha256Digest(body) !== parsed.digest)
            return undefined;
        return body;
    }
    catch (error) {
        if (error instanceof TransientRegistryError)
            throw error;
        const transient = transientNetworkFailure(error);
        if (transient !== null)
            throw new TransientRegistryError(`query ${ref}: ${transient}`);
        core.debug(`${ref}: the registry's API did not answer (${String(error)}); asking skopeo`);
        return undefined;
    }
}

;// CONCATENATED MODULE: ./src/registry/retry.ts
// Retrying registry operations that failed for reasons that are not the user's: connection
// refused or reset, timeouts, 5xx, 429. Authentication, permission and "no such thing"
// failures are final and fail at once.



/**
 * An HTTP status code as registries and their clients print it: after `status`, `code` or
 * `HTTP` (`invalid status code from registry 503`, `HTTP status: 429`). A bare number is not
 * enough: refs, ports and tags in the same text hold digits too (`127.0.0.1:34045`,
 * `app:build-401`), and they must not decide whether a push is retried.
 */
function httpStatusPattern(codes) {
    return new RegExp(`(?:status|code|http)[^\\d\\n]{0,20}\\b(?:${codes})\\b`, 'i');
}
const FINAL = [
    [
        /unauthorized|authentication required|(incorrect|invalid) username( or |\/)password/i,
        'unauthorized'
    ],
    [httpStatusPattern('401'), 'unauthorized'],
    [/denied|forbidden/i, 'denied'],
    [httpStatusPattern('403'), 'denied'],
    [/name unknown|repository name not known|\bname invalid\b/i, 'unknown repository name'],
    [
        /manifest invalid|manifest unknown|blob unknown|invalid reference/i,
        'invalid manifest or reference'
    ]
];
const TRANSIENT = [
    [/too ?many ?requests/i, '429 too many requests'],
    [httpStatusPattern('429'), '429 too many requests'],
    [/connection refused/i, 'connection refused'],
    [/connection reset|broken pipe|\bEOF\b/i, 'connection reset'],
    [/timeout|timed out|deadline exceeded/i, 'timeout'],
    [/no such host|temporary failure in name resolution/i, 'name resolution failed'],
    [/internal server error|bad gateway|service unavailable|gateway timeout/i, 'server error (5xx)'],
    [httpStatusPattern('50[0-9]'), 'server error (5xx)']
];
/** The text a failure is judged by: a command's stderr (and message), or an error's message. */
function failureText(error) {
    if (error instanceof CommandError)
        return `${error.stderr}\n${error.message}`;
    return errorMessage(error);
}
/** Decide whether a failure is worth another attempt (pure, for tests). */
function retry_classifyFailure(text) {
    // Final reasons win: "unauthorized" in a 5xx body is still unauthorized.
    for (const [pattern, reason] of FINAL) {
        if (pattern.test(text))
            return { transient: false, reason };
    }
    for (const [pattern, reason] of TRANSIENT) {
        if (pattern.test(text))
            return { transient: true, reason };
    }
    return { transient: false, reason: lastLine(text) };
}
function lastLine(text) {
    return text.trim().split('\n').pop()?.trim() ?? '';
}
const DEFAULT_DELAYS = { baseDelayMs: 1000, maxDelayMs: 30_000 };
/** Exponential backoff with jitter: base * 2^(n-1), plus up to half of it again, capped. */
function backoffMs(attempt, policy, random = Math.random) {
    const exponential = policy.baseDelayMs * 2 ** (attempt - 1);
    return Math.min(policy.maxDelayMs, Math.round(exponential * (1 + random() / 2)));
}
const sleepFor = (ms) => new Promise(resolve => setTimeout(resolve, ms));
/** Error thrown after the last attempt, or at once for a final failure. */
class retry_OperationError extends Error {
    what;
    failure;
    attempts;
    constructor(what, failure, attempts, cause) {
        const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
        super(`${what} failed${tries}: ${failure.reason}`, { cause });
        this.what = what;
        this.failure = failure;
        this.attempts = attempts;
        this.name = 'OperationError';
    }
}
/**
 * Run `operation`, retrying transient failures up to `policy.attempts` attempts in all, each
 * retry logged with its reason.
 */
async function retry_withRetries(what, policy, operation) {
    const sleep = policy.sleep ?? sleepFor;
    for (let attempt = 1;; attempt++) {
        try {
            return await operation();
        }
        catch (error) {
            const failure = retry_classifyFailure(failureText(error));
            if (!failure.transient || attempt >= policy.attempts) {
                throw new retry_OperationError(what, failure, attempt, error);
            }
            const askedSeconds = (await policy.retryAfter?.(error).catch(() => null)) ?? null;
            const delay = askedSeconds !== null
                ? Math.min(askedSeconds * 1000, policy.maxDelayMs)
                : backoffMs(attempt, policy, policy.random);
            const waitText = askedSeconds !== null ? `${askedSeconds} s (Retry-After)` : `${(delay / 1000).toFixed(1)} s`;
            core.warning(`${what}: ${failure.reason} (attempt ${attempt} of ${policy.attempts}); retrying in ${waitText}`);
            await sleep(delay);
        }
    }
}

;// CONCATENATED MODULE: ./src/registry/commands.ts
// Talking to registries through the standard tools on GitHub runners: skopeo for manifest
// queries and daemonless copies, docker for pushes through the daemon.








/** Queries and logins answer in seconds; a registry that has not answered by then never will. */
const QUICK_OPERATION_SECONDS = 30;
/** Tests shorten the quick operations' bound (seconds) through this variable: no input. */
const QUICK_TIMEOUT_VARIABLE = 'NIX_CONTAINER_ACTION_QUICK_TIMEOUT';
/** The quick operations' bound: QUICK_OPERATION_SECONDS unless the test variable says less. */
function quickOperationSeconds(env = process.env) {
    const value = Number(env[QUICK_TIMEOUT_VARIABLE]);
    return Number.isFinite(value) && value > 0 && value < QUICK_OPERATION_SECONDS
        ? value
        : QUICK_OPERATION_SECONDS;
}
/** Pushes and copies move whole images: bounded, but generously. */
const TRANSFER_SECONDS = 3600;

function isLoopbackRegistry(ref) {
    const domain = parseReference(ref).domain;
    return domain !== null && isLoopbackHost(domain);
}
/** skopeo's TLS flag for one side of a copy (`--src-`, `--dest-` or plain for inspect). */
function tlsArgs(side, ref) {
    if (!isLoopbackRegistry(ref))
        return [];
    return [side ? `--${side}-tls-verify=false` : '--tls-verify=false'];
}
/** skopeo's credentials file: the action's own Docker config after it logged in. */
function authArgs(flag, authFile) {
    return authFile ? [flag, authFile] : [];
}
/** Parse a raw manifest (pure, for tests). */
function parseRemoteManifest(raw) {
    const manifest = JSON.parse(raw);
    return {
        digest: sha256Digest(raw),
        mediaType: manifest.mediaType ?? null,
        configDigest: manifest.config?.digest ?? null
    };
}
// What skopeo says when a registry has no such manifest or repository. Matched as phrases, not
// as a bare `404`: the ref in the same text (a port such as 127.0.0.1:34045) may hold those
// digits, and a 503 taken for "not there" would skip the retry and push blind.
const NOT_FOUND = new RegExp([
    'manifest unknown',
    'name unknown',
    'repository name not known',
    '404 not found',
    httpStatusPattern('404').source
].join('|'), 'i');
/** Does skopeo's stderr say the registry has no such manifest (pure, for tests)? */
function isMissingManifest(stderr) {
    return NOT_FOUND.test(stderr);
}
/** The manifest a ref points at, or null when the registry has no such ref. */
async function inspectManifest(ref, authFile) {
    const raw = await inspectRawManifest(ref, authFile);
    return raw === null ? null : parseRemoteManifest(raw);
}
/** The manifest's bytes as the registry serves them, or null when there is no such ref. */
async function inspectRawManifest(ref, authFile) {
    // One GET where the registry's API can answer for sure (most of a skopeo run is its start).
    const answer = await fetchRawManifest(ref, authFile, quickOperationSeconds() * 1000);
    if (answer !== undefined)
        return answer;
    return skopeoInspect(['--raw'], ref, authFile);
}
/** The image config's bytes (`skopeo inspect --config --raw`), or null when there is no such ref. */
async function inspectRawConfig(ref, authFile) {
    return skopeoInspect(['--config', '--raw'], ref, authFile);
}
async function skopeoInspect(flags, ref, authFile) {
    try {
        const { stdout } = await run('skopeo', [
            'inspect',
            ...flags,
            ...authArgs('--authfile', authFile),
            ...tlsArgs(null, ref),
            `docker://${ref}`
        ], { silent: true, timeoutSeconds: quickOperationSeconds() });
        return stdout;
    }
    catch (error) {
        if (error instanceof CommandError && isMissingManifest(error.stderr))
            return null;
        throw error;
    }
}
/** The environment of a skopeo call that may write big temporary files. */
function skopeoTempEnv(tempDir) {
    // containers/image puts them under TMPDIR (/var/tmp by default).
    return { TMPDIR: tempDir };
}
/** `skopeo copy` to a registry; returns the manifest digest it wrote. */
async function skopeoCopy(source, destRef, 
/** Where skopeo may write temporary files, and the digest file (RUNNER_TEMP). */
tempDir, authFile, 
/** More `skopeo copy` options, e.g. `--preserve-digests`. */
extraArgs = []) {
    const fromRegistry = source.startsWith('docker://');
    const sourceTls = fromRegistry ? tlsArgs('src', source.slice('docker://'.length)) : [];
    const digestFile = join(tempDir, `nix-container-digest-${process.pid}`);
    await run('skopeo', [
        'copy',
        '--digestfile',
        digestFile,
        ...extraArgs,
        ...(fromRegistry ? authArgs('--src-authfile', authFile) : []),
        ...authArgs('--dest-authfile', authFile),
        ...sourceTls,
        ...tlsArgs('dest', destRef),
        source,
        `docker://${destRef}`
    ], { env: skopeoTempEnv(tempDir), timeoutSeconds: TRANSFER_SECONDS });
    return (await readFile(digestFile, 'utf8')).trim();
}
/** `v1: digest: sha256:... size: 528` -> the digest. */
function parsePushDigest(stdout) {
    return /digest:\s*(sha256:[a-f0-9]{64})/.exec(stdout)?.[1] ?? null;
}
/** `docker push`; returns the manifest digest it reported. */
async function dockerPush(ref) {
    const { stdout } = await run('docker', ['push', ref], { timeoutSeconds: TRANSFER_SECONDS });
    const digest = parsePushDigest(stdout);
    if (!digest)
        throw new Error(`docker push ${ref} reported no digest:\n${stdout}`);
    return digest;
}
/** `docker login` with the password on stdin (never in argv). */
async function commands_dockerLogin(registry, credentials) {
    await run('docker', ['login', '--username', credentials.username, '--password-stdin', registry], {
        input: credentials.password,
        timeoutSeconds: quickOperationSeconds()
    });
}
async function dockerLogout(registry) {
    await exec_run('docker', ['logout', registry], { timeoutSeconds: quickOperationSeconds() });
}
/** `skopeo login` into the given credentials file, password on stdin. */
async function commands_skopeoLogin(registry, credentials, authFile) {
    const tls = isLoopbackHost(registry) ? ['--tls-verify=false'] : [];
    await run('skopeo', [
        'login',
        '--authfile',
        authFile,
        ...tls,
        '--username',
        credentials.username,
        '--password-stdin',
        registry
    ], { input: credentials.password, timeoutSeconds: quickOperationSeconds() });
}
async function skopeoLogout(registry, authFile) {
    await exec_run('skopeo', ['logout', '--authfile', authFile, registry], {
        timeoutSeconds: quickOperationSeconds()
    });
}
/**
 * How long a registry that answered 429 asks to wait: its Retry-After on the API root, which
 * docker and skopeo do not print. Seconds, or null when it does not say.
 */
async function probeRetryAfter(registry) {
    const scheme = isLoopbackHost(registry) ? 'http' : 'https';
    const response = await fetch(`${scheme}://${registry}/v2/`, { signal: AbortSignal.timeout(5000) });
    await response.body?.cancel();
    return response.status === 429 ? parseRetryAfter(response.headers.get('retry-after')) : null;
}
/** `withRetries` for an operation on `ref`'s registry: a 429 there is waited out as it asks. */
function withRegistryRetries(what, ref, policy, operation) {
    return withRetries(what, { ...policy, retryAfter: retryAfterFor(ref) }, operation);
}
/** For a 429, ask the ref's registry how long to wait. */
function retryAfterFor(ref) {
    return async (error) => {
        const text = errorMessage(error);
        const domain = parseReference(ref).domain;
        if (!domain || !classifyFailure(text).reason.startsWith('429'))
            return null;
        return probeRetryAfter(domain);
    };
}
/** `Retry-After: 3` or an HTTP date -> seconds (pure, for tests). */
function parseRetryAfter(value, now = Date.now()) {
    if (value === null || value.trim() === '')
        return null;
    if (/^\d+$/.test(value.trim()))
        return Number(value.trim());
    const date = Date.parse(value);
    return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - now) / 1000));
}

;// CONCATENATED MODULE: ./src/stages/login.ts
// Registry login for the push stage. The action logs in through a private copy of the Docker
// config under RUNNER_TEMP: the user's own config is never written, logins made earlier in the
// job (docker/login-action) are used as they are, and the post step's logout plus the removal
// of that directory leave no credentials behind, whatever happened in between.









const GHCR = 'ghcr.io';
/** The Docker config the user's docker commands read. */
function userDockerConfigDir() {
    return process.env.DOCKER_CONFIG || join(homedir(), '.docker');
}
function authFileOf(session) {
    return (0,external_node_path_.join)(session.configDir, 'config.json');
}
/** Which registries to log in to, with which credentials (pure, for tests). */
function planLogins(options, existingLogins) {
    const domains = [...new Set(options.refs.map(ref => parseReference(ref).domain ?? 'docker.io'))];
    if (options.credentials) {
        const registries = options.registry ? [options.registry] : domains;
        return registries.map(registry => ({
            registry,
            credentials: options.credentials,
            as: options.credentials?.username ?? ''
        }));
    }
    // ghcr.io with no credentials given: the workflow's own token, unless already logged in.
    const { githubToken, githubActor } = options;
    if (!githubToken || !githubActor || !domains.includes(GHCR) || existingLogins.includes(GHCR)) {
        return [];
    }
    return [
        {
            registry: GHCR,
            credentials: { username: githubActor, password: githubToken },
            as: `${githubActor} with github-token`
        }
    ];
}
/** Registries the user's Docker config already holds credentials for. */
async function existingLogins(configDir) {
    const config = await readDockerConfig(configDir);
    return [...Object.keys(config.auths ?? {}), ...Object.keys(config.credHelpers ?? {})];
}
async function readDockerConfig(configDir) {
    try {
        return JSON.parse(await readFile(join(configDir, 'config.json'), 'utf8'));
    }
    catch {
        return {};
    }
}
/**
 * A private copy of the user's Docker config, without credential helpers, so that the logins
 * made here land in this file alone (and leave with it).
 */
async function makePrivateConfig(configDir) {
    const config = await readDockerConfig(userDockerConfigDir());
    delete config.credsStore;
    delete config.credHelpers;
    await mkdir(configDir, { recursive: true, mode: 0o700 });
    await writeFile(join(configDir, 'config.json'), JSON.stringify(config, null, 2), { mode: 0o600 });
}
function loginHint(registry) {
    return registry === GHCR
        ? 'Check that the token has packages: write (permissions: packages: write in the workflow)'
        : 'Check the username and password';
}
/** Log in where needed; null when nothing needed a login (earlier logins are used as they are). */
async function loginToRegistries(options) {
    const plan = planLogins(options, await existingLogins(userDockerConfigDir()));
    if (plan.length === 0) {
        core.info('No credentials given: using the logins already in the Docker config, if any');
        return null;
    }
    const session = {
        configDir: join(actionTempDir(options.tempDir), 'docker-config'),
        tool: options.tool,
        registries: []
    };
    await makePrivateConfig(session.configDir);
    // From here on, this process's docker commands read the private config.
    process.env.DOCKER_CONFIG = session.configDir;
    options.saveSession(session);
    for (const login of plan) {
        core.info(`Logging in to ${login.registry} as ${login.as}`);
        session.registries.push(login.registry);
        options.saveSession(session);
        await loginOnce(login, session, options.retry);
    }
    return session;
}
async function loginOnce(login, session, retry) {
    try {
        await withRetries(`login to ${login.registry}`, retry, () => session.tool === 'skopeo'
            ? skopeoLogin(login.registry, login.credentials, authFileOf(session))
            : dockerLogin(login.registry, login.credentials));
    }
    catch (error) {
        if (error instanceof OperationError && !error.failure.transient) {
            throw new Error(`${error.message}. ${loginHint(login.registry)}`);
        }
        throw error;
    }
}
/** Undo a session: log out of each registry, then remove the private config. Never throws. */
async function logoutOfRegistries(session) {
    process.env.DOCKER_CONFIG = session.configDir;
    for (const registry of session.registries) {
        try {
            if (session.tool === 'skopeo')
                await skopeoLogout(registry, authFileOf(session));
            else
                await dockerLogout(registry);
            src_core/* info */.pq(`Logged out of ${registry}`);
        }
        catch (error) {
            src_core/* warning */.$e(`logout of ${registry}: ${(0,errors/* errorMessage */.g)(error)}`);
        }
    }
    await (0,promises_.rm)(session.configDir, { recursive: true, force: true });
}

// EXTERNAL MODULE: external "node:timers/promises"
var external_node_timers_promises_ = __webpack_require__(8500);
;// CONCATENATED MODULE: ./src/stages/test.ts
// The test stage: run the loaded image before anything is pushed. `test` runs a command in it
// (`docker run --rm <image> <args>`); `test-url` starts the image's own command and waits until
// a URL answers 2xx. Each container is named, recorded through `onContainer` (so that post
// removes one a killed main left behind) and removed with `docker rm --force` on a timeout, on
// SIGINT/SIGTERM and in a finally: it never outlives the step.






/** Every test container carries this label (and a `nix-container-test-` name). */
const CONTAINER_LABEL = 'nix-container-action.test';
const OUTPUT_TAIL_LINES = 20;
const OUTPUT_TAIL_CHARS = 4000;
/** How much output is kept while a container runs: enough for the tail. */
const OUTPUT_KEPT_CHARS = (/* unused pure expression or super */ null && (64 * 1024));
const POLL_INTERVAL_MS = 500;
/** One request may take this long before it counts as no answer. */
const PROBE_TIMEOUT_MS = 5000;
/** A signal's cleanup gets this long before the process exits anyway. */
const SIGNAL_CLEANUP_MS = 10_000;
function containerName(random = randomBytes(6).toString('hex')) {
    return `nix-container-test-${random}`;
}
/** What every test container gets: our name and label, and never a pull of another image. */
function ownContainerArgs(name) {
    return ['--name', name, '--label', CONTAINER_LABEL, '--pull', 'never'];
}
/** `docker run` for `test`: the arguments go after the image, as with `docker run` itself. */
function commandRunArgs(name, image, command) {
    return ['run', '--rm', ...ownContainerArgs(name), image, ...command];
}
/**
 * `docker run` for `test-url`: the image's own command, detached, on the runner's network, so
 * that the URL is fetched as written (`localhost:<port>` is the server's own port) whether the
 * daemon has a bridge or not, and a server that listens on 127.0.0.1 is reachable too.
 */
function serverRunArgs(name, image) {
    return ['run', '--detach', ...ownContainerArgs(name), '--network', 'host', image];
}
/** What an exit code of `docker run` means when docker itself chose it. */
function describeExit(exitCode) {
    const meanings = {
        125: 'docker could not run the container',
        126: 'the command in the image could not be invoked',
        127: 'the command was not found in the image',
        137: 'the container was killed'
    };
    const meaning = meanings[exitCode];
    return `exited with code ${exitCode}${meaning ? ` (${meaning})` : ''}`;
}
function describeProbe(probe) {
    return 'status' in probe ? `HTTP ${probe.status}` : probe.error;
}
/** After one request to the URL: passed, failed, or ask again. */
function decidePoll(state) {
    const { probe, container } = state;
    if ('status' in probe && probe.status >= 200 && probe.status < 300) {
        return { next: 'passed', status: probe.status };
    }
    const last = `last answer: ${describeProbe(probe)}`;
    if (container !== null && !container.running) {
        const how = container.exitCode === null ? 'is gone' : describeExit(container.exitCode);
        return { next: 'failed', reason: `was never answered 2xx: the container ${how} (${last})` };
    }
    if (state.elapsedSeconds >= state.timeoutSeconds) {
        return {
            next: 'failed',
            reason: `did not answer 2xx within ${state.timeoutSeconds} s (${last})`
        };
    }
    return { next: 'wait' };
}
/** `docker inspect --format '{{.State.Status}} {{.State.ExitCode}}'`; null when there is none. */
function parseContainerState(stdout) {
    const [status, code] = (stdout ?? '').trim().split(/\s+/);
    if (status === 'running' || status === 'created' || status === 'restarting') {
        return { running: true };
    }
    const exitCode = code !== undefined && /^-?\d+$/.test(code) ? Number(code) : null;
    return { running: false, exitCode: status ? exitCode : null };
}
/** The last lines of a container's output, bounded in length, for an error message. */
function outputTail(output) {
    const tail = tailLines(output, OUTPUT_TAIL_LINES);
    return tail.length > OUTPUT_TAIL_CHARS ? `...${tail.slice(-OUTPUT_TAIL_CHARS)}` : tail;
}
/** The step's error: what failed and how, that nothing was pushed, and the output's tail. */
function testFailureMessage(failure) {
    const tail = outputTail(failure.output);
    const output = tail ? `The container's last output:\n${tail}` : 'The container printed nothing.';
    return `${failure.what} ${failure.reason}, so nothing was pushed. ${output}`;
}
/** The summary's line: `passed: ...`. */
function describeTest(result, options) {
    const parts = [];
    if (result.command) {
        parts.push(`\`${options.command.join(' ')}\` exited 0 in ${result.command.seconds.toFixed(1)} s`);
    }
    if (result.url) {
        parts.push(`${options.url ?? ''} answered ${result.url.status} after ${result.url.seconds.toFixed(1)} s`);
    }
    return `passed: ${parts.join('; ')}`;
}
async function testImage(options) {
    const command = options.command.length > 0 ? await testCommand(options) : null;
    const url = options.url !== null ? await testUrl(options, options.url) : null;
    return { command, url };
}
/** `docker run --rm <image> <command>`, bounded by the timeout. */
async function testCommand(options) {
    const name = containerName();
    const what = `The test \`${options.command.join(' ')}\``;
    return withContainer(name, options.onContainer, async () => {
        let output = '';
        // Set when the timeout removed the container (which ends `docker run`).
        const stopped = { removal: null };
        const started = performance.now();
        const timer = setTimeout(() => {
            core.info(`Still running after ${options.timeoutSeconds} s: removing ${name}`);
            stopped.removal = removeContainer(name);
        }, options.timeoutSeconds * 1000);
        let exitCode;
        try {
            ;
            ({ exitCode } = await run('docker', commandRunArgs(name, options.image, options.command), {
                allowFailure: true,
                onOutput: text => {
                    output = (output + text).slice(-OUTPUT_KEPT_CHARS);
                }
            }));
        }
        finally {
            clearTimeout(timer);
        }
        const seconds = (performance.now() - started) / 1000;
        if (stopped.removal !== null) {
            await stopped.removal;
            const reason = `did not finish within ${options.timeoutSeconds} s: its container was stopped and removed`;
            throw new Error(testFailureMessage({ what, reason, output }));
        }
        if (exitCode !== 0) {
            throw new Error(testFailureMessage({ what, reason: describeExit(exitCode), output }));
        }
        core.info(`${what} exited 0 in ${seconds.toFixed(1)} s`);
        return { seconds };
    });
}
/** The image's own command, detached, until the URL answers 2xx or the timeout passes. */
async function testUrl(options, url) {
    const name = containerName();
    const what = `The test-url ${url}`;
    return withContainer(name, options.onContainer, async () => {
        core.info(`Starting the image's own command (container ${name}, host network); waiting up to ` +
            `${options.timeoutSeconds} s for ${url} to answer 2xx`);
        let output = '';
        const keep = (text) => {
            output = (output + text).slice(-OUTPUT_KEPT_CHARS);
        };
        const start = await run('docker', serverRunArgs(name, options.image), {
            allowFailure: true,
            onOutput: keep
        });
        if (start.exitCode !== 0) {
            const reason = `could not start: \`docker run\` ${describeExit(start.exitCode)}`;
            throw new Error(testFailureMessage({ what, reason, output }));
        }
        const started = performance.now();
        const elapsed = () => (performance.now() - started) / 1000;
        let decision = { next: 'wait' };
        while (decision.next === 'wait') {
            const remainingMs = (options.timeoutSeconds - elapsed()) * 1000;
            const probe = await probeUrl(url, Math.max(100, Math.min(PROBE_TIMEOUT_MS, remainingMs)));
            const answered = 'status' in probe && probe.status >= 200 && probe.status < 300;
            const container = answered ? null : await containerState(name);
            decision = decidePoll({
                url,
                probe,
                container,
                elapsedSeconds: elapsed(),
                timeoutSeconds: options.timeoutSeconds
            });
            if (decision.next === 'wait') {
                await sleep(Math.max(0, Math.min(POLL_INTERVAL_MS, (options.timeoutSeconds - elapsed()) * 1000)));
            }
        }
        const seconds = elapsed();
        core.info(`The container's log:`);
        output = '';
        await run('docker', ['logs', name], { allowFailure: true, onOutput: keep });
        if (decision.next === 'failed') {
            throw new Error(testFailureMessage({ what, reason: decision.reason, output }));
        }
        core.info(`${url} answered ${decision.status} after ${seconds.toFixed(1)} s`);
        return { status: decision.status, seconds };
    });
}
/** One GET of the URL: its status (after redirects), or why there was none. */
async function probeUrl(url, timeoutMs) {
    const limitMs = Math.max(1, Math.ceil(timeoutMs));
    try {
        const response = await fetch(url, { signal: AbortSignal.timeout(limitMs) });
        await response.body?.cancel();
        return { status: response.status };
    }
    catch (error) {
        // fetch's errors may come from another realm (jest's VM): read them, don't instanceof them.
        const { name, cause } = (error ?? {});
        if (name === 'TimeoutError')
            return { error: `no answer within ${(limitMs / 1000).toFixed(1)} s` };
        const reason = (cause ?? {});
        if (typeof reason.code === 'string')
            return { error: reason.code };
        if (typeof reason.message === 'string')
            return { error: reason.message };
        return { error: errorMessage(error) };
    }
}
async function containerState(name) {
    const { exitCode, stdout } = await run('docker', ['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', name], { allowFailure: true, silent: true });
    return parseContainerState(exitCode === 0 ? stdout : null);
}
/**
 * Run `work` while the container `name` may exist: it is recorded first, and removed
 * afterwards however `work` ends, or at once when the step is cancelled (SIGINT, SIGTERM).
 */
async function withContainer(name, onContainer, work) {
    onContainer?.(name);
    const onSignal = (signal) => {
        const code = 128 + (constants.signals[signal] ?? 0);
        core.info(`${signal}: removing the test container ${name} before exiting`);
        setTimeout(() => process.exit(code), SIGNAL_CLEANUP_MS).unref();
        void removeContainer(name).finally(() => process.exit(code));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
        return await work();
    }
    finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await removeContainer(name);
        onContainer?.(null);
    }
}
/**
 * `docker rm --force`: stops and removes a test container; true when there was one. Never
 * throws (it runs in finally blocks, signal handlers and the post step): a failure is a warning.
 */
async function removeContainer(name) {
    try {
        const result = await exec_run('docker', ['rm', '--force', name], {
            allowFailure: true,
            silent: true
        });
        // A container that is not there: exit 0 (or 1 before docker 23), "No such container".
        if (/no such container/i.test(result.stderr))
            return false;
        if (result.exitCode !== 0) {
            src_core/* warning */.$e(`could not remove the test container ${name}: ${exec_tailLines(result.stderr, 5)}`);
            return false;
        }
        return result.stdout.trim() !== '';
    }
    catch (error) {
        src_core/* warning */.$e(`could not remove the test container ${name}: ${(0,errors/* errorMessage */.g)(error)}`);
        return false;
    }
}

;// CONCATENATED MODULE: ./src/nix/release.ts
// Which Nix release tarball to fetch and how to check it: pure decisions, tested table-driven.
/** The release installed when `nix-version` is not given. */
const release_PINNED_NIX_VERSION = '2.35.2';
/**
 * SHA-256 of the official release tarballs, as published in each release's `install` script
 * (`hash=` beside `path=.../nix-<version>-<system>.tar.xz`). Only versions whose sums were
 * checked against more than one published copy belong here; any other version is checked
 * against the `.sha256` file published beside its tarball.
 */
const PINNED_CHECKSUMS = {
    '2.35.2': {
        'x86_64-linux': '0c3960a9792331a22081c3c7a5d8465db9b17c50b3acdf18587fa4c6f2cb1158',
        'aarch64-linux': '4d0302a2910f5eec1c33b8deef634f04899a75737e7001ec49908d003ae5efda'
    }
};
const OFFICIAL_RELEASES = 'https://releases.nixos.org/nix';
/** A version as releases.nixos.org names them: `2.35.2`. */
const release_NIX_VERSION_PATTERN = /^\d+\.\d+\.\d+$/;
/** The Nix system of this runner; installing is supported on Linux x86_64 and aarch64 only. */
function nixSystem(platform, arch) {
    if (platform === 'linux' && arch === 'x64')
        return 'x86_64-linux';
    if (platform === 'linux' && arch === 'arm64')
        return 'aarch64-linux';
    if (platform === 'darwin') {
        // A macOS install needs its own APFS volume for /nix: not done here yet.
        throw new Error('installing Nix on macOS is not supported yet: install Nix in an earlier step ' +
            '(this action then finds it), or use a Linux runner');
    }
    throw new Error(`installing Nix is not supported on ${platform}/${arch}: only Linux x86_64 and aarch64; ` +
        'install Nix in an earlier step and this action finds it');
}
/** `nix-2.35.2-x86_64-linux`: the tarball's name without `.tar.xz`, and its top directory. */
function releaseName(version, system) {
    return `nix-${version}-${system}`;
}
/**
 * Where to download the tarball. `install-url` is either the tarball itself (ends in `.tar.xz`)
 * or a mirror of releases.nixos.org/nix, to which `nix-<v>/nix-<v>-<system>.tar.xz` is added.
 */
function releaseUrl(version, system, installUrl) {
    if (installUrl !== null && installUrl.endsWith('.tar.xz'))
        return installUrl;
    const base = (installUrl ?? OFFICIAL_RELEASES).replace(/\/+$/, '');
    return `${base}/nix-${version}/${releaseName(version, system)}.tar.xz`;
}
/** The pinned sum when there is one (a mirror must serve the same bytes), else `<url>.sha256`. */
function checksumSource(version, system, url) {
    const pinned = PINNED_CHECKSUMS[version]?.[system];
    return pinned ? { kind: 'pinned', sha256: pinned } : { kind: 'published', url: `${url}.sha256` };
}
/** The hex digest in a `.sha256` file: a bare digest, or `sha256sum` output. */
function parseSha256File(text) {
    const digest = /^\s*([0-9a-fA-F]{64})(?:\s|$)/.exec(text)?.[1];
    if (!digest) {
        throw new Error(`is not a SHA-256 checksum file (it starts ${JSON.stringify(text.slice(0, 40))})`);
    }
    return digest.toLowerCase();
}
/**
 * Which of the tarball's store paths are Nix and the CA bundle. The tarball's `install` script
 * names them (`nix="/nix/store/..."`); without it, the entry named `<hash>-nix-<version>`.
 */
function releaseLayout(installScript, storeEntries, version) {
    const assigned = (name) => new RegExp(`^${name}="(/nix/store/[^"/]+)"\\s*$`, 'm').exec(installScript ?? '')?.[1] ?? null;
    const byName = (pattern) => {
        const entry = storeEntries.find(e => pattern.test(e));
        return entry ? `/nix/store/${entry}` : null;
    };
    const escaped = version.replace(/\./g, '\\.');
    const nix = assigned('nix') ?? byName(new RegExp(`^[a-z0-9]{32}-nix-${escaped}$`));
    if (!nix) {
        throw new Error(`the tarball holds no store path for Nix ${version} (no nix= line in its install script, ` +
            `no store/<hash>-nix-${version})`);
    }
    const base = (path) => path.slice('/nix/store/'.length);
    if (!storeEntries.includes(base(nix))) {
        throw new Error(`the tarball's install script names ${nix}, which is not in its store/`);
    }
    const cacert = assigned('cacert') ?? byName(/^[a-z0-9]{32}-nss-cacert-/);
    return { nix, cacert: cacert && storeEntries.includes(base(cacert)) ? cacert : null };
}

;// CONCATENATED MODULE: ./src/image/platform.ts
// Platforms (os/architecture/variant) as OCI image configs and indexes name them, and how
// they map to Nix systems: the index entry of each image is read from its own config, and a
// config that names another architecture than the system it was built for is an error.
// Nix system -> the platform an image built for it must declare (GOARCH names, as OCI uses).
const SYSTEM_PLATFORMS = {
    'x86_64-linux': { os: 'linux', architecture: 'amd64' },
    'aarch64-linux': { os: 'linux', architecture: 'arm64' },
    'i686-linux': { os: 'linux', architecture: '386' },
    'armv7l-linux': { os: 'linux', architecture: 'arm', variant: 'v7' },
    'armv6l-linux': { os: 'linux', architecture: 'arm', variant: 'v6' },
    'riscv64-linux': { os: 'linux', architecture: 'riscv64' },
    'powerpc64le-linux': { os: 'linux', architecture: 'ppc64le' },
    's390x-linux': { os: 'linux', architecture: 's390x' },
    'x86_64-darwin': { os: 'darwin', architecture: 'amd64' },
    'aarch64-darwin': { os: 'darwin', architecture: 'arm64' }
};
// Node's process.arch -> the Nix system of a Linux runner.
const NODE_ARCH_SYSTEMS = {
    x64: 'x86_64-linux',
    arm64: 'aarch64-linux',
    ia32: 'i686-linux',
    arm: 'armv7l-linux',
    riscv64: 'riscv64-linux',
    ppc64: 'powerpc64le-linux',
    s390x: 's390x-linux'
};
/** `linux/arm64`, `linux/arm/v7` */
function formatPlatform(platform) {
    const { os, architecture, variant } = platform;
    return variant ? `${os}/${architecture}/${variant}` : `${os}/${architecture}`;
}
/** The os, architecture and variant of an image config (pure, for tests). */
function platformOfConfig(configJson) {
    let config;
    try {
        config = JSON.parse(configJson);
    }
    catch {
        throw new Error('the image config is not valid JSON');
    }
    const os = typeof config.os === 'string' ? config.os : '';
    const architecture = typeof config.architecture === 'string' ? config.architecture : '';
    if (os === '' || architecture === '') {
        throw new Error(`the image config names no platform (os ${JSON.stringify(os)}, ` +
            `architecture ${JSON.stringify(architecture)})`);
    }
    const variant = typeof config.variant === 'string' && config.variant ? config.variant : null;
    return variant ? { os, architecture, variant } : { os, architecture };
}
/** The platform a Nix system's image declares, or null for a system this table lacks. */
function platformOfSystem(system) {
    return SYSTEM_PLATFORMS[system] ?? null;
}
/** The Nix system of a platform, or '' when no system in the table has it. */
function systemOfPlatform(platform) {
    const key = formatPlatform(normalise(platform));
    const found = Object.entries(SYSTEM_PLATFORMS).find(([, p]) => formatPlatform(p) === key);
    return found?.[0] ?? '';
}
/** The Nix system of the machine this runs on (a Linux runner). */
function platform_runnerSystem(arch = process.arch) {
    return NODE_ARCH_SYSTEMS[arch] ?? null;
}
/** arm64's variant is v8 whether written or not; other variants are kept. */
function normalise(platform) {
    if (platform.architecture === 'arm64' && platform.variant === 'v8') {
        return { os: platform.os, architecture: 'arm64' };
    }
    return platform;
}
function samePlatform(a, b) {
    return formatPlatform(normalise(a)) === formatPlatform(normalise(b));
}
/**
 * An image built for `system` must say so in its config (nixpkgs issues #106695, #87345: an
 * image claiming the wrong architecture is pulled on machines that cannot run it).
 */
function checkPlatformOfSystem(system, platform, what) {
    const expected = platformOfSystem(system);
    if (expected === null)
        return;
    const sameArch = expected.os === platform.os &&
        expected.architecture === platform.architecture &&
        (expected.variant === undefined || samePlatform(expected, platform));
    if (!sameArch) {
        throw new Error(`${what} was built for ${system}, but its config says ${formatPlatform(platform)} ` +
            `(an image for ${system} must say ${formatPlatform(expected)}): ` +
            'set "architecture" (and "os") in the image config to match the system');
    }
}
/** Two images of one platform cannot share an index: name both (pure, for tests). */
function checkDistinctPlatforms(images) {
    for (const [i, image] of images.entries()) {
        const earlier = images.slice(0, i).find(other => samePlatform(other.platform, image.platform));
        if (earlier) {
            throw new Error(`${earlier.name} and ${image.name} are both ${formatPlatform(image.platform)}: ` +
                'an image index holds one image per platform');
        }
    }
}

// EXTERNAL MODULE: external "node:stream"
var external_node_stream_ = __webpack_require__(7075);
;// CONCATENATED MODULE: ./src/image/layer-compression.ts
// How pushed layers are compressed (`compression`, `compression-level`): what each tool is told,
// and the compressor the action runs itself when it writes layers (docker's containerd store).



const layer_compression_LAYER_COMPRESSION_FORMATS = (/* unused pure expression or super */ null && (['gzip', 'zstd']));
/** The levels each format takes (zstd's ultra levels 20-22 need more memory than runners spare). */
const layer_compression_COMPRESSION_LEVELS = {
    gzip: { min: 1, max: 9 },
    zstd: { min: 1, max: 19 }
};
const DEFAULT_LAYER_COMPRESSION = { format: 'gzip', level: null };
/** Media types of a layer compressed so, in the manifest format that carries it. */
function layerMediaType(format) {
    return format === 'gzip'
        ? 'application/vnd.docker.image.rootfs.diff.tar.gzip'
        : 'application/vnd.oci.image.layer.v1.tar+zstd';
}
/**
 * `skopeo copy` flags for layers compressed so (pure, for tests). zstd layers need an OCI
 * manifest: Docker's schema 2 has no media type for them.
 */
function skopeoCompressionArgs(compression) {
    return [
        '--dest-compress',
        '--dest-compress-format',
        compression.format,
        ...(compression.level === null ? [] : ['--dest-compress-level', String(compression.level)]),
        ...(compression.format === 'zstd' ? ['--format', 'oci'] : [])
    ];
}
const zstdOfZlib = external_node_zlib_.createZstdCompress;
const ZSTD_LEVEL_PARAMETER = 100; // ZSTD_c_compressionLevel
const DEFAULT_ZSTD_LEVEL = 3;
/** A stream that compresses what is written to it. */
function compressor(compression) {
    if (compression.format === 'gzip') {
        return zlib.createGzip(compression.level === null ? {} : { level: compression.level });
    }
    const level = compression.level ?? DEFAULT_ZSTD_LEVEL;
    if (zstdOfZlib)
        return zstdOfZlib({ params: { [ZSTD_LEVEL_PARAMETER]: level } });
    return zstdProgram(level);
}
/** The zstd program as a duplex stream: its stdin written, its stdout read. */
function zstdProgram(level) {
    const child = spawn('zstd', ['-q', '-c', `-${level}`], { stdio: ['pipe', 'pipe', 'inherit'] });
    const duplex = Duplex.from({ writable: child.stdin, readable: child.stdout });
    child.on('error', error => duplex.destroy(error));
    child.on('close', code => {
        if (code !== 0)
            duplex.destroy(new Error(`zstd exited with code ${code}`));
    });
    return duplex;
}

// EXTERNAL MODULE: ./node_modules/tweetnacl/nacl-fast.js
var nacl_fast = __webpack_require__(668);
;// CONCATENATED MODULE: ./src/signing/cosign-key.ts
// The `signing-key` input: a cosign/sigstore private key as `cosign generate-key-pair` writes
// it. A PEM block (`ENCRYPTED SIGSTORE PRIVATE KEY`, cosign >= 2.0.1, or the older
// `ENCRYPTED COSIGN PRIVATE KEY`) whose body is go-securesystemslib's `encrypted` JSON:
// scrypt derives a 32-byte key from the passphrase, NaCl secretbox (XSalsa20-Poly1305) holds
// the PKCS#8 DER private key. Decrypted here, in memory, once: nothing is written to disk.
//
// Errors never carry the key, the passphrase or anything decoded from them (not even a JSON
// parser's message, which quotes its input): only a fixed reason.


const SIGSTORE_PEM_TYPE = 'ENCRYPTED SIGSTORE PRIVATE KEY';
const COSIGN_PEM_TYPE = 'ENCRYPTED COSIGN PRIVATE KEY';
const PEM_TYPES = [SIGSTORE_PEM_TYPE, COSIGN_PEM_TYPE];
/**
 * The scrypt parameters go-securesystemslib accepts (legacy, what cosign wrote before, and
 * skopeo 1.9 reads alone; standard; OWASP): anything else is refused before scrypt runs, as
 * there, so that a crafted key cannot make the step spend minutes or gigabytes.
 */
const SCRYPT_PARAMETERS = [
    { N: 32768, r: 8, p: 1 },
    { N: 65536, r: 8, p: 1 },
    { N: 131072, r: 8, p: 1 }
];
const BOX_KEY_BYTES = 32;
const BOX_NONCE_BYTES = 24;
/** A key that cannot be used; the message says why and holds nothing of the key. */
class cosign_key_SigningKeyError extends Error {
    input;
    constructor(message, 
    /** Which input is at fault: the key itself or its passphrase. */
    input) {
        super(message);
        this.input = input;
        this.name = 'SigningKeyError';
    }
}
/** The PEM block's type and body; the one block there must be. */
function readPem(text) {
    const match = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)\r?\n?-----END \1-----/.exec(text);
    if (!match) {
        throw new cosign_key_SigningKeyError('is not a PEM private key: give the whole cosign.key file (cosign generate-key-pair), ' +
            `from -----BEGIN ${SIGSTORE_PEM_TYPE}----- to its END line`, 'signing-key');
    }
    const type = match[1];
    if (!PEM_TYPES.includes(type)) {
        throw new cosign_key_SigningKeyError(`is a PEM block of type "${type}", not a cosign key: give a key of type ` +
            `${SIGSTORE_PEM_TYPE} or ${COSIGN_PEM_TYPE} (cosign generate-key-pair)`, 'signing-key');
    }
    const base64 = match[2].replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) {
        throw new cosign_key_SigningKeyError('is not a valid PEM block: its body is not base64', 'signing-key');
    }
    return { type, body: Buffer.from(base64, 'base64') };
}
const notEncrypted = () => new cosign_key_SigningKeyError("is not an encrypted cosign key: its body is not go-securesystemslib's encrypted JSON " +
    '(kdf scrypt, cipher nacl/secretbox)', 'signing-key');
function bytes(value) {
    if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value))
        throw notEncrypted();
    return Buffer.from(value, 'base64');
}
/** go-securesystemslib's `encrypted` JSON, checked field by field (Go's []byte is base64). */
function readEncrypted(body) {
    let json;
    try {
        json = JSON.parse(body.toString('utf8'));
    }
    catch {
        throw notEncrypted();
    }
    const data = json;
    if (typeof data !== 'object' || data === null || !data.kdf || !data.cipher)
        throw notEncrypted();
    if (data.kdf.name !== 'scrypt' || data.cipher.name !== 'nacl/secretbox') {
        throw new cosign_key_SigningKeyError(`is encrypted with kdf ${JSON.stringify(data.kdf.name)} and cipher ` +
            `${JSON.stringify(data.cipher.name)}; cosign keys use scrypt and nacl/secretbox`, 'signing-key');
    }
    const { N, r, p } = data.kdf.params ?? {};
    const params = SCRYPT_PARAMETERS.find(known => known.N === N && known.r === r && known.p === p);
    if (!params) {
        throw new cosign_key_SigningKeyError(`has scrypt parameters N=${String(N)}, r=${String(r)}, p=${String(p)}, which cosign never ` +
            `writes (accepted: ${SCRYPT_PARAMETERS.map(k => `N=${k.N}`).join(', ')} with r=8, p=1)`, 'signing-key');
    }
    const nonce = bytes(data.cipher.nonce);
    if (nonce.length !== BOX_NONCE_BYTES)
        throw notEncrypted();
    return {
        kdf: { name: 'scrypt', params, salt: bytes(data.kdf.salt) },
        cipher: { name: 'nacl/secretbox', nonce },
        ciphertext: bytes(data.ciphertext)
    };
}
/** The secretbox key: scrypt over the passphrase. */
function boxKey(passphrase, kdf) {
    const { N, r, p } = kdf.params;
    // scrypt needs 128 * N * r bytes (128 MiB at N=131072); Node's default limit is 32 MiB.
    return scryptSync(Buffer.from(passphrase, 'utf8'), kdf.salt, BOX_KEY_BYTES, {
        N,
        r,
        p,
        maxmem: 2 * 128 * N * r
    });
}
/**
 * Decrypt a cosign private key. Wrong passphrase, wrong format or a key type that cannot sign
 * a cosign signature throw SigningKeyError, naming the input at fault.
 */
function cosign_key_readSigningKey(pem, passphrase) {
    const { type, body } = readPem(pem);
    const encrypted = readEncrypted(body);
    const opened = nacl.secretbox.open(encrypted.ciphertext, encrypted.cipher.nonce, boxKey(passphrase, encrypted.kdf));
    if (opened === null) {
        throw new cosign_key_SigningKeyError(passphrase === ''
            ? 'is empty, and the key does not decrypt without a passphrase: give the passphrase ' +
                'it was made with (COSIGN_PASSWORD)'
            : 'does not decrypt signing-key: it is not the passphrase the key was made with', 'signing-passphrase');
    }
    let privateKey;
    try {
        privateKey = createPrivateKey({ key: Buffer.from(opened), format: 'der', type: 'pkcs8' });
    }
    catch {
        throw new cosign_key_SigningKeyError('decrypts to something that is not a PKCS#8 private key', 'signing-key');
    }
    const curve = privateKey.asymmetricKeyDetails?.namedCurve;
    if (privateKey.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
        const what = privateKey.asymmetricKeyType === 'ec'
            ? `an EC key on curve ${String(curve)}`
            : `a ${String(privateKey.asymmetricKeyType)} key`;
        throw new cosign_key_SigningKeyError(`is ${what}: only ECDSA P-256 keys, which cosign generate-key-pair makes, are supported`, 'signing-key');
    }
    return { privateKey, publicKey: createPublicKey(privateKey), pemType: type };
}

;// CONCATENATED MODULE: ./src/nix/builders.ts
// Remote builders: the `builders` input's Nix machine lines, checked before anything runs, the
// nix.conf `builders` value made of them, and what a failed build's log says about them. Pure.
//
// A machine line (Nix's /etc/nix/machines format) has up to 8 whitespace-separated fields, `-`
// for "not given": URI, systems, SSH key file, max jobs, speed factor, supported features,
// mandatory features, the host's public key (base64 of its `.pub` line).
/** Why a line is refused: names the line and the field, never quotes the line (it may hold a pasted key). */
class builders_MachineLineError extends Error {
    line;
    constructor(line, reason) {
        super(`line ${line}: ${reason}`);
        this.line = line;
        this.name = 'MachineLineError';
    }
}
const MACHINE_FIELDS = (/* unused pure expression or super */ null && ([
    'URI',
    'systems',
    'SSH key file',
    'max jobs',
    'speed factor',
    'supported features',
    'mandatory features',
    'host public key'
]));
const SYSTEM = /^[a-z0-9_]+-[a-z0-9_]+$/;
const FEATURE = /^[A-Za-z0-9_.+-]+$/;
// `[user@]host`: what follows ssh:// or ssh-ng:// (Nix passes it to ssh as it is).
const SSH_AUTHORITY = /^([A-Za-z0-9._+-]+@)?[A-Za-z0-9._-]+(:\d+)?$|^([A-Za-z0-9._+-]+@)?\[[0-9A-Fa-f:.]+\](:\d+)?$/;
// The key types OpenSSH writes in a `.pub` line (field 8 decodes to one).
const PUBLIC_KEY_LINE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) AAAA[A-Za-z0-9+/]+={0,2}( .*)?$/;
/** The URIs that reach a builder over SSH: the host key must be pinned for these. */
function isSshUri(uri) {
    return uri.startsWith('ssh://') || uri.startsWith('ssh-ng://') || !uri.includes('://');
}
/**
 * The `builders` input's lines: blank lines and `#` comments skipped, each line checked.
 * `hasKey`: `builder-ssh-key` is given, so a `-` SSH key field means its file.
 */
function builders_parseMachineLines(text, hasKey) {
    const machines = [];
    for (const [index, raw] of text.split(/\r?\n/).entries()) {
        const content = raw.replace(/#.*$/, '').trim();
        if (content === '')
            continue;
        machines.push(parseMachineLine(content, index + 1, hasKey));
    }
    return machines;
}
function parseMachineLine(content, line, hasKey) {
    const fail = (reason) => {
        throw new builders_MachineLineError(line, reason);
    };
    if (/PRIVATE KEY/.test(content) || /^b3BlbnNzaC1rZXktdjE/.test(content)) {
        fail('looks like a private key: give the key in "builder-ssh-key", and "-" in field 3');
    }
    const fields = content.split(/\s+/);
    if (fields.length > MACHINE_FIELDS.length) {
        fail(`has ${fields.length} fields, a machine line at most ${MACHINE_FIELDS.length}: ` +
            `${MACHINE_FIELDS.join(', ')} (separated by white space, "-" for one not given)`);
    }
    const [uri = '', systems = '-', key = '-', maxJobs = '-', speed = '-', supported = '-'] = fields;
    const [mandatory = '-', hostKey = '-'] = fields.slice(6);
    const field = (n, reason) => fail(`field ${n} (${MACHINE_FIELDS[n - 1]}) ${reason}`);
    checkUri(uri, field);
    if (systems !== '-') {
        for (const system of systems.split(',')) {
            if (!SYSTEM.test(system)) {
                field(2, 'is not a comma-separated list of Nix systems such as x86_64-linux,aarch64-linux');
            }
        }
    }
    if (key !== '-' && !key.startsWith('/')) {
        field(3, 'is not an absolute path: give "-" for the "builder-ssh-key" input\'s key, or a file on the runner');
    }
    if (maxJobs !== '-' && !/^\d+$/.test(maxJobs))
        field(4, 'is not a whole number');
    if (speed !== '-' && !(/^\d+(\.\d+)?$/.test(speed) && Number(speed) > 0)) {
        field(5, 'is not a number greater than 0');
    }
    for (const [n, list] of [
        [6, supported],
        [7, mandatory]
    ]) {
        if (list !== '-' && !list.split(',').every(feature => FEATURE.test(feature))) {
            field(n, 'is not a comma-separated list of features such as kvm,big-parallel');
        }
    }
    if (isSshUri(uri))
        checkHostKey(hostKey, field);
    else if (hostKey !== '-')
        checkHostKey(hostKey, field);
    return { line, uri, fields, usesInputKey: key === '-' && hasKey };
}
function checkUri(uri, field) {
    if (uri.startsWith('@')) {
        field(1, 'names a machines file: give the machine lines themselves, one per line');
    }
    const scheme = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/.exec(uri);
    if (scheme && scheme[1] !== 'ssh' && scheme[1] !== 'ssh-ng') {
        field(1, 'is not an ssh:// or ssh-ng:// URI (remote builders are reached over SSH)');
    }
    const authority = scheme ? (scheme[2] ?? '') : uri;
    // Store parameters (`?remote-store=...`, `?remote-program=...`) are Nix's to read.
    const host = authority.replace(/\?.*$/, '');
    if (!SSH_AUTHORITY.test(host)) {
        field(1, 'is not a builder URI such as ssh://builder@host or ssh-ng://builder@host');
    }
}
function checkHostKey(hostKey, field) {
    const how = "the base64 of the host's public key line, as `base64 -w0 /etc/ssh/ssh_host_ed25519_key.pub` " +
        'prints it on the builder (or of `ssh-keyscan -t ed25519 HOST` without the host name)';
    if (hostKey === '-') {
        field(8, `is missing: the builder's host key must be pinned (an SSH builder is never trusted on ` +
            `first use): give ${how}`);
    }
    if (hostKey.startsWith('AAAA')) {
        field(8, `is the key itself, not its whole line: give ${how}`);
    }
    const decoded = /^[A-Za-z0-9+/]+={0,2}$/.test(hostKey)
        ? Buffer.from(hostKey, 'base64').toString('utf8').trim()
        : '';
    if (!PUBLIC_KEY_LINE.test(decoded)) {
        field(8, `is not an SSH public host key: give ${how}`);
    }
}
/**
 * The nix.conf `builders` value: the lines joined with `;` (one conf line), a `-` SSH key field
 * replaced by `keyFile` where the line takes the input's key.
 */
function buildersSetting(machines, keyFile) {
    return machines
        .map(machine => {
        const fields = [...machine.fields];
        if (machine.usesInputKey && keyFile !== null) {
            while (fields.length < 3)
                fields.push('-');
            fields[2] = keyFile;
        }
        return fields.join(' ');
    })
        .join(' ; ');
}
// build-remote's "cannot build on 'URI': <error>", up to the next message of its own.
const CANNOT_BUILD = /^cannot build on '([^']+)': ([\s\S]*?)(?=^cannot build on '|^Failed to find a machine|^error:|(?![\s\S]))/gm;
const HOST_KEY_CHANGED = /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/;
/** Each builder Nix gave up on in this log, with what it said (one per builder, last kept). */
function builderFailures(log) {
    const found = new Map();
    for (const match of log.matchAll(CANNOT_BUILD)) {
        const uri = match[1] ?? '';
        const said = (match[2] ?? '').trim();
        found.set(uri, summarise(said));
    }
    // Nix 2.8 prints ssh's own complaint on a line of its own, before any "cannot build on".
    if (found.size === 0 && /^Host key verification failed\.$/m.test(log)) {
        found.set('', 'Host key verification failed.');
    }
    return [...found].map(([uri, said]) => ({ uri, said }));
}
/** ssh's host key banner is twenty lines: say what it means, keep the rest short. */
function summarise(said) {
    if (HOST_KEY_CHANGED.test(said)) {
        const head = said.split('\n')[0]?.replace(/@+$/, '').trim() ?? '';
        return `${head} the host key the builder offered is not the one in field 8 of its line (Host key verification failed)`;
    }
    return said.split('\n').slice(0, 6).join('\n');
}
const UNTRUSTED = /ignoring the client-specified setting 'builders'/;
/** The daemon dropped our `builders` setting: the runner user is not a trusted user. */
function daemonIgnoredBuilders(log) {
    return UNTRUSTED.test(log);
}
/** Why a daemon ignores `builders`, and the ways out. */
function untrustedDaemonMessage(user) {
    return (`the Nix daemon does not trust ${user}, so it ignores the builders this job sets ` +
        "(only trusted users may set them): add the user to trusted-users in the daemon's " +
        'nix.conf (cachix/install-nix-action and DeterminateSystems/nix-installer-action do so by ' +
        "default), or configure the machines in the daemon's own nix.conf (builders) and leave " +
        'the "builders" input empty');
}
// Nix saw no machine at all: with `builders` given, a daemon dropped them (Nix 2.8's without a
// word: it has no warning and no `trusted` in `nix store ping`).
const NO_BUILDERS = /unable to start any build;\s*either increase '--max-jobs' or enable remote builds/i;
/** The error a failed build gets when its log says a builder could not be used; null otherwise. */
function builderFailureMessage(log, user) {
    if (daemonIgnoredBuilders(log))
        return untrustedDaemonMessage(user);
    if (NO_BUILDERS.test(log)) {
        return ('Nix had no remote builder to use and may not build here (--max-jobs 0). If "builders" ' +
            `is set, ${untrustedDaemonMessage(user)}; otherwise give "builders" or drop --max-jobs 0`);
    }
    const failures = builderFailures(log);
    if (failures.length === 0)
        return null;
    return failures
        .map(({ uri, said }) => uri === ''
        ? `a remote builder could not be used: ${said}`
        : `remote builder ${uri} could not be used: ${said}`)
        .join('\n');
}

;// CONCATENATED MODULE: ./src/nix/builder-key.ts
// The `builder-ssh-key` input: checked as an SSH private key ssh can use without a prompt, then
// written 0600 under RUNNER_TEMP (never argv, never a log), where Nix's ssh reads it: the
// runner's ssh for a store it owns, the daemon's (root's) for a daemon store. The post step
// removes it.


/** Why a key is refused; never quotes the key. */
class builder_key_BuilderKeyError extends Error {
    constructor(reason) {
        super(reason);
        this.name = 'BuilderKeyError';
    }
}
const PEM = /^-----BEGIN ((?:OPENSSH|RSA|EC|DSA) )?PRIVATE KEY-----\n([\s\S]*?)\n-----END \1?PRIVATE KEY-----$/;
/** The key as ssh wants the file: LF line ends, one final newline (OpenSSH refuses a key without). */
function normalizeKey(text) {
    return text.replace(/\r\n?/g, '\n').trim() + '\n';
}
/** Throws BuilderKeyError unless `text` is an unencrypted SSH private key (OpenSSH or PEM). */
function builder_key_checkBuilderKey(text) {
    const key = normalizeKey(text).trimEnd();
    const match = PEM.exec(key);
    if (!match) {
        throw new builder_key_BuilderKeyError('is not an SSH private key: give the whole file ssh-keygen wrote (-----BEGIN OPENSSH PRIVATE KEY----- ...)');
    }
    const body = match[2] ?? '';
    const encrypted = match[1] === 'OPENSSH ' ? openSshCipher(body) !== 'none' : /^Proc-Type: 4,ENCRYPTED/m.test(body);
    if (encrypted) {
        throw new builder_key_BuilderKeyError('is encrypted with a passphrase, which ssh cannot ask for in a job: give a key without one ' +
            '(ssh-keygen -N "")');
    }
}
/** The cipher named in an `openssh-key-v1` key ("none" when unencrypted); null if unreadable. */
function openSshCipher(body) {
    const data = Buffer.from(body.replace(/\s+/g, ''), 'base64');
    const magic = 'openssh-key-v1\0';
    if (data.subarray(0, magic.length).toString('latin1') !== magic)
        return null;
    if (data.length < magic.length + 4)
        return null;
    const length = data.readUInt32BE(magic.length);
    const start = magic.length + 4;
    return data.subarray(start, start + length).toString('latin1');
}
/** Where the key goes: beside the job's nix.conf, in the action's folder of RUNNER_TEMP. */
function builderKeyPath(actionDir) {
    return join(actionDir, 'builder-ssh-key');
}
/** Write the key 0600 (the mode set before the key is written: the file may be there already). */
async function writeBuilderKey(file, key) {
    await writeFile(file, '', { mode: 0o600 });
    await chmod(file, 0o600);
    await writeFile(file, normalizeKey(key));
}
/** Remove the key file (post step); a file that is not there is fine. */
async function removeBuilderKey(file) {
    try {
        await (0,promises_.rm)(file);
        return true;
    }
    catch (error) {
        if (error.code === 'ENOENT')
            return false;
        throw error;
    }
}

;// CONCATENATED MODULE: ./src/inputs.ts
// The only file that reads inputs: one typed, validated Inputs object, built before anything
// runs, so that a bad value fails the step with a message naming the input and the value.












/** Whether the image is run before the push (`test` or `test-url`). */
function testsImage(inputs) {
    return inputs.test.length > 0 || inputs.testUrl !== null;
}
/** A bad input value: the message names the input and the value. */
class InputError extends Error {
    constructor(name, value, reason) {
        super(`Input "${name}": ${JSON.stringify(value)} ${reason}`);
        this.name = 'InputError';
    }
}
/** A bad secret input: the message names the input and why, never the value. */
class SecretInputError extends Error {
    constructor(name, reason) {
        super(`Input "${name}": ${reason}`);
        this.name = 'InputError';
    }
}
/** Secret inputs read as they are (a passphrase may begin or end with a space, as cosign reads it). */
const UNTRIMMED_INPUTS = ['signing-passphrase'];
/** Inputs whose INPUT_* variable is removed once read, so that no command the action runs inherits it. */
const SECRET_INPUTS = (/* unused pure expression or super */ null && ([
    'signing-key',
    'signing-passphrase',
    'cache-signing-key',
    'binary-cache-secret-key',
    'builder-ssh-key'
]));
const readActionInput = name => src_core/* getInput */.V4(name, { trimWhitespace: !UNTRIMMED_INPUTS.includes(name) });
// The values @actions/core's getBooleanInput accepts (YAML 1.2 core schema).
const TRUE_VALUES = (/* unused pure expression or super */ null && (['true', 'True', 'TRUE']));
const FALSE_VALUES = (/* unused pure expression or super */ null && (['false', 'False', 'FALSE']));
const PUSH_TOOLS = (/* unused pure expression or super */ null && (['docker', 'skopeo']));
const SYSTEM_PATTERN = /^[a-z0-9_]+-[a-z0-9_]+$/;
const MAX_RETRIES = 20;
const DEFAULT_TEST_TIMEOUT = 60;
/** GitHub's longest job: a longer bound would never be reached. */
const MAX_TEST_TIMEOUT = (/* unused pure expression or super */ null && (6 * 60 * 60));
/** Newline- or comma-separated, like docker/build-push-action's `tags`. */
function splitList(value) {
    return value
        .split(/[\n,]/)
        .map(item => item.trim())
        .filter(item => item !== '');
}
/** One item per line: for arguments, which may contain commas. */
function splitLines(value) {
    return value
        .split('\n')
        .map(item => item.trim())
        .filter(item => item !== '');
}
/**
 * The `github-token` input, for the post step (which deletes the cache entries a save
 * superseded): masked before anything else is done with it; null when empty.
 */
function readGithubToken(read = readActionInput) {
    const token = read('github-token').trim();
    if (token === '')
        return null;
    src_core/* setSecret */.Pq(token);
    return token;
}
/**
 * The `cache-signing-key` input, for the post step (which signs what it saves): masked, its
 * INPUT_* variable removed, then parsed; null when empty.
 */
function readCacheSigningKey(read = readActionInput) {
    const text = read('cache-signing-key').trim();
    maskNixSecretKey(text);
    if (read === readActionInput)
        delete process.env['INPUT_CACHE-SIGNING-KEY'];
    return parseCacheSigningKey(text);
}
/** A Nix secret key is one line: masked whole and its base64 part alone. */
function maskNixSecretKey(text) {
    if (text === '')
        return;
    src_core/* setSecret */.Pq(text);
    const data = text.slice(text.indexOf(':') + 1);
    if (data !== '' && data !== text)
        src_core/* setSecret */.Pq(data);
}
function parseCacheSigningKey(text) {
    if (text === '')
        return null;
    try {
        return nix_key_parseNixSecretKey(text);
    }
    catch (error) {
        // The message never quotes the key (nix-key.ts); the fallback says nothing of it either.
        const reason = error instanceof Error ? error.message : 'could not be read';
        throw new SecretInputError('cache-signing-key', reason);
    }
}
function parseCacheTrustedKeys(value) {
    return splitList(value).map(entry => {
        try {
            return parseNixPublicKey(entry);
        }
        catch (error) {
            throw new InputError('cache-trusted-keys', entry, `is not a Nix public key: ${shortReason(error)}`);
        }
    });
}
/**
 * `binary-cache`, `binary-cache-secret-key` and `binary-cache-public-key`: a store URL of a
 * scheme Nix has, keys Nix reads. The trusted keys are the public ones given, else the secret
 * key's public half.
 */
function parseBinaryCache(url, secretKeyText, publicKeyText) {
    const publicKeys = splitList(publicKeyText);
    if (url === null) {
        if (secretKeyText !== '') {
            throw new SecretInputError('binary-cache-secret-key', 'is set but "binary-cache" is empty');
        }
        if (publicKeys.length > 0) {
            throw new InputError('binary-cache-public-key', publicKeyText.trim(), 'needs "binary-cache"');
        }
        return null;
    }
    const problem = storeUrlProblem(url);
    if (problem !== null)
        throw new InputError('binary-cache', url, problem);
    for (const key of publicKeys) {
        try {
            parseNixPublicKey(key);
        }
        catch (error) {
            throw new InputError('binary-cache-public-key', key, `is not a Nix public key: ${shortReason(error)}`);
        }
    }
    let secretKey = null;
    if (secretKeyText !== '') {
        try {
            secretKey = parseNixSecretKey(secretKeyText);
        }
        catch (error) {
            const reason = error instanceof Error ? error.message : 'could not be read';
            throw new SecretInputError('binary-cache-secret-key', reason);
        }
    }
    const trusted = publicKeys.length > 0 ? publicKeys : secretKey ? [secretKey.publicKey] : [];
    return { url, secretKey, publicKeys: trusted };
}
function shortReason(error) {
    const message = error instanceof Error ? error.message : String(error);
    return /not an ed25519/.test(message)
        ? 'not an ed25519 key'
        : 'expected <name>:<base64 of 32 bytes>, as `nix key convert-secret-to-public` prints it';
}
function parseInputs(read = readActionInput) {
    const text = (name) => {
        const value = read(name).trim();
        return value === '' ? null : value;
    };
    const bool = (name, fallback) => {
        const value = read(name).trim();
        if (value === '')
            return fallback;
        if (TRUE_VALUES.includes(value))
            return true;
        if (FALSE_VALUES.includes(value))
            return false;
        throw new InputError(name, value, 'is not a boolean: use true or false');
    };
    const password = text('password');
    const githubToken = text('github-token');
    const signingKey = read('signing-key').trim();
    const signingPassphrase = read('signing-passphrase');
    // Masked first, so that nothing below (not even an error) can print them.
    if (password)
        core.setSecret(password);
    if (githubToken)
        core.setSecret(githubToken);
    maskSecret(signingKey);
    maskSecret(signingPassphrase);
    const cacheSigningKey = read('cache-signing-key').trim();
    maskNixSecretKey(cacheSigningKey);
    const binaryCacheSecretKey = read('binary-cache-secret-key').trim();
    maskNixSecretKey(binaryCacheSecretKey);
    const builderSshKey = read('builder-ssh-key').trim();
    maskSecret(builderSshKey);
    if (read === readActionInput) {
        for (const name of SECRET_INPUTS)
            delete process.env[`INPUT_${name.toUpperCase()}`];
    }
    const inputs = {
        flake: text('flake') ?? '.',
        attribute: parseAttribute(text('attribute') ?? 'container'),
        system: parseSystem(text('system')),
        nixArgs: splitLines(read('nix-args')),
        installNix: bool('install-nix', true),
        nixVersion: parseNixVersionInput(text('nix-version') ?? PINNED_NIX_VERSION),
        nixConf: splitLines(read('nix-conf')),
        installUrl: parseInstallUrl(text('install-url')),
        githubToken,
        cache: bool('cache', true),
        cacheKey: text('cache-key'),
        cacheSave: bool('cache-save', true),
        build: bool('build', true),
        load: bool('load', true),
        image: parseImage(text('image')),
        registry: parseRegistry(text('registry')),
        tags: splitList(read('tags')).map(entry => parseTagEntry('tags', entry)),
        push: bool('push', true),
        pushTool: parsePushTool(text('push-tool') ?? 'docker'),
        username: text('username'),
        password,
        retries: parseRetries(text('retries') ?? '3'),
        sbom: bool('sbom', true),
        reuseFrom: splitList(read('reuse-from')).map(entry => parseTagEntry('reuse-from', entry)),
        systems: parseSystems(read('systems')),
        merge: splitList(read('merge')).map(entry => parseTagEntry('merge', entry)),
        test: parseTestCommand(read('test')),
        testUrl: parseTestUrl(text('test-url')),
        testTimeout: parseTestTimeout(text('test-timeout') ?? String(DEFAULT_TEST_TIMEOUT)),
        compression: parseCompression(text('compression') ?? 'gzip', text('compression-level')),
        signingKey: null,
        cacheSigningKey: parseCacheSigningKey(cacheSigningKey),
        cacheTrustedKeys: parseCacheTrustedKeys(read('cache-trusted-keys')),
        binaryCache: parseBinaryCache(text('binary-cache'), binaryCacheSecretKey, read('binary-cache-public-key')),
        ...parseBuilders(read('builders'), builderSshKey)
    };
    checkCombinations(inputs);
    // Last: decrypting takes scrypt's tenth of a second or more, and every cheaper check is done.
    inputs.signingKey = parseSigningKey(signingKey, signingPassphrase);
    return inputs;
}
/** `builders` and `builder-ssh-key`: each line checked, the key checked and used by some line. */
function parseBuilders(text, key) {
    let builders;
    try {
        builders = parseMachineLines(text, key !== '');
    }
    catch (error) {
        // Never the line itself: a private key pasted into the wrong input must not be printed.
        if (error instanceof MachineLineError)
            throw new SecretInputError('builders', error.message);
        throw error;
    }
    if (key === '')
        return { builders, builderSshKey: null };
    try {
        checkBuilderKey(key);
    }
    catch (error) {
        if (error instanceof BuilderKeyError)
            throw new SecretInputError('builder-ssh-key', error.message);
        throw new SecretInputError('builder-ssh-key', 'could not be read as an SSH private key');
    }
    if (!builders.some(machine => machine.usesInputKey)) {
        throw new SecretInputError('builder-ssh-key', builders.length === 0
            ? 'is set but "builders" is empty: give the machine lines that use it'
            : 'is set but no line of "builders" uses it: give "-" as the SSH key field (field 3) of the lines it opens');
    }
    return { builders, builderSshKey: key };
}
/**
 * Mask a secret whole and line by line: the runner matches masks within one line of the log,
 * so a PEM key is masked by its base64 lines (its BEGIN and END lines are no secret).
 */
function maskSecret(value) {
    if (value === '')
        return;
    core.setSecret(value);
    for (const line of value.split(/\r?\n/)) {
        const trimmed = line.trim();
        if (trimmed !== '' && trimmed !== value && !/^-----(BEGIN|END) /.test(trimmed)) {
            core.setSecret(trimmed);
        }
    }
}
/** `signing-key` decrypted with `signing-passphrase` (an empty passphrase is cosign's too). */
function parseSigningKey(pem, passphrase) {
    if (pem === '') {
        if (passphrase !== '') {
            throw new SecretInputError('signing-passphrase', 'is set but "signing-key" is empty: give the key too, or neither');
        }
        return null;
    }
    try {
        return readSigningKey(pem, passphrase);
    }
    catch (error) {
        if (error instanceof SigningKeyError)
            throw new SecretInputError(error.input, error.message);
        // Anything else (scrypt, the key parser) may not say why without quoting: say what failed.
        throw new SecretInputError('signing-key', 'could not be read as a cosign private key');
    }
}
function parseAttribute(value) {
    if (/\s/.test(value))
        throw new InputError('attribute', value, 'must not contain white space');
    return value;
}
function parseSystem(value) {
    if (value !== null && !SYSTEM_PATTERN.test(value)) {
        throw new InputError('system', value, 'is not a Nix system such as x86_64-linux');
    }
    return value;
}
function parseSystems(value) {
    const systems = splitList(value);
    for (const [i, system] of systems.entries()) {
        if (!SYSTEM_PATTERN.test(system)) {
            throw new InputError('systems', system, 'is not a Nix system such as aarch64-linux');
        }
        if (systems.indexOf(system) !== i) {
            throw new InputError('systems', value.trim(), `lists ${system} twice`);
        }
    }
    return systems;
}
function parseNixVersionInput(value) {
    if (!NIX_VERSION_PATTERN.test(value)) {
        throw new InputError('nix-version', value, 'is not a Nix release version such as 2.35.2');
    }
    return value;
}
/** A tarball URL or a mirror of releases.nixos.org/nix, fetched over HTTP(S). */
function parseInstallUrl(value) {
    if (value === null)
        return null;
    let url;
    try {
        url = new URL(value);
    }
    catch {
        throw new InputError('install-url', value, 'is not a URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        throw new InputError('install-url', value, 'must be an http:// or https:// URL');
    }
    return value;
}
/**
 * One argument per line, like nix-args, but an empty line inside is refused rather than
 * dropped: it would silently shift the arguments (an empty argument cannot be given).
 */
function parseTestCommand(value) {
    const trimmed = value.trim();
    if (trimmed === '')
        return [];
    const lines = trimmed.split('\n').map(line => line.trim());
    const empty = lines.indexOf('');
    if (empty >= 0) {
        throw new InputError('test', trimmed, `has an empty line (line ${empty + 1}): give one argument per line, with no blank lines`);
    }
    return lines;
}
/** An http(s) URL the runner can fetch (the test container shares the runner's network). */
function parseTestUrl(value) {
    if (value === null)
        return null;
    let url;
    try {
        url = new URL(value);
    }
    catch {
        throw new InputError('test-url', value, 'is not a URL: give one such as http://localhost:8080/health');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        throw new InputError('test-url', value, 'must be an http:// or https:// URL');
    }
    return value;
}
function parseTestTimeout(value) {
    const seconds = Number(value);
    if (!/^\d+(\.\d+)?$/.test(value) || seconds <= 0 || seconds > MAX_TEST_TIMEOUT) {
        throw new InputError('test-timeout', value, `is not a number of seconds greater than 0 and at most ${MAX_TEST_TIMEOUT}`);
    }
    return seconds;
}
function parseImage(value) {
    if (value === null)
        return null;
    const ref = parseOrFail('image', value);
    if (ref.tag !== null || ref.digest !== null) {
        throw new InputError('image', value, 'must be a repository without a tag or digest: give tags in "tags"');
    }
    return value;
}
function parseRegistry(value) {
    if (value === null)
        return null;
    try {
        validateRegistry(value);
    }
    catch (error) {
        throw new InputError('registry', value, `is not a registry host: ${errorMessage(error)}`);
    }
    return value;
}
/** A `tags`, `merge` or `reuse-from` entry: a full reference or a tag (isFullReference decides). */
function parseTagEntry(name, value) {
    if (isFullReference(value)) {
        parseOrFail(name, value);
        return value;
    }
    try {
        validateTag(value);
    }
    catch (error) {
        const expected = name === 'reuse-from' ? 'a reference or tag' : 'a valid tag';
        throw new InputError(name, value, `is not ${expected}: ${errorMessage(error)}`);
    }
    return value;
}
function parsePushTool(value) {
    const tool = PUSH_TOOLS.find(name => name === value);
    if (!tool)
        throw new InputError('push-tool', value, `is not one of: ${PUSH_TOOLS.join(', ')}`);
    return tool;
}
function parseCompression(format, level) {
    const known = LAYER_COMPRESSION_FORMATS.find(name => name === format);
    if (!known) {
        throw new InputError('compression', format, `is not one of: ${LAYER_COMPRESSION_FORMATS.join(', ')}`);
    }
    if (level === null)
        return { format: known, level: null };
    const { min, max } = COMPRESSION_LEVELS[known];
    const number = Number(level);
    if (!/^\d+$/.test(level) || number < min || number > max) {
        throw new InputError('compression-level', level, `is not a ${known} level: a whole number from ${min} to ${max}`);
    }
    return { format: known, level: number };
}
function parseRetries(value) {
    const retries = Number(value);
    if (!/^\d+$/.test(value) || retries < 1 || retries > MAX_RETRIES) {
        throw new InputError('retries', value, `is not a whole number from 1 to ${MAX_RETRIES}`);
    }
    return retries;
}
function parseOrFail(name, value) {
    try {
        return parseReference(value);
    }
    catch (error) {
        throw new InputError(name, value, `is not a valid image reference: ${errorMessage(error)}`);
    }
}
/** Values that are each fine but cannot work together. */
function checkCombinations(inputs) {
    if ((inputs.username === null) !== (inputs.password === null)) {
        const [given, missing] = inputs.username === null ? ['password', 'username'] : ['username', 'password'];
        throw new InputError(missing, '', `is empty but "${given}" is set: give both to log in, or neither`);
    }
    checkMultiPlatform(inputs);
    checkTest(inputs);
    if (inputs.push && inputs.pushTool === 'docker' && !inputs.load && inputs.systems.length === 0) {
        throw new InputError('load', 'false', 'cannot go with push: true and push-tool: docker, which pushes what docker loaded; ' +
            'set load: true, push: false, or push-tool: skopeo');
    }
    if (inputs.push)
        checkPushDestination(inputs);
}
/** `systems` and `merge` each make an index: with `system`, each other, or nowhere to push. */
function checkMultiPlatform(inputs) {
    const systems = inputs.systems.join(', ');
    if (inputs.systems.length > 0 && inputs.system !== null) {
        throw new InputError('systems', systems, `cannot go with "system" (${JSON.stringify(inputs.system)}): list every system in "systems"`);
    }
    if (inputs.merge.length === 0)
        return;
    const merge = inputs.merge.join(', ');
    if (inputs.systems.length > 0) {
        throw new InputError('merge', merge, `cannot go with "systems" (${JSON.stringify(systems)}): merge combines images already ` +
            'pushed and builds nothing; build them in other steps or jobs');
    }
    if (!inputs.push) {
        throw new InputError('merge', merge, 'needs push: true: it only pushes an index');
    }
    if (inputs.tags.length === 0 && inputs.image === null) {
        throw new InputError('merge', merge, 'has nothing to push to: set "tags" (and "image" for bare tags) for the index');
    }
    for (const entry of inputs.merge) {
        if (isFullReference(entry)) {
            if (inputs.registry === null && parseReference(entry).domain === null) {
                throw new InputError('merge', entry, 'names no registry: write it as registry/repository:tag (or @sha256:...) or set "registry"');
            }
        }
        else if (inputs.image === null) {
            throw new InputError('merge', entry, 'is a tag, but "image" is not set: give a full reference or set "image"');
        }
    }
}
/** `test` and `test-url` need an image built here, of the runner's own system. */
function checkTest(inputs) {
    if (!testsImage(inputs))
        return;
    const [name, value] = inputs.test.length > 0 ? ['test', inputs.test.join('\n')] : ['test-url', inputs.testUrl ?? ''];
    if (inputs.merge.length > 0) {
        throw new InputError(name, value, 'cannot go with "merge": merge builds nothing here, so there is no image to run; ' +
            'test each platform image in the job that builds it');
    }
    if (!inputs.build) {
        throw new InputError(name, value, 'needs build: true: with build: false there is no image to run');
    }
    const own = runnerSystem();
    if (inputs.systems.length > 0 && (own === null || !inputs.systems.includes(own))) {
        throw new InputError('systems', inputs.systems.join(', '), `has no image of the runner's own system (${own ?? process.arch}), so "${name}" ` +
            `cannot run any here: add ${own ?? "the runner's system"} to "systems" or drop "${name}"`);
    }
}
/** Every ref that will be pushed must name a registry: no silent pushes to Docker Hub. */
function checkPushDestination(inputs) {
    if (inputs.registry !== null)
        return;
    const imageHasRegistry = inputs.image !== null && parseReference(inputs.image).domain !== null;
    const bareTags = inputs.tags.filter(tag => !isFullReference(tag));
    const usesImage = bareTags.length > 0 || inputs.tags.length === 0;
    if (usesImage && !imageHasRegistry) {
        const value = inputs.image ?? '';
        throw new InputError('image', value, 'names no registry, so push: true has nowhere to push: set "registry" (e.g. ghcr.io), ' +
            'give "image" with a registry (ghcr.io/owner/app), or set push: false');
    }
    for (const tag of inputs.tags.filter(isFullReference)) {
        if (parseReference(tag).domain === null) {
            throw new InputError('tags', tag, 'names no registry, so push: true has nowhere to push it: write it as ' +
                'registry/repository:tag or set "registry"');
        }
    }
}

;// CONCATENATED MODULE: ./src/stages/binary-cache.ts
// The binary cache stage (`binary-cache`): before the build, the cache is a substituter of the
// job (nix.conf lines, written by the Nix stage); after the image shipped, the image's build
// closure (what the store cache saves) goes to it, signed, only what it lacks. A push that
// fails warns: the image is already in the registry.













/** The nix.conf lines that make the cache a substituter of this job. */
function binaryCacheConfLines(cache) {
    if (cache.secretKey && !cache.publicKeys.includes(cache.secretKey.publicKey)) {
        core.warning('binary-cache-public-key does not name the public half of binary-cache-secret-key: what ' +
            'this job pushes is signed by a key that jobs trusting only binary-cache-public-key refuse');
    }
    if (cache.publicKeys.length === 0) {
        core.notice(`binary-cache: no key given, so Nix takes from ${printableStoreUrl(cache.url)} only paths signed by a key its own configuration trusts`);
    }
    return substituterConfLines(cache.url, cache.publicKeys);
}
/**
 * A daemon that does not trust the runner's user ignores the job's substituters and keys:
 * say so, and what the daemon's configuration needs, before the build goes without the cache.
 */
async function checkDaemonTakesCache(cache) {
    if ((await storeTrustsUser()) !== false)
        return;
    const url = printableStoreUrl(cache.url);
    core.warning(`binary-cache: the Nix daemon does not trust this user, so it will not substitute from ${url}: ` +
        `add the user to trusted-users in the daemon's nix.conf, or list the cache there ` +
        `(trusted-substituters = ${cache.url}, trusted-public-keys = ${cache.publicKeys.join(' ') || '<its key>'}). ` +
        'The push after the image still works.');
}
/** The `binary-cache-pushed` output: what the push sent (no URL, no key). */
function pushedOutput(result) {
    return JSON.stringify({
        paths: result.paths.length,
        bytes: result.bytes,
        closure: result.closureCount,
        ...(result.outcome === 'failed' ? { failed: true } : {})
    });
}
function describePush(result) {
    const sent = `${result.paths.length} of ${result.closureCount} paths sent (${megabytes(result.bytes)})`;
    switch (result.outcome) {
        case 'pushed':
            return `${sent}, the rest already there`;
        case 'failed':
            return `failed (warning): ${result.reason ?? ''}`;
    }
}
/**
 * Copy the build closure to the cache, signed with the secret key (in a 0600 file under
 * RUNNER_TEMP for the copy only). Never throws: a failure is a warning and the result says it.
 */
async function pushToBinaryCache(options, onKeyFile = () => undefined) {
    const result = {
        outcome: 'pushed',
        closureCount: 0,
        paths: [],
        bytes: 0,
        reason: null
    };
    const key = options.cache.secretKey;
    if (key === null)
        throw new Error('pushToBinaryCache needs binary-cache-secret-key');
    const keyFile = join(actionTempDir(), `binary-cache-key-${process.pid}`);
    try {
        const closure = await pathsToCache(options.flake, options.drvPaths, options.storePaths);
        result.closureCount = closure.length;
        await writeKeyFile(keyFile, formatNixSecretKey(key));
        onKeyFile(keyFile);
        const url = pushStoreUrl(options.cache.url, keyFile);
        core.info(`Copying the build closure (${closure.length} paths) to ${printableStoreUrl(options.cache.url)}, signed by ${key.name}`);
        // The derivations' copy and the outputs' side by side (each `nix copy` also sends its
        // paths several at a time): they share at most the derivations' sources.
        const [drvs, outputs] = await settleAll([
            copyAll(url, closure.filter(isDerivation), true),
            copyAll(url, closure.filter(path => !isDerivation(path)), false)
        ]);
        result.paths = [...new Set([...drvs, ...outputs])].sort();
        result.bytes = narBytes(await registrationsOf(result.paths));
        core.info(`Sent ${result.paths.length} paths (${megabytes(result.bytes)}), the rest were there`);
        return result;
    }
    catch (error) {
        const reason = errorMessage(error);
        core.warning(`Binary cache push failed, the job goes on (the image came first): ${reason}`);
        return { ...result, outcome: 'failed', reason: firstLine(reason) };
    }
    finally {
        await rm(keyFile, { force: true });
    }
}
/** Copy paths in command-line-sized batches, one after another: the paths sent. */
async function copyAll(url, paths, derivations) {
    const sent = [];
    for (const batch of batches(paths))
        sent.push(...(await copyBatch(url, batch, derivations)));
    return sent;
}
/** One `nix copy`: the paths it sent; on failure, what Nix said (not its JSON log). */
async function copyBatch(url, paths, derivations) {
    const { exitCode, stderr } = await runNix(copyArgs(url, paths, derivations), {
        silent: true,
        allowFailure: true
    });
    if (exitCode !== 0) {
        const argv = ['nix', 'copy', '--to', '<binary-cache>', `<${paths.length} paths>`];
        throw new CommandError(argv, exitCode, logMessages(stderr));
    }
    return parseCopiedPaths(stderr);
}
/** The key, readable by this user only, written before it holds anything. */
async function writeKeyFile(file, key) {
    await mkdir(actionTempDir(), { recursive: true, mode: 0o700 });
    await writeFile(file, '', { mode: 0o600 });
    await chmod(file, 0o600);
    await writeFile(file, `${key}\n`);
}
/** Remove a key file main left (it stopped mid-push); for post. */
async function removeKeyFile(file) {
    try {
        await (0,promises_.rm)(file);
        return true;
    }
    catch {
        return false;
    }
}

;// CONCATENATED MODULE: ./src/post.ts
// run(): the post step. It cleans up after main and only ever warns: a post step must never
// fail a job whose work is done.









async function post_run() {
    try {
        if (getState(state_keys/* StateKey */.z.MainRan) === null) {
            src_core/* info */.pq('The main step did not get past its inputs: nothing to clean up');
            return;
        }
        await saveCache();
    }
    catch (error) {
        src_core/* warning */.$e(`post step: ${(0,errors/* errorMessage */.g)(error)}`);
    }
    finally {
        await removeTestContainer();
        await logout();
        await removeBinaryCacheKey();
        await removeBuilderKeyFile();
    }
}
/** The binary cache push's key file, when main stopped before it removed it. */
async function removeBinaryCacheKey() {
    const file = getState(state_keys/* StateKey */.z.BinaryCacheKeyFile);
    if (file !== null && (await removeKeyFile(file))) {
        src_core/* info */.pq('Removed the binary cache key file the main step left behind');
    }
}
/** The `builder-ssh-key` file main wrote under RUNNER_TEMP: gone before the job's next step. */
async function removeBuilderKeyFile() {
    const file = getState(state_keys/* StateKey */.z.BuilderKeyFile);
    if (file === null)
        return;
    try {
        if (await removeBuilderKey(file))
            src_core/* info */.pq('Removed the builder-ssh-key file');
    }
    catch (error) {
        src_core/* warning */.$e(`could not remove the builder-ssh-key file ${file}: ${(0,errors/* errorMessage */.g)(error)}`);
    }
}
/** A test container main could not remove (it was killed, or cancelled mid-test). */
async function removeTestContainer() {
    const name = getState(state_keys/* StateKey */.z.TestContainer);
    if (name === null)
        return;
    if (await removeContainer(name)) {
        src_core/* info */.pq(`Removed the test container ${name}, which the main step left behind`);
    }
}
/** Log out of exactly the registries main logged in to (even when its push failed). */
async function logout() {
    const saved = getState(state_keys/* StateKey */.z.LoginSession);
    if (saved === null)
        return;
    try {
        await src_core/* group */.Os('Registry logout', () => logoutOfRegistries(JSON.parse(saved)));
    }
    catch (error) {
        src_core/* warning */.$e(`registry logout: ${(0,errors/* errorMessage */.g)(error)}`);
    }
}
/** Save the store cache. Every error is a warning: the job's result never changes here. */
async function saveCache() {
    const skipped = getState(state_keys/* StateKey */.z.CacheSkipped);
    if (skipped !== null) {
        src_core/* info */.pq(`Store cache save: skipped (${skipped})`);
        return;
    }
    if (getState(state_keys/* StateKey */.z.CacheWorkDir) === null) {
        src_core/* info */.pq('Store cache save: skipped (the main step stopped before the store cache stage)');
        return;
    }
    const started = performance.now();
    let result;
    try {
        result = await src_core/* group */.Os('Store cache save', () => saveStoreCache({
            flake: getState(state_keys/* StateKey */.z.CacheFlake) ?? '.',
            cacheSave: getState(state_keys/* StateKey */.z.CacheSave) !== 'false',
            primaryKey: getState(state_keys/* StateKey */.z.CachePrimaryKey),
            restoredKey: getState(state_keys/* StateKey */.z.CacheRestoredKey),
            recordFile: getState(state_keys/* StateKey */.z.CacheRestoreRecord),
            githubToken: readGithubToken(),
            startedAt: startedAt(),
            drvPath: getState(state_keys/* StateKey */.z.BuiltDrvPath),
            storePath: getState(state_keys/* StateKey */.z.BuiltStorePath),
            workDir: getState(state_keys/* StateKey */.z.CacheWorkDir) ?? storeCacheWorkDir(),
            signingKey: readCacheSigningKey()
        }));
    }
    catch (error) {
        result = {
            saved: false,
            failed: true,
            reason: (0,errors/* errorMessage */.g)(error)
        };
    }
    const seconds = (performance.now() - started) / 1000;
    if (result.saved)
        src_core/* info */.pq(`Store cache save: ${describeSave(result)}`);
    else if (result.failed)
        src_core/* warning */.$e(`Store cache save failed, the job goes on: ${result.reason}`);
    else
        src_core/* info */.pq(`Store cache save: skipped (${result.reason})`);
    await appendSaveSummary(result, seconds);
}
function startedAt() {
    const text = getState(state_keys/* StateKey */.z.CacheStartedAt);
    return text === null ? null : new Date(text);
}
async function appendSaveSummary(result, seconds) {
    if (!process.env.GITHUB_STEP_SUMMARY)
        return;
    const status = result.saved ? '✅ saved' : result.failed ? '⚠️ failed' : '⏭️ skipped';
    const detail = describeSave(result).replace(/\|/g, '\\|').replace(/\n/g, ' ');
    const table = [
        '',
        '| Post step | Status | Result | Seconds |',
        '| --- | --- | --- | ---: |',
        `| Store cache save | ${status} | ${detail} | ${seconds.toFixed(1)} |`,
        ''
    ];
    await src_core/* appendSummary */.fe(table.join('\n'))
        .catch((error) => src_core/* warning */.$e(`could not write the job summary: ${String(error)}`));
}


/***/ })

};
