export * from './result';
export * from './dates';
export * from './net';
export * from './datasets';
export * from './link';
export * from './revision';
export * from './change';
export * from './agency';
export * from './compliance';
export * from './time';
export * from './rules';
export * from './vendor';
export * from './scope';
export * from './channel';
export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };
export { idCheckDigit, isValidTaiwanId } from './ids';
