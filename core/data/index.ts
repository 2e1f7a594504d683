// Datasets: readers (JSONL, JSON, CSV, Parquet, HF folders, Hub), mapping to prompt records, seeded
// splits, and the synthetic arithmetic task.
export { DatasetError, rowSource } from './errors.js';
export { readJsonl } from './jsonl.js';
export { readJson, type JsonReadOptions } from './json.js';
export { readCsv, type CsvReadOptions } from './csv.js';
export { readParquet } from './parquet.js';
export { FILE_FORMATS, formatFromExtension, readDatasetFile, readDatasetFiles, type FileFormat, type ReadFileOptions } from './file-format.js';
export { readHfFolder, resolveHfSplits, type HfFolderOptions } from './hf-folder.js';
export { cachedDatasetSnapshot, downloadHubDataset, readHubDataset, type HubDatasetOptions } from './hub.js';
export { compileMapping, fillTemplate, mappingSchema, type MappingSpec, type RowMapper } from './mapping.js';
export { loadMapFunction, type AsyncRowMapper, type UserMapFunction } from './map-function.js';
export { testCount, trainTestSplit } from './split.js';
export {
  ARITHMETIC_LEVELS,
  ARITHMETIC_SYSTEM_PROMPT,
  arithmeticPromptRecord,
  digitwiseSum,
  formatGoldCompletion,
  generateArithmeticProblem,
  type ArithmeticLevel,
  type ArithmeticProblem,
} from './arithmetic.js';
export {
  arithmeticProblems,
  arithmeticSplit,
  heldoutOverlap,
  problemFacts,
  problemFootprint,
  streamFootprint,
  type ArithmeticSetOptions,
  type ArithmeticSplit,
  type ArithmeticStreamSpec,
  type ProblemFootprint,
} from './arithmetic-set.js';
export { emitLazily, type EmitContext } from './emit.js';
