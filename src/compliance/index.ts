export { ComplianceService, type SweepResult, REVIEW_CYCLE_MONTHS } from './service';
export { renderNotice, rocText, NOTICE_KINDS, type NoticeKind } from './notices';
