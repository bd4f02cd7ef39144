export { appendLog, verifyLog, listLog, type LogEntry, type VerifyResult } from './log';
export { canonicalJson, chainHash, recordDigest, GENESIS_HASH } from './chain';
