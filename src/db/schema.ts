import { sql } from 'drizzle-orm';
import { type AnySQLiteColumn, blob, index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

// Times are ISO-8601 UTC strings; calendar dates (use periods, deadlines) are YYYY-MM-DD in Asia/Taipei.

export const agency = sqliteTable('agency', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  code: text('code').notNull().unique(),
  nameZh: text('name_zh').notNull(),
  nameEn: text('name_en'),
  government: integer('government', { mode: 'boolean' }).notNull(),
  sponsorId: integer('sponsor_id').references((): AnySQLiteColumn => agency.id),
  createdAt: text('created_at').notNull(),
  /** R14.2: where notices about the agency's links go (and, for a sponsor, about the bodies it sponsors). */
  emails: text('emails', { mode: 'json' }).$type<string[]>().notNull().default([]),
});

export const link = sqliteTable(
  'link',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    agencyId: integer('agency_id').notNull().references(() => agency.id),
    status: text('status', { enum: ['pending', 'active', 'suspended', 'terminated', 'rejected'] }).notNull(),
    currentRevision: integer('current_revision').notNull(),
    appliedAt: text('applied_at').notNull(),
    approvedAt: text('approved_at'),
    approvedBy: text('approved_by'),
    letterNo: text('letter_no'),
    letterDate: text('letter_date'),
    statusChangedAt: text('status_changed_at').notNull(),
    statusReason: text('status_reason'),
    endReason: text('end_reason'),
    endsOn: text('ends_on'),
    // Secret of the `hmac` transform: identifiers stay linkable within one link, not across links.
    hmacSecret: text('hmac_secret').notNull(),
  },
  (t) => [index('link_status_idx').on(t.status)],
);

export const linkRevision = sqliteTable(
  'link_revision',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    linkId: integer('link_id').notNull().references(() => link.id),
    number: integer('number').notNull(),
    content: text('content', { mode: 'json' }).notNull(),
    changeRequestId: integer('change_request_id'),
    createdAt: text('created_at').notNull(),
  },
  (t) => [uniqueIndex('link_revision_number_idx').on(t.linkId, t.number)],
);

export const changeRequest = sqliteTable(
  'change_request',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    linkId: integer('link_id').notNull().references(() => link.id),
    kind: text('kind').notNull(),
    change: text('change', { mode: 'json' }).notNull(),
    status: text('status', { enum: ['pending', 'approved', 'rejected'] }).notNull(),
    filedAt: text('filed_at').notNull(),
    filedBy: text('filed_by'),
    decidedAt: text('decided_at'),
    decidedBy: text('decided_by'),
    reason: text('reason'),
    revision: integer('revision'),
    /** R5.2: the agency's management-rules version the request was filed with (its newest on record, or the one filed with it). */
    rulesDocument: integer('rules_document').references((): AnySQLiteColumn => document.id),
    /** R-F9: NIA's formal reply approving it. */
    letterNo: text('letter_no'),
    letterDate: text('letter_date'),
  },
  (t) => [index('change_request_link_idx').on(t.linkId)],
);

export const document = sqliteTable('document', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  agencyId: integer('agency_id').notNull().references(() => agency.id),
  linkId: integer('link_id').references(() => link.id),
  kind: text('kind').notNull(),
  version: integer('version').notNull(),
  filename: text('filename').notNull(),
  mediaType: text('media_type').notNull(),
  size: integer('size').notNull(),
  sha256: text('sha256').notNull(),
  content: blob('content', { mode: 'buffer' }).notNull(),
  createdAt: text('created_at').notNull(),
});

/** R4.1: a reviewer's record of which of the eight topics of point 4 a management-rules version covers. */
export const rulesReview = sqliteTable(
  'rules_review',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    documentId: integer('document_id').notNull().references(() => document.id),
    covers: text('covers', { mode: 'json' }).$type<number[]>().notNull(),
    note: text('note'),
    reviewedBy: text('reviewed_by').notNull(),
    reviewedAt: text('reviewed_at').notNull(),
  },
  (t) => [index('rules_review_document_idx').on(t.documentId, t.id)],
);

/** R8.1, R9.1: an outsourced contractor (or, with a parent, a sub-contractor) of a link and its dedicated machines. */
export const vendor = sqliteTable(
  'vendor',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    linkId: integer('link_id').notNull().references(() => link.id),
    parentId: integer('parent_id').references((): AnySQLiteColumn => vendor.id),
    name: text('name').notNull(),
    contact: text('contact').notNull(),
    machines: text('machines', { mode: 'json' }).$type<string[]>().notNull(),
    addedAt: text('added_at').notNull(),
    addedBy: text('added_by').notNull(),
    removedAt: text('removed_at'),
    removedBy: text('removed_by'),
    // The `ips` change request that dropped its machines from the allow-list, when one was needed.
    removalChangeId: integer('removal_change_id').references(() => changeRequest.id),
  },
  (t) => [index('vendor_link_idx').on(t.linkId)],
);

