export { BatchService, type BatchDeps, type BatchOutcome } from './service';
export { batchProcessor } from './job';
export { parseRequest, type ParsedRequest } from './request';
export { openRequest } from './open';
export { batchList, type BatchListItem } from './list';
