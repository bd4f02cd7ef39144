export { QueryService, type QueryRequest, type QueryAnswer } from './service';
export { startQueryServer } from './server';
export { openApiDocument } from './openapi';
export { startQueryRole } from './role';
export { RedisDailyCap, type DailyCap } from './cap';