export const pgpKey = sqliteTable('pgp_key', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  agencyId: integer('agency_id').notNull().references(() => agency.id),
  fingerprint: text('fingerprint').notNull(),
  algorithm: text('algorithm').notNull(),
  userIds: text('user_ids', { mode: 'json' }).notNull(),
  createdAt: text('created_at').notNull(),
  expiresAt: text('expires_at'),
  armored: text('armored').notNull(),
  addedAt: text('added_at').notNull(),
}, (t) => [uniqueIndex('pgp_key_agency_fpr_idx').on(t.agencyId, t.fingerprint)]);

export const sftpAccount = sqliteTable('sftp_account', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  username: text('username').notNull().unique(),
  linkId: integer('link_id').notNull().references(() => link.id),
  enabled: integer('enabled', { mode: 'boolean' }).notNull(),
  passwordHash: text('password_hash'),
  createdAt: text('created_at').notNull(),
});

export const sshKey = sqliteTable(
  'ssh_key',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    accountId: integer('account_id').notNull().references(() => sftpAccount.id),
    algorithm: text('algorithm').notNull(),
    fingerprint: text('fingerprint').notNull(),
    publicKey: text('public_key').notNull(),
    addedAt: text('added_at').notNull(),
    revokedAt: text('revoked_at'),
  },
  (t) => [index('ssh_key_account_idx').on(t.accountId)],
);

/** R6.1–R6.3: the append-only, hash-chained usage log. `seq` is contiguous from 1. */
export const usageLog = sqliteTable(
  'usage_log',
  {
    seq: integer('seq').primaryKey(),
    at: text('at').notNull(),
    type: text('type').notNull(),
    agency: text('agency'),
    linkId: integer('link_id'),
    revision: integer('revision'),
    actor: text('actor'),
    ip: text('ip'),
    channel: text('channel'),
    object: text('object'),
    detail: text('detail').notNull().default(sql`'{}'`),
    digest: text('digest').notNull(),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
  },
  (t) => [index('usage_log_link_idx').on(t.linkId, t.seq), index('usage_log_type_idx').on(t.type, t.seq), index('usage_log_at_idx').on(t.at)],
);

/** One extract file (DESIGN: delivery): what was built, from which revision, and where it went. */
export const delivery = sqliteTable(
  'delivery',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    linkId: integer('link_id').notNull().references(() => link.id),
    revision: integer('revision').notNull(),
    // A job that runs again (retry, stalled worker) finds its delivery by this key: never two files.
    idempotencyKey: text('idempotency_key').notNull().unique(),
    trigger: text('trigger', { enum: ['manual', 'schedule'] }).notNull(),
    mode: text('mode', { enum: ['full', 'incremental'] }).notNull(),
    status: text('status', { enum: ['building', 'built', 'failed', 'purged'] }).notNull(),
    dataset: text('dataset').notNull(),
    fields: text('fields', { mode: 'json' }).$type<string[]>().notNull(),
    rows: integer('rows'),
    fileName: text('file_name'),
    bytes: integer('bytes'),
    plainSha256: text('plain_sha256'),
    cipherSha256: text('cipher_sha256'),
    manifestSha256: text('manifest_sha256'),
    watermarkFrom: text('watermark_from'),
    watermarkTo: text('watermark_to'),
    createdAt: text('created_at').notNull(),
    builtAt: text('built_at'),
    durationMs: integer('duration_ms'),
    expiresAt: text('expires_at'),
    purgedAt: text('purged_at'),
    error: text('error'),
    channels: text('channels', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    // The job attempt that owns a building delivery: only it may publish the file (a stalled worker that lost its job may not).
    attempt: text('attempt'),
  },
  (t) => [index('delivery_link_idx').on(t.linkId, t.id), index('delivery_status_idx').on(t.status)],
);

/**
 * Signed checkpoints of the usage log (issue 6): NIA's detached OpenPGP signature over the canonical
 * statement `(seq, hash, at)`. Exported copies kept off the box make truncation detectable.
 */
export const logCheckpoint = sqliteTable(
  'log_checkpoint',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    seq: integer('seq').notNull(),
    hash: text('hash').notNull(),
    at: text('at').notNull(),
    keyFingerprint: text('key_fingerprint').notNull(),
    signature: text('signature').notNull(),
  },
  (t) => [index('log_checkpoint_seq_idx').on(t.seq)],
);

