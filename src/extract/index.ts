export { PermanentError } from '../errors';
export { ExtractService, CONFIDENTIALITY_NOTICE, type DeliveryView, type ExtractRequest } from './deliveries';
export { openSourceDb, SqliteSource, sourceDbPath, type ExtractSource } from './source';
export { buildExtract } from './build';
export { mask, valueFn } from './transforms';
export { csvLine, csvField } from './csv';
export { projection } from './transforms';
export { ident } from './sql-ident';
export { csvExtensionBuilt } from './csv-sql';
