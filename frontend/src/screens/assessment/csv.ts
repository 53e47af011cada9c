// formulaStart: a cell a spreadsheet would run as a formula (OWASP, "CSV
// Injection"): it starts with =, +, -, @, a tab or a carriage return.
const formulaStart = /^[=+\-@\t\r]/
// A plain number ("-5", "+1.5e3") is no formula.
const plainNumber = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

// safeCell escapes a text cell a spreadsheet would run as a formula with a
// leading single quote, so it shows as the text it is. Host names, reasons
// and the like come from uploaded files and agents: they are stored as
// given and escaped on every export (the server's CSV writers do the same,
// ferry.CSVSafe). Numbers are numbers.
export function safeCell(v: string | number | boolean | null | undefined): string {
  if (v == null) return ''
  const s = String(v)
  if (typeof v === 'string' && formulaStart.test(s) && !plainNumber.test(s)) return "'" + s
  return s
}

// toCSV renders rows as RFC 4180 CSV (quoted where needed, CRLF line ends),
// with a BOM so that spreadsheet programs read UTF-8 (Chinese) correctly,
// and every formula-like text cell escaped (safeCell).
export function toCSV(header: string[], rows: (string | number | boolean | null | undefined)[][]): string {
  const cell = (v: string | number | boolean | null | undefined) => {
    const s = safeCell(v)
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
  }
  return '\ufeff' + [header, ...rows].map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n'
}

export function download(filename: string, text: string, type = 'text/csv;charset=utf-8'): void {
  const url = URL.createObjectURL(new Blob([text], { type }))
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  document.body.appendChild(a)
  a.click()
  a.remove()
  URL.revokeObjectURL(url)
}