/**
 * R6.2: the anchor of each archived head of the usage log. Records from_seq..to_seq live in a signed
 * archive file; the live log continues at to_seq + 1 with prev_hash = last_hash. The delete guard of
 * usage_log allows removing only seqs up to the newest anchor.
 */
export const logArchive = sqliteTable('log_archive', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  fromSeq: integer('from_seq').notNull(),
  toSeq: integer('to_seq').notNull().unique(),
  prevHash: text('prev_hash').notNull(),
  lastHash: text('last_hash').notNull(),
  records: integer('records').notNull(),
  fileName: text('file_name').notNull(),
  sha256: text('sha256').notNull(),
  // The signed manifest, verbatim, and NIA's detached signature over it.
  manifest: text('manifest').notNull(),
  signature: text('signature').notNull(),
  createdAt: text('created_at').notNull(),
});

/** R7.1: one detected anomaly, deduplicated by `key` (rule + subject + window). */
export const anomaly = sqliteTable(
  'anomaly',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    rule: text('rule').notNull(),
    key: text('key').notNull().unique(),
    linkId: integer('link_id'),
    agency: text('agency'),
    ip: text('ip'),
    summary: text('summary').notNull(),
    // Usage-log seqs that show it (capped), and how many records matched in all.
    evidence: text('evidence', { mode: 'json' }).$type<number[]>().notNull(),
    count: integer('count').notNull(),
    detail: text('detail', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    firstAt: text('first_at').notNull(),
    lastAt: text('last_at').notNull(),
    detectedAt: text('detected_at').notNull(),
    updatedAt: text('updated_at').notNull(),
    status: text('status', { enum: ['open', 'dismissed', 'finding'] }).notNull(),
    // Set when an operator turns it into an audit finding (compliance).
    findingId: integer('finding_id'),
  },
  (t) => [index('anomaly_link_idx').on(t.linkId), index('anomaly_detected_idx').on(t.detectedAt)],
);

/** Where the anomaly scan stopped: the last usage-log seq it has looked at. */
export const anomalyScan = sqliteTable('anomaly_scan', {
  id: integer('id').primaryKey(),
  lastSeq: integer('last_seq').notNull(),
  scannedAt: text('scanned_at').notNull(),
});

// ---- compliance (R6.4, R7.1, R9.1, R10–R13, R-F5) ----

/** An audit of an agency (or one of its links): NIA's, ad hoc, from an anomaly, a self-audit, or a sponsor's (R14.1). */
export const audit = sqliteTable('audit', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  agencyId: integer('agency_id').notNull().references(() => agency.id),
  linkId: integer('link_id').references(() => link.id),
  kind: text('kind', { enum: ['periodic', 'ad-hoc', 'anomaly', 'self', 'sponsor'] }).notNull(),
  auditor: text('auditor').notNull(),
  date: text('date').notNull(),
  summary: text('summary').notNull(),
  periodFrom: text('period_from'),
  periodTo: text('period_to'),
  documentId: integer('document_id'),
  createdAt: text('created_at').notNull(),
});

/** Something to remediate by a deadline (R7.1, R9.1, R10.1). */
export const finding = sqliteTable(
  'finding',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    linkId: integer('link_id').notNull().references(() => link.id),
    auditId: integer('audit_id').references(() => audit.id),
    anomalyId: integer('anomaly_id'),
    text: text('text').notNull(),
    deadline: text('deadline').notNull(),
    evidence: text('evidence', { mode: 'json' }).$type<{ seqs?: number[]; documents?: number[] }>().notNull(),
    // The day the agency's document says the improvements were completed, its reference, and when
    // that was recorded (R10.4): a claimed date always stands beside the time it was entered.
    remediatedOn: text('remediated_on'),
    remediationNote: text('remediation_note'),
    remediationLetterNo: text('remediation_letter_no'),
    remediationRecordedAt: text('remediation_recorded_at'),
    createdAt: text('created_at').notNull(),
  },
  (t) => [index('finding_link_idx').on(t.linkId)],
);

