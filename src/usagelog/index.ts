export { appendLog, verifyLog, listLog, type LogEntry, type VerifyResult } from './log';
export { canonicalJson, chainHash, recordDigest, GENESIS_HASH } from './chain';
export { createCheckpoint, exportCheckpoints, listCheckpoints, checkpointStatement, type CheckpointExport, type CheckpointRow } from './checkpoints';
export { archiveLog, listArchives, retentionFloor, type ArchiveResult } from './archive';
export { verifyUsageLog, type VerifyOptions, type VerifyReport } from './verify';
export { exportEvidence, verifyEvidence, type EvidenceCheck, type EvidenceSummary } from './evidence';
export { usageReport, reportCsv, reportHtml, type UsageReport } from './report';
export { scanAnomalies, listAnomalies, detect, outsideBusinessHours, RULES, type AnomalyRow, type AnomalySettings, type ScanResult } from './anomalies';
export { backup, restore, type BackupResult, type RestoreResult } from './backup';
