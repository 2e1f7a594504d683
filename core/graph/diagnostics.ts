// Validation diagnostics: every problem found in a graph file, with a stable code, a source position
// and (where one exists) a suggestion. Validation collects all of them instead of stopping at the first.

export type DiagnosticCode =
  | 'FILE_NOT_FOUND'
  | 'YAML_SYNTAX'
  | 'BAD_GRAPH_FIELD'
  | 'UNKNOWN_PARAM'
  | 'UNKNOWN_ENV'
  | 'BAD_SET'
  | 'UNKNOWN_PLUGIN'
  | 'BAD_PLUGIN'
  | 'PLUGIN_API_MISMATCH'
  | 'PLUGIN_PATH_NOT_ALLOWED'
  | 'DUPLICATE_NODE_TYPE'
  | 'UNKNOWN_NODE_TYPE'
  | 'UNKNOWN_NODE_VERSION'
  | 'UNPINNED_NODE_VERSION'
  | 'UNKNOWN_CONFIG_KEY'
  | 'BAD_CONFIG_VALUE'
  | 'UNKNOWN_PORT'
  | 'UNKNOWN_NODE_REF'
  | 'BAD_EDGE'
  | 'PORT_TYPE_MISMATCH'
  | 'MISSING_INPUT'
  | 'TOO_MANY_EDGES'
  | 'GRAPH_CYCLE'
  | 'GRAPH_MISMATCH';

export interface SourcePos {
  file: string;
  /** 1-based; 0 when the value has no source line (it came from `--set` or a default). */
  line: number;
  col: number;
}

export interface Diagnostic extends SourcePos {
  code: DiagnosticCode;
  severity: 'error' | 'warning';
  message: string;
  /** A likely fix ("did you mean `reward.format`?"). */
  suggestion?: string;
  details?: Record<string, unknown>;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.col}` : d.file;
  const hint = d.suggestion ? ` (${d.suggestion})` : '';
  return `${where}: ${d.severity} ${d.code}: ${d.message}${hint}`;
}

/** Thrown where diagnostics must stop a caller that cannot go on (running an invalid graph). */
export class GraphValidationError extends Error {
  constructor(readonly diagnostics: Diagnostic[]) {
    super(
      `graph is invalid:\n${diagnostics
        .filter((d) => d.severity === 'error')
        .map((d) => '  ' + formatDiagnostic(d))
        .join('\n')}`,
    );
    this.name = 'GraphValidationError';
  }
}

export function hasErrors(diagnostics: Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}
