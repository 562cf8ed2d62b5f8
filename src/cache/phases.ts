// Where a restore's seconds go, for its log: each phase's time since the one before.

export interface Phases {
  /** The phase that just ended. */
  end(name: string): void
  /** `look-up 0.01 s, download and extract 1.20 s, ...` */
  summary(): string
}

export function phases(now: () => number = () => performance.now()): Phases {
  const ended: [string, number][] = []
  let last = now()
  return {
    end(name) {
      const at = now()
      ended.push([name, (at - last) / 1000])
      last = at
    },
    summary() {
      return ended.map(([name, seconds]) => `${name} ${seconds.toFixed(2)} s`).join(', ')
    }
  }
}