/** One suspension of a link, from its start to its end (resumed, or ended by a new-application rule). */
export const suspension = sqliteTable(
  'suspension',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    linkId: integer('link_id').notNull().references(() => link.id),
    startedOn: text('started_on').notNull(),
    reason: text('reason').notNull(),
    findingId: integer('finding_id'),
    resumeRequestedOn: text('resume_requested_on'),
    endedOn: text('ended_on'),
    outcome: text('outcome', { enum: ['resumed', 'ended'] }),
    // A suspension without a finding: the completion of improvements, as for a finding (R10.4).
    remediatedOn: text('remediated_on'),
    remediationLetterNo: text('remediation_letter_no'),
    remediationRecordedAt: text('remediation_recorded_at'),
  },
  (t) => [index('suspension_link_idx').on(t.linkId)],
);

/** A written notice to an agency (and its sponsor), stored as sent. */
export const notice = sqliteTable('notice', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  agencyId: integer('agency_id').notNull().references(() => agency.id),
  linkId: integer('link_id').references(() => link.id),
  kind: text('kind').notNull(),
  textZh: text('text_zh').notNull(),
  textEn: text('text_en').notNull(),
  recipients: text('recipients', { mode: 'json' }).$type<string[]>().notNull(),
  createdAt: text('created_at').notNull(),
});

/** R12.1 necessity reviews. */
export const necessityReview = sqliteTable('necessity_review', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  linkId: integer('link_id').notNull().references(() => link.id),
  date: text('date').notNull(),
  outcome: text('outcome', { enum: ['keep', 'stop'] }).notNull(),
  note: text('note'),
  createdAt: text('created_at').notNull(),
});

/** R-F5: what happens to delivered data when the purpose or the period ends, and who confirmed it. */
export const disposal = sqliteTable('disposal', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  linkId: integer('link_id').notNull().unique().references(() => link.id),
  openedOn: text('opened_on').notNull(),
  required: text('required').notNull(),
  /** When the confirmation was recorded. */
  confirmedAt: text('confirmed_at'),
  confirmedBy: text('confirmed_by'),
  how: text('how'),
  /** The day the agency's document says the data was disposed of, and its reference. */
  doneOn: text('done_on'),
  letterNo: text('letter_no'),
});

/** R13.1: NIA's written notice of inactivity and the agency's confirmation that it has no need. */
export const inactivity = sqliteTable('inactivity', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  linkId: integer('link_id').notNull().unique().references(() => link.id),
  flaggedOn: text('flagged_on').notNull(),
  lastUse: text('last_use').notNull(),
  noticeOn: text('notice_on'),
  /** The day of the agency's written confirmation, its reference, and when it was recorded. */
  confirmedOn: text('confirmed_on'),
  confirmationLetterNo: text('confirmation_letter_no'),
  confirmationRecordedAt: text('confirmation_recorded_at'),
});

/** R11.1: an agency's written notice to end a link, as received and as recorded. */
export const termination = sqliteTable(
  'termination',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    linkId: integer('link_id').notNull().references(() => link.id),
    noticeDate: text('notice_date').notNull(),
    letterNo: text('letter_no').notNull(),
    effectiveOn: text('effective_on').notNull(),
    recordedAt: text('recorded_at').notNull(),
    recordedBy: text('recorded_by').notNull(),
  },
  (t) => [index('termination_link_idx').on(t.linkId)],
);

/**
 * Whether this installation is a drill (its clock may be moved) or production (it never may). One
 * row, written by init, immutable by trigger: an installation is never switched between the two.
 */
export const installation = sqliteTable('installation', {
  id: integer('id').primaryKey(),
  mode: text('mode', { enum: ['production', 'drill'] }).notNull(),
  createdAt: text('created_at').notNull(),
});

// ---- the operator console (issue 8) ----

/** A person who uses the console: admin (approve, suspend, manage), operator (queues), auditor (read, export). */
export const operator = sqliteTable('operator', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  username: text('username').notNull().unique(),
  role: text('role', { enum: ['admin', 'operator', 'auditor'] }).notNull(),
  passwordHash: text('password_hash').notNull(),
  // Base32 secret of RFC 6238 TOTP; null = password only.
  totpSecret: text('totp_secret'),
  // The last time step a code was accepted for: a code works once.
  totpLastStep: integer('totp_last_step'),
  disabled: integer('disabled', { mode: 'boolean' }).notNull(),
  // Consecutive failed logins; reaching the limit locks the operator until locked_until.
  failedLogins: integer('failed_logins').notNull(),
  lockedUntil: text('locked_until'),
  lastLoginAt: text('last_login_at'),
  passwordChangedAt: text('password_changed_at').notNull(),
  createdAt: text('created_at').notNull(),
  createdBy: text('created_by').notNull(),
});

/**
 * A console session. The cookie carries a random token; only its SHA-256 is stored, so a copy of
 * the database logs nobody in. Sessions end when idle too long or at an absolute expiry.
 */
