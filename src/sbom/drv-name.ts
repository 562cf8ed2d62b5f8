// A store path's name split into package name and version exactly as Nix's
// `builtins.parseDrvName` does (DrvName in libexpr/names.cc): the version starts after the
// first `-` that is followed by something other than an ASCII letter.

export interface DrvName {
  name: string
  /** Empty when the name has no version part, as in Nix. */
  version: string
}

const ASCII_LETTER = /[A-Za-z]/

export function parseDrvName(fullName: string): DrvName {
  for (let i = 0; i + 1 < fullName.length; i++) {
    if (fullName[i] === '-' && !ASCII_LETTER.test(fullName[i + 1] as string)) {
      return { name: fullName.slice(0, i), version: fullName.slice(i + 1) }
    }
  }
  return { name: fullName, version: '' }
}

/** `/nix/store/<hash>-<name>` -> `<name>`. */
export function storePathName(storePath: string): string {
  const base = storePath.slice(storePath.lastIndexOf('/') + 1)
  return base.slice(base.indexOf('-') + 1)
}
