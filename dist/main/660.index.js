export const id = 660;
export const ids = [660];
export const modules = {

/***/ 5660:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   CYCLONEDX_SPEC: () => (/* binding */ CYCLONEDX_SPEC),
/* harmony export */   buildBom: () => (/* binding */ buildBom),
/* harmony export */   serializeBom: () => (/* binding */ serializeBom)
/* harmony export */ });
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(7598);
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_crypto__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var _cyclonedx_cyclonedx_library_Enums__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(6820);
/* harmony import */ var _cyclonedx_cyclonedx_library_Enums__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__webpack_require__.n(_cyclonedx_cyclonedx_library_Enums__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var _cyclonedx_cyclonedx_library_Models__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(320);
/* harmony import */ var _cyclonedx_cyclonedx_library_Models__WEBPACK_IMPORTED_MODULE_2___default = /*#__PURE__*/__webpack_require__.n(_cyclonedx_cyclonedx_library_Models__WEBPACK_IMPORTED_MODULE_2__);
/* harmony import */ var _cyclonedx_cyclonedx_library_Serialize__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(1248);
/* harmony import */ var _cyclonedx_cyclonedx_library_Serialize__WEBPACK_IMPORTED_MODULE_3___default = /*#__PURE__*/__webpack_require__.n(_cyclonedx_cyclonedx_library_Serialize__WEBPACK_IMPORTED_MODULE_3__);
/* harmony import */ var _cyclonedx_cyclonedx_library_Spec__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(4321);
/* harmony import */ var _cyclonedx_cyclonedx_library_Spec__WEBPACK_IMPORTED_MODULE_4___default = /*#__PURE__*/__webpack_require__.n(_cyclonedx_cyclonedx_library_Spec__WEBPACK_IMPORTED_MODULE_4__);
/* harmony import */ var _drv_name_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(1837);
// The SBOM document, built and serialised with the official CycloneDX library (pure): the
// image as metadata.component, one component per store path, dependencies from references.






const CYCLONEDX_SPEC = _cyclonedx_cyclonedx_library_Spec__WEBPACK_IMPORTED_MODULE_4__.Spec1dot6;
const TOOL_NAME = 'nix-container-action';
/**
 * `paths`: the store paths the layers hold; `infos`: what Nix knows of them (a path missing
 * there gets no hash, and the caller warns).
 */
function buildBom(image, paths, infos, now = new Date()) {
    const bom = new _cyclonedx_cyclonedx_library_Models__WEBPACK_IMPORTED_MODULE_2__.Bom({ serialNumber: `urn:uuid:${(0,node_crypto__WEBPACK_IMPORTED_MODULE_0__.randomUUID)()}` });
    bom.metadata.timestamp = now;
    bom.metadata.tools.components.add(new _cyclonedx_cyclonedx_library_Models__WEBPACK_IMPORTED_MODULE_2__.Component(_cyclonedx_cyclonedx_library_Enums__WEBPACK_IMPORTED_MODULE_1__.ComponentType.Application, TOOL_NAME));
    const subject = new _cyclonedx_cyclonedx_library_Models__WEBPACK_IMPORTED_MODULE_2__.Component(_cyclonedx_cyclonedx_library_Enums__WEBPACK_IMPORTED_MODULE_1__.ComponentType.Container, image.name, {
        version: image.version || undefined,
        bomRef: image.bomRef
    });
    subject.properties.add(new _cyclonedx_cyclonedx_library_Models__WEBPACK_IMPORTED_MODULE_2__.Property('nix:store-path', image.storePath));
    bom.metadata.component = subject;
    const components = new Map(paths.map(path => [path, storePathComponent(path, infos.get(path))]));
    const referenced = new Set();
    for (const [path, component] of components) {
        for (const reference of infos.get(path)?.references ?? []) {
            const dependency = components.get(reference);
            if (reference === path || !dependency)
                continue;
            component.dependencies.add(dependency.bomRef);
            referenced.add(reference);
        }
        bom.components.add(component);
    }
    // The image depends on the paths nothing else in it refers to: the roots of its closure.
    for (const [path, component] of components) {
        if (!referenced.has(path))
            subject.dependencies.add(component.bomRef);
    }
    return bom;
}
function storePathComponent(path, info) {
    const fullName = (0,_drv_name_js__WEBPACK_IMPORTED_MODULE_5__/* .storePathName */ .y)(path);
    const { name, version } = (0,_drv_name_js__WEBPACK_IMPORTED_MODULE_5__/* .parseDrvName */ .n)(fullName);
    const component = new _cyclonedx_cyclonedx_library_Models__WEBPACK_IMPORTED_MODULE_2__.Component(_cyclonedx_cyclonedx_library_Enums__WEBPACK_IMPORTED_MODULE_1__.ComponentType.Library, name || fullName, {
        version: version || undefined,
        bomRef: path
    });
    if (info) {
        component.hashes.set(_cyclonedx_cyclonedx_library_Enums__WEBPACK_IMPORTED_MODULE_1__.HashAlgorithm['SHA-256'], info.narHashHex);
        if (info.deriver)
            component.properties.add(new _cyclonedx_cyclonedx_library_Models__WEBPACK_IMPORTED_MODULE_2__.Property('nix:deriver', info.deriver));
    }
    return component;
}
/** CycloneDX JSON, as the library writes it. */
function serializeBom(bom) {
    const serializer = new _cyclonedx_cyclonedx_library_Serialize__WEBPACK_IMPORTED_MODULE_3__.JsonSerializer(new _cyclonedx_cyclonedx_library_Serialize__WEBPACK_IMPORTED_MODULE_3__.JSON.Normalize.Factory(CYCLONEDX_SPEC));
    return serializer.serialize(bom, { sortLists: false, space: 2 });
}


/***/ })

};
