// Types for release.mjs.
export function parseReleaseTag(tag: string): { version: string; major: string }
export function changelogSection(changelog: string, version: string): string
export function checkRelease(
  tag: string,
  files: { packageVersion: string; changelog: string }
): void
