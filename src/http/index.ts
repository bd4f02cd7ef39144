import type { ControlDb } from '../db';
import { operators } from '../db/repositories';

export { buildHttpApp, type HttpDeps, type RouteInfo } from './app';
export { OperatorService, OPERATOR_ROLES, type OperatorRole, type OperatorView } from './operators';

/** Whether anyone can log in to the console yet. */
export const hasOperators = async (cdb: ControlDb): Promise<boolean> => (await operators.all(cdb.db)).length > 0;
