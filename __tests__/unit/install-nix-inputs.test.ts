// The installer's inputs: nix-version and install-url are checked before anything runs.
import { describe, expect, test } from '@jest/globals'
import { parseInputs } from '../../src/inputs.js'
import { PINNED_NIX_VERSION } from '../../src/nix/release.js'

const reader =
  (values: Record<string, string>) =>
  (name: string): string =>
    values[name] ?? ''
const base = { push: 'false' }

describe('nix-version and install-url', () => {
  test('defaults: the pinned release, the official download', () => {
    const inputs = parseInputs(reader(base))
    expect(inputs.nixVersion).toBe(PINNED_NIX_VERSION)
    expect(inputs.installUrl).toBeNull()
  })

  test.each([
    ['nix-version', '2.8.0'],
    ['install-url', 'https://mirror.example/nix'],
    ['install-url', 'http://127.0.0.1:8080/nix-2.8.0-x86_64-linux.tar.xz']
  ])('accepts %s %s', (name, value) => {
    expect(() => parseInputs(reader({ ...base, [name]: value }))).not.toThrow()
  })

  test.each([
    ['nix-version', 'latest', /Input "nix-version": "latest" is not a Nix release version/],
    ['nix-version', '2.35', /is not a Nix release version such as/],
    ['nix-version', '2.35.2; rm -rf /', /is not a Nix release version/],
    ['install-url', 'releases.nixos.org/nix', /Input "install-url": .* is not a URL/],
    ['install-url', 'file:///tmp/nix.tar.xz', /must be an http:\/\/ or https:\/\/ URL/]
  ])('refuses %s %s', (name, value, message) => {
    expect(() => parseInputs(reader({ ...base, [name]: value }))).toThrow(message)
  })
})
