export const id = 807;
export const ids = [807];
export const modules = {

/***/ 807:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   fetchRelease: () => (/* binding */ fetchRelease)
/* harmony export */ });
/* unused harmony exports TOOL_NAME, sha256File */
/* harmony import */ var _core_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(828);
/* harmony import */ var _actions_tool_cache__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(9805);
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(7598);
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_2___default = /*#__PURE__*/__webpack_require__.n(node_crypto__WEBPACK_IMPORTED_MODULE_2__);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(3024);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_3___default = /*#__PURE__*/__webpack_require__.n(node_fs__WEBPACK_IMPORTED_MODULE_3__);
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(1455);
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_4___default = /*#__PURE__*/__webpack_require__.n(node_fs_promises__WEBPACK_IMPORTED_MODULE_4__);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(6760);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_5___default = /*#__PURE__*/__webpack_require__.n(node_path__WEBPACK_IMPORTED_MODULE_5__);
/* harmony import */ var _exec_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(3190);
/* harmony import */ var _release_js__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(3286);
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_10__ = __webpack_require__(3916);
/* harmony import */ var _tree_js__WEBPACK_IMPORTED_MODULE_8__ = __webpack_require__(9191);
/* harmony import */ var _temp_js__WEBPACK_IMPORTED_MODULE_9__ = __webpack_require__(5369);
// Getting a Nix release onto the runner: from the tool cache when an earlier job left it there,
// otherwise downloaded (with retries), verified against its SHA-256, extracted and cached.
// Nothing under /nix is touched here, so a bad download cannot leave a half-installed Nix.











const TOOL_NAME = 'nix';
async function fetchRelease(options) {
    const { version, system } = options;
    const cached = _actions_tool_cache__WEBPACK_IMPORTED_MODULE_1__/* .find */ .I6(TOOL_NAME, version, system);
    if (cached) {
        _core_js__WEBPACK_IMPORTED_MODULE_0__/* .info */ .pq(`Nix ${version} (${system}) is in the tool cache: ${cached}`);
        return { dir: cached, url: null };
    }
    const url = (0,_release_js__WEBPACK_IMPORTED_MODULE_7__/* .releaseUrl */ .XA)(version, system, options.installUrl);
    const expected = await expectedSha256(version, system, url);
    _core_js__WEBPACK_IMPORTED_MODULE_0__/* .info */ .pq(`Downloading ${url}`);
    const tarball = await download(url, 'the Nix release tarball');
    try {
        const actual = await sha256File(tarball);
        if (actual !== expected.sha256) {
            throw new Error(`the Nix release tarball ${url} has SHA-256 ${actual}, but ${expected.from} says ` +
                `${expected.sha256}: it is corrupt, truncated or not that release; nothing was installed`);
        }
        _core_js__WEBPACK_IMPORTED_MODULE_0__/* .info */ .pq(`SHA-256 ${actual} matches ${expected.from}`);
        const dir = await unpackAndCache(tarball, options);
        return { dir, url };
    }
    finally {
        await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_4__.rm)(tarball, { force: true });
    }
}
async function expectedSha256(version, system, url) {
    const source = (0,_release_js__WEBPACK_IMPORTED_MODULE_7__/* .checksumSource */ .z_)(version, system, url);
    if (source.kind === 'pinned') {
        return { sha256: source.sha256, from: `the checksum pinned for Nix ${version} (${system})` };
    }
    const file = await download(source.url, 'the checksum published beside the tarball');
    try {
        const text = await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_4__.readFile)(file, 'utf8');
        try {
            return { sha256: (0,_release_js__WEBPACK_IMPORTED_MODULE_7__/* .parseSha256File */ .Zo)(text), from: source.url };
        }
        catch (error) {
            throw new Error(`${source.url} ${(0,_errors_js__WEBPACK_IMPORTED_MODULE_10__/* .errorMessage */ .g)(error)}`);
        }
    }
    finally {
        await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_4__.rm)(file, { force: true });
    }
}
async function download(url, what) {
    try {
        return await _actions_tool_cache__WEBPACK_IMPORTED_MODULE_1__/* .downloadTool */ .bq(url, (0,node_path__WEBPACK_IMPORTED_MODULE_5__.join)((0,_temp_js__WEBPACK_IMPORTED_MODULE_9__/* .runnerTemp */ .X)(), (0,node_crypto__WEBPACK_IMPORTED_MODULE_2__.randomUUID)()));
    }
    catch (error) {
        throw new Error(`could not download ${what} from ${url}: ${(0,_errors_js__WEBPACK_IMPORTED_MODULE_10__/* .errorMessage */ .g)(error)}`);
    }
}
async function sha256File(file) {
    const hash = (0,node_crypto__WEBPACK_IMPORTED_MODULE_2__.createHash)('sha256');
    for await (const chunk of (0,node_fs__WEBPACK_IMPORTED_MODULE_3__.createReadStream)(file))
        hash.update(chunk);
    return hash.digest('hex');
}
/** Unpack next to the download, copy into the tool cache, and drop the unpacked copy. */
async function unpackAndCache(tarball, options) {
    const { version, system } = options;
    const unpacked = (0,node_path__WEBPACK_IMPORTED_MODULE_5__.join)((0,_temp_js__WEBPACK_IMPORTED_MODULE_9__/* .runnerTemp */ .X)(), (0,node_crypto__WEBPACK_IMPORTED_MODULE_2__.randomUUID)());
    await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_4__.mkdir)(unpacked, { recursive: true });
    try {
        await (0,_exec_js__WEBPACK_IMPORTED_MODULE_6__/* .run */ .eF)('tar', ['-xJf', tarball, '-C', unpacked], { silent: true });
        const top = (0,node_path__WEBPACK_IMPORTED_MODULE_5__.join)(unpacked, (0,_release_js__WEBPACK_IMPORTED_MODULE_7__/* .releaseName */ ["do"])(version, system));
        if (!(0,node_fs__WEBPACK_IMPORTED_MODULE_3__.existsSync)((0,node_path__WEBPACK_IMPORTED_MODULE_5__.join)(top, 'store'))) {
            throw new Error(`the tarball does not hold ${(0,_release_js__WEBPACK_IMPORTED_MODULE_7__/* .releaseName */ ["do"])(version, system)}/store: is it the Nix ${version} ` +
                `release for ${system}?`);
        }
        const dir = await _actions_tool_cache__WEBPACK_IMPORTED_MODULE_1__/* .cacheDir */ .e8(top, TOOL_NAME, version, system);
        _core_js__WEBPACK_IMPORTED_MODULE_0__/* .info */ .pq(`Cached in the tool cache for later jobs on this runner: ${dir}`);
        return dir;
    }
    finally {
        await (0,_tree_js__WEBPACK_IMPORTED_MODULE_8__/* .removeTree */ .d)(unpacked);
    }
}


/***/ })

};
