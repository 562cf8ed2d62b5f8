export const id = 728;
export const ids = [728];
export const modules = {

/***/ 728:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   downloadArchive: () => (/* binding */ downloadArchive)
/* harmony export */ });
/* harmony import */ var _core_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(828);
/* harmony import */ var _node_modules_actions_cache_lib_internal_cacheHttpClient_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(4222);
/* harmony import */ var _node_modules_actions_cache_lib_internal_cacheUtils_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(9490);
/* harmony import */ var _node_modules_actions_cache_lib_internal_config_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(5253);
/* harmony import */ var _node_modules_actions_cache_lib_internal_shared_cacheTwirpClient_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(9513);
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(3916);
// Downloading a store cache entry without extracting it. A cache entry is untrusted input: its
// bytes are whatever its writer uploaded, and anyone who can write the repository's cache (a
// workflow on the default branch that runs untrusted input, for one) can upload under this
// action's keys. @actions/cache's restoreCache() extracts with `tar -xf <archive> -P -C
// <workspace>`, and `-P` writes absolute member names and `..` wherever they point; it has no
// download-only mode. So the restore does what restoreCache() does up to the extraction, with
// the client's own modules, and extracts the archive itself (extract.ts).
//
// Why the client's internal modules: they are the client's own look-up (v1's REST call, v2's
// Twirp call), version hash and download (ranged segments, the Azure SDK for Azure hosts,
// timeouts and retries), the code every other restore of @actions/cache runs, so what is
// looked up and downloaded stays exactly what restoreCache() would. The alternatives are worse:
// re-implementing both protocols and the Azure download would drift from the client that saves
// the entries, and intercepting its `tar` (a shim on PATH) is more fragile still. The price is
// a dependency on files the package does not export: they are reached by path, bundled into
// dist/ (so nothing changes under a released action), and typed by the package's own .d.ts
// files, so an update of @actions/cache that moves or changes them fails the typecheck, and
// the e2e tests download through both protocols. Pinned in package-lock.json.






/** v1: the REST API at ACTIONS_CACHE_URL (GitHub Enterprise Server, the test server). */
async function lookUpV1(keys, paths) {
    const compressionMethod = await (0,_node_modules_actions_cache_lib_internal_cacheUtils_js__WEBPACK_IMPORTED_MODULE_2__/* .getCompressionMethod */ .yJ)();
    const entry = await (0,_node_modules_actions_cache_lib_internal_cacheHttpClient_js__WEBPACK_IMPORTED_MODULE_1__/* .getCacheEntry */ .J6)(keys, paths, { compressionMethod, enableCrossOsArchive: false });
    if (!entry?.archiveLocation || !entry.cacheKey)
        return null;
    return { key: entry.cacheKey, url: entry.archiveLocation };
}
/** v2: Twirp at ACTIONS_RESULTS_URL, which hands out a signed URL of Azure Blob storage. */
async function lookUpV2(keys, paths) {
    const compressionMethod = await (0,_node_modules_actions_cache_lib_internal_cacheUtils_js__WEBPACK_IMPORTED_MODULE_2__/* .getCompressionMethod */ .yJ)();
    const [key = '', ...restoreKeys] = keys;
    const response = await (0,_node_modules_actions_cache_lib_internal_shared_cacheTwirpClient_js__WEBPACK_IMPORTED_MODULE_3__/* .internalCacheTwirpClient */ .t)().GetCacheEntryDownloadURL({
        key,
        restoreKeys,
        version: (0,_node_modules_actions_cache_lib_internal_cacheUtils_js__WEBPACK_IMPORTED_MODULE_2__/* .getCacheVersion */ .Fy)(paths, compressionMethod, false)
    });
    if (!response.ok || !response.matchedKey)
        return null;
    _core_js__WEBPACK_IMPORTED_MODULE_0__/* .setSecret */ .Pq(response.signedDownloadUrl);
    return { key: response.matchedKey, url: response.signedDownloadUrl };
}
/**
 * Look up the entry of `primaryKey`, else the newest of each restore key prefix, for `paths`
 * (the entry's version is a hash of them, as the save made it), and download its archive to
 * `archivePath` as restoreCache() would: the key found, or null on a miss. As restoreCache(), a
 * service or download error is a warning and a miss.
 */
async function downloadArchive(paths, primaryKey, restoreKeys, archivePath) {
    const mode = (0,_node_modules_actions_cache_lib_internal_config_js__WEBPACK_IMPORTED_MODULE_4__/* .getCacheMode */ .as)();
    if (!(0,_node_modules_actions_cache_lib_internal_config_js__WEBPACK_IMPORTED_MODULE_4__/* .isCacheReadable */ .bv)(mode)) {
        _core_js__WEBPACK_IMPORTED_MODULE_0__/* .info */ .pq(`Cache restore skipped: the effective cache-mode '${mode}' does not permit reads.`);
        return null;
    }
    try {
        const v2 = (0,_node_modules_actions_cache_lib_internal_config_js__WEBPACK_IMPORTED_MODULE_4__/* .getCacheServiceVersion */ .U0)() === 'v2';
        const keys = [primaryKey, ...restoreKeys];
        const found = v2 ? await lookUpV2(keys, paths) : await lookUpV1(keys, paths);
        if (found === null)
            return null;
        _core_js__WEBPACK_IMPORTED_MODULE_0__/* .info */ .pq(`Cache hit for${found.key === primaryKey ? '' : ' restore-key'}: ${found.key}`);
        // v2's restoreCache() downloads through the Azure SDK (from Azure hosts); v1's with the
        // client's defaults.
        await (0,_node_modules_actions_cache_lib_internal_cacheHttpClient_js__WEBPACK_IMPORTED_MODULE_1__/* .downloadCache */ .du)(found.url, archivePath, v2 ? { useAzureSdk: true } : undefined);
        return found.key;
    }
    catch (error) {
        _core_js__WEBPACK_IMPORTED_MODULE_0__/* .warning */ .$e(`Failed to restore: ${(0,_errors_js__WEBPACK_IMPORTED_MODULE_5__/* .errorMessage */ .g)(error)}`);
        return null;
    }
}


/***/ })

};
