// What each stage did, kept for the job summary: the log reads as the pipeline, and the
// summary shows it at a glance.
import * as core from './core.js'
import { errorMessage, firstLine } from './errors.js'

export type StageStatus = 'done' | 'skipped' | 'failed'

export interface StageRecord {
  name: string
  status: StageStatus
  detail: string
  seconds: number
}

/** One platform image of an index, as the summary shows it. */
export interface PlatformRow {
  /** The Nix system it was built for ('' for a merged image of a platform Nix has no name for). */
  system: string
  /** `os/arch[/variant]` from the image's config. */
  platform: string
  /** `sha256:` of its manifest in the registry; '' when it was not pushed. */
  digest: string
  /** `sha256:` of its config. */
  imageId: string
}

export class Report {
  readonly stages: StageRecord[] = []
  refs: string[] = []
  digest: string | null = null
  imageRef: string | null = null
  /** Each SBOM written: its file and how many store paths it lists. */
  sboms: { path: string; componentCount: number }[] = []
  /** The platform images of an index, one summary row each; empty for a single image. */
  platforms: PlatformRow[] = []
  /** A `test` or `test-url` ran and passed: the `tested` output. */
  tested = false
  /** `<repository>:sha256-<hex>.sig` of each digest signed: the `signatures` output. */
  signatures: string[] = []

  skip(name: string, why: string): void {
    core.info(`${name}: skipped (${why})`)
    this.stages.push({ name, status: 'skipped', detail: why, seconds: 0 })
  }

  /** Run one stage in a log group, timing it and recording how it ended. */
  async stage<T>(
    name: string,
    work: () => Promise<T>,
    describe: (result: T) => string
  ): Promise<T> {
    const started = performance.now()
    const seconds = (): number => (performance.now() - started) / 1000
    try {
      const result = await core.group(name, work)
      this.stages.push({ name, status: 'done', detail: describe(result), seconds: seconds() })
      return result
    } catch (error) {
      const message = errorMessage(error)
      this.stages.push({ name, status: 'failed', detail: firstLine(message), seconds: seconds() })
      throw error
    }
  }
}

const STATUS_ICON: Record<StageStatus, string> = { done: '✅', skipped: '⏭️', failed: '❌' }

/** The job summary as markdown (pure, for tests). */
export function renderSummary(report: Report): string {
  const rows = report.stages.map(
    s =>
      `| ${s.name} | ${STATUS_ICON[s.status]} ${s.status} | ${escapeCell(s.detail)} | ${s.seconds.toFixed(1)} |`
  )
  const lines = [
    '## Nix container',
    '',
    '| Stage | Status | Result | Seconds |',
    '| --- | --- | --- | ---: |',
    ...rows,
    ''
  ]
  if (report.platforms.length > 0) {
    lines.push(
      '| System | Platform | Manifest digest | Image ID |',
      '| --- | --- | --- | --- |',
      ...report.platforms.map(
        p =>
          `| ${escapeCell(p.system || '-')} | ${escapeCell(p.platform)} | \`${p.digest || 'not pushed'}\` | \`${p.imageId}\` |`
      ),
      ''
    )
  }
  if (report.refs.length > 0) {
    lines.push('**Refs**', '', ...report.refs.map(ref => `- \`${ref}\``), '')
  }
  if (report.digest) lines.push(`**Digest:** \`${report.digest}\``, '')
  if (report.imageRef) lines.push(`**Image ref:** \`${report.imageRef}\``, '')
  if (report.signatures.length > 0) {
    lines.push('**Signatures**', '', ...report.signatures.map(ref => `- \`${ref}\``), '')
  }
  for (const sbom of report.sboms) {
    lines.push(`**SBOM:** \`${sbom.path}\` (CycloneDX, ${sbom.componentCount} components)`, '')
  }
  return lines.join('\n')
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

export async function writeSummary(report: Report): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return
  await core.appendSummary(renderSummary(report))
}
