// What an error says, whatever was thrown.
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

export function firstLine(text: string): string {
  return text.split('\n')[0] ?? ''
}