export const operatorSession = sqliteTable(
  'operator_session',
  {
    tokenHash: text('token_hash').primaryKey(),
    operatorId: integer('operator_id').notNull().references(() => operator.id),
    // The synchronizer token every state-changing request of this session must carry.
    csrfToken: text('csrf_token').notNull(),
    createdAt: text('created_at').notNull(),
    lastSeenAt: text('last_seen_at').notNull(),
    expiresAt: text('expires_at').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
  },
  (t) => [index('operator_session_operator_idx').on(t.operatorId)],
);

// ---- the SFTP inbox (issue 18) ----

export const INBOX_UPLOAD_STATES = ['pending', 'processing', 'answered', 'refused', 'in-force', 'replaced'] as const;
export type InboxUploadState = (typeof INBOX_UPLOAD_STATES)[number];

/**
 * A file an agency uploaded to /inbox: a batch request, or a subject list (`subjects-…`). The row is
 * written at CLOSE, once every byte is on disk; `spool` is the private file holding them until the
 * processor answers. A name is unique per link only while its upload is pending or processing.
 */
export const inboxUpload = sqliteTable(
  'inbox_upload',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    linkId: integer('link_id').notNull().references(() => link.id),
    account: text('account').notNull(),
    ip: text('ip').notNull(),
    name: text('name').notNull(),
    kind: text('kind', { enum: ['batch', 'subjects'] }).notNull(),
    bytes: integer('bytes').notNull(),
    sha256: text('sha256').notNull(),
    spool: text('spool').notNull(),
    receivedAt: text('received_at').notNull(),
    state: text('state', { enum: INBOX_UPLOAD_STATES }).notNull().default('pending'),
    outcomeCode: text('outcome_code'),
    outcomeAt: text('outcome_at'),
    outcome: text('outcome', { mode: 'json' }).$type<Record<string, unknown>>(),
  },
  (t) => [
    uniqueIndex('inbox_upload_pending_name').on(t.linkId, t.name).where(sql`${t.state} IN ('pending', 'processing')`),
    index('inbox_upload_link_idx').on(t.linkId, t.id),
    index('inbox_upload_state_idx').on(t.state, t.receivedAt),
  ],
);

// ---- the agency's own duties (R7.2, R9.2) ----

/** R7.2: the agency's written explanation and improvement measures (說明及改善措施) answering a finding, kept as a document. */
export const findingResponse = sqliteTable(
  'finding_response',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    findingId: integer('finding_id').notNull().references(() => finding.id),
    documentId: integer('document_id').notNull().references(() => document.id),
    note: text('note'),
    /** The Taipei day it was recorded: the day that counts against the finding's deadline. */
    receivedOn: text('received_on').notNull(),
    recordedAt: text('recorded_at').notNull(),
    recordedBy: text('recorded_by').notNull(),
  },
  (t) => [index('finding_response_finding_idx').on(t.findingId)],
);

/** R9.2: a contractor or sub-contractor an audit covered, and the evidence it gave. */
export const auditVendor = sqliteTable(
  'audit_vendor',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    auditId: integer('audit_id').notNull().references(() => audit.id),
    vendorId: integer('vendor_id').notNull().references(() => vendor.id),
    evidence: text('evidence'),
  },
  (t) => [uniqueIndex('audit_vendor_audit_vendor_idx').on(t.auditId, t.vendorId), index('audit_vendor_vendor_idx').on(t.vendorId)],
);

// ---- batch requests and subject lists (issue 18) ----

/**
 * A link's subject list in force (R3.4): one row per link, replaced whole by the agency's next
 * `subjects-…` upload. Only its size, key and hash are shown anywhere; the identifiers stay in
 * subject_entry, read only by the extract that filters with them.
 */
export const subjectList = sqliteTable('subject_list', {
  linkId: integer('link_id').primaryKey().references(() => link.id),
  uploadId: integer('upload_id').notNull(),
  keyField: text('key_field').notNull(),
  count: integer('count').notNull(),
  sha256: text('sha256').notNull(),
  inForceAt: text('in_force_at').notNull(),
});

/**
 * The persons on a link's current list, by the list's key field. `addedAt` is when the person came
 * onto the list (kept while they stay on it): an increment gives persons added since the previous
 * delivery their older records too.
 */
export const subjectEntry = sqliteTable(
  'subject_entry',
  {
    linkId: integer('link_id').notNull().references(() => link.id),
    id: text('id').notNull(),
    addedAt: text('added_at').notNull(),
  },
  (t) => [uniqueIndex('subject_entry_pk').on(t.linkId, t.id)],
);
