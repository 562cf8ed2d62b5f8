// The SBOM document, built and serialised with the official CycloneDX library (pure): the
// image as metadata.component, one component per store path, dependencies from references.
import { randomUUID } from 'node:crypto'
import { ComponentType, HashAlgorithm } from '@cyclonedx/cyclonedx-library/Enums'
import { Bom, Component, Property } from '@cyclonedx/cyclonedx-library/Models'
import { JSON as CdxJson, JsonSerializer } from '@cyclonedx/cyclonedx-library/Serialize'
import { Spec1dot6 } from '@cyclonedx/cyclonedx-library/Spec'
import { parseDrvName, storePathName } from './drv-name.js'
import type { PathInfo } from './path-info.js'

/** The image the SBOM describes. */
export interface ImageSubject {
  /** Repository, e.g. `ghcr.io/owner/app`. */
  name: string
  /** The manifest digest once pushed, otherwise the tag. */
  version: string
  /** `repository@digest` or `repository:tag`. */
  bomRef: string
  /** The build output the image came from. */
  storePath: string
}

export const CYCLONEDX_SPEC = Spec1dot6
const TOOL_NAME = 'nix-container-action'

/**
 * `paths`: the store paths the layers hold; `infos`: what Nix knows of them (a path missing
 * there gets no hash, and the caller warns).
 */
export function buildBom(
  image: ImageSubject,
  paths: readonly string[],
  infos: ReadonlyMap<string, PathInfo>,
  now: Date = new Date()
): Bom {
  const bom = new Bom({ serialNumber: `urn:uuid:${randomUUID()}` })
  bom.metadata.timestamp = now
  bom.metadata.tools.components.add(new Component(ComponentType.Application, TOOL_NAME))
  const subject = new Component(ComponentType.Container, image.name, {
    version: image.version || undefined,
    bomRef: image.bomRef
  })
  subject.properties.add(new Property('nix:store-path', image.storePath))
  bom.metadata.component = subject

  const components = new Map(paths.map(path => [path, storePathComponent(path, infos.get(path))]))
  const referenced = new Set<string>()
  for (const [path, component] of components) {
    for (const reference of infos.get(path)?.references ?? []) {
      const dependency = components.get(reference)
      if (reference === path || !dependency) continue
      component.dependencies.add(dependency.bomRef)
      referenced.add(reference)
    }
    bom.components.add(component)
  }
  // The image depends on the paths nothing else in it refers to: the roots of its closure.
  for (const [path, component] of components) {
    if (!referenced.has(path)) subject.dependencies.add(component.bomRef)
  }
  return bom
}

function storePathComponent(path: string, info: PathInfo | undefined): Component {
  const fullName = storePathName(path)
  const { name, version } = parseDrvName(fullName)
  const component = new Component(ComponentType.Library, name || fullName, {
    version: version || undefined,
    bomRef: path
  })
  if (info) {
    component.hashes.set(HashAlgorithm['SHA-256'], info.narHashHex)
    if (info.deriver) component.properties.add(new Property('nix:deriver', info.deriver))
  }
  return component
}

/** CycloneDX JSON, as the library writes it. */
export function serializeBom(bom: Bom): string {
  const serializer = new JsonSerializer(new CdxJson.Normalize.Factory(CYCLONEDX_SPEC))
  return serializer.serialize(bom, { sortLists: false, space: 2 })
}
