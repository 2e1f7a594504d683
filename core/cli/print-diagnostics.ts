import { formatDiagnostic, type Diagnostic } from '../graph/diagnostics.js';

/** Prints diagnostics to stderr, errors and warnings, and a summary line. Returns the error count. */
export function printDiagnostics(diagnostics: Diagnostic[], out: (line: string) => void = (l) => process.stderr.write(l + '\n')): number {
  const sorted = [...diagnostics].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
  for (const d of sorted) out(formatDiagnostic(d));
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = diagnostics.length - errors;
  if (errors > 0 || warnings > 0) out(`${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`);
  return errors;
}
