import { and, asc, desc, eq, inArray, isNull, max } from 'drizzle-orm';
import type { Db } from '../index';
import type { anomaly, audit, auditVendor, disposal, finding, findingResponse, inactivity, necessityReview, notice, suspension, termination, usageLog } from '../schema';
import { allOf, getOf, runOf, tablesOf } from '../dialect';

export type AuditRow = typeof audit.$inferSelect;
export type FindingRow = typeof finding.$inferSelect;
export type SuspensionRow = typeof suspension.$inferSelect;
export type NoticeRow = typeof notice.$inferSelect;
export type ReviewRow = typeof necessityReview.$inferSelect;
export type DisposalRow = typeof disposal.$inferSelect;
export type InactivityRow = typeof inactivity.$inferSelect;
export type TerminationRow = typeof termination.$inferSelect;
export type FindingResponseRow = typeof findingResponse.$inferSelect;
export type AuditVendorRow = typeof auditVendor.$inferSelect;

export const insertAudit = async (tx: Db, row: Omit<AuditRow, 'id'>): Promise<AuditRow> => {
  const { audit } = tablesOf(tx);
  return getOf(tx.insert(audit).values(row).returning());
};
export const auditById = async (tx: Db, id: number): Promise<AuditRow | undefined> => {
  const { audit } = tablesOf(tx);
  return getOf(tx.select().from(audit).where(eq(audit.id, id)));
};
export async function audits(tx: Db, f: { agencyId?: number; kind?: AuditRow['kind'] } = {}): Promise<AuditRow[]> {
  const { audit } = tablesOf(tx);
  const where = [f.agencyId !== undefined ? eq(audit.agencyId, f.agencyId) : undefined, f.kind ? eq(audit.kind, f.kind) : undefined].filter((x) => x !== undefined);
  return allOf(tx.select().from(audit).where(where.length ? and(...where) : undefined).orderBy(asc(audit.date), asc(audit.id)));
}

export const insertFinding = async (tx: Db, row: Omit<FindingRow, 'id'>): Promise<FindingRow> => {
  const { finding } = tablesOf(tx);
  return getOf(tx.insert(finding).values(row).returning());
};
export const findingById = async (tx: Db, id: number): Promise<FindingRow | undefined> => {
  const { finding } = tablesOf(tx);
  return getOf(tx.select().from(finding).where(eq(finding.id, id)));
};
export async function findings(tx: Db, linkId?: number): Promise<FindingRow[]> {
  const { finding } = tablesOf(tx);
  return allOf(tx.select().from(finding).where(linkId !== undefined ? eq(finding.linkId, linkId) : undefined).orderBy(asc(finding.id)));
}
export async function updateFinding(tx: Db, id: number, values: Partial<Omit<FindingRow, 'id'>>): Promise<void> {
  const { finding } = tablesOf(tx);
  await runOf(tx.update(finding).set(values).where(eq(finding.id, id)));
}

export const insertSuspension = async (tx: Db, row: Omit<SuspensionRow, 'id'>): Promise<SuspensionRow> => {
  const { suspension } = tablesOf(tx);
  return getOf(tx.insert(suspension).values(row).returning());
};
export async function openSuspension(tx: Db, linkId: number): Promise<SuspensionRow | undefined> {
  const { suspension } = tablesOf(tx);
  return getOf(tx.select().from(suspension).where(and(eq(suspension.linkId, linkId), isNull(suspension.endedOn))).orderBy(desc(suspension.id)).limit(1));
}
export async function updateSuspension(tx: Db, id: number, values: Partial<Omit<SuspensionRow, 'id'>>): Promise<void> {
  const { suspension } = tablesOf(tx);
  await runOf(tx.update(suspension).set(values).where(eq(suspension.id, id)));
}
export const openSuspensions = async (tx: Db): Promise<SuspensionRow[]> => {
  const { suspension } = tablesOf(tx);
  return allOf(tx.select().from(suspension).where(isNull(suspension.endedOn)).orderBy(asc(suspension.id)));
};

export const insertNotice = async (tx: Db, row: Omit<NoticeRow, 'id'>): Promise<NoticeRow> => {
  const { notice } = tablesOf(tx);
  return getOf(tx.insert(notice).values(row).returning());
};
export async function notices(tx: Db, linkId?: number): Promise<NoticeRow[]> {
  const { notice } = tablesOf(tx);
  return allOf(tx.select().from(notice).where(linkId !== undefined ? eq(notice.linkId, linkId) : undefined).orderBy(asc(notice.id)));
}

export const insertReview = async (tx: Db, row: Omit<ReviewRow, 'id'>): Promise<ReviewRow> => {
  const { necessityReview } = tablesOf(tx);
  return getOf(tx.insert(necessityReview).values(row).returning());
};
export async function lastReview(tx: Db, linkId: number): Promise<ReviewRow | undefined> {
  const { necessityReview } = tablesOf(tx);
  return getOf(tx.select().from(necessityReview).where(eq(necessityReview.linkId, linkId)).orderBy(desc(necessityReview.date), desc(necessityReview.id)).limit(1));
}

/** The day of each link's latest necessity review (links never reviewed are absent). */
export async function lastReviewDates(tx: Db, linkIds: readonly number[]): Promise<Map<number, string>> {
  const { necessityReview } = tablesOf(tx);
  if (linkIds.length === 0) return new Map();
  const rows = await allOf(tx
    .select({ linkId: necessityReview.linkId, date: max(necessityReview.date) })
    .from(necessityReview)
    .where(inArray(necessityReview.linkId, [...linkIds]))
    .groupBy(necessityReview.linkId));
  return new Map(rows.flatMap((r) => (r.date === null ? [] : [[r.linkId, r.date] as const])));
}

export const disposalFor = async (tx: Db, linkId: number): Promise<DisposalRow | undefined> => {
  const { disposal } = tablesOf(tx);
  return getOf(tx.select().from(disposal).where(eq(disposal.linkId, linkId)));
};
export const insertDisposal = async (tx: Db, row: Omit<DisposalRow, 'id'>): Promise<DisposalRow> => {
  const { disposal } = tablesOf(tx);
  return getOf(tx.insert(disposal).values(row).returning());
};
export async function updateDisposal(tx: Db, id: number, values: Partial<Omit<DisposalRow, 'id'>>): Promise<void> {
  const { disposal } = tablesOf(tx);
  await runOf(tx.update(disposal).set(values).where(eq(disposal.id, id)));
}
export const disposals = async (tx: Db): Promise<DisposalRow[]> => {
  const { disposal } = tablesOf(tx);
  return allOf(tx.select().from(disposal).orderBy(asc(disposal.id)));
};

export const inactivityFor = async (tx: Db, linkId: number): Promise<InactivityRow | undefined> => {
  const { inactivity } = tablesOf(tx);
  return getOf(tx.select().from(inactivity).where(eq(inactivity.linkId, linkId)));
};
export async function inactivityOf(tx: Db, linkIds: readonly number[]): Promise<InactivityRow[]> {
  const { inactivity } = tablesOf(tx);
  if (linkIds.length === 0) return [];
  return allOf(tx.select().from(inactivity).where(inArray(inactivity.linkId, [...linkIds])));
}
export const insertInactivity = async (tx: Db, row: Omit<InactivityRow, 'id'>): Promise<InactivityRow> => {
  const { inactivity } = tablesOf(tx);
  return getOf(tx.insert(inactivity).values(row).returning());
};
export async function updateInactivity(tx: Db, id: number, values: Partial<Omit<InactivityRow, 'id'>>): Promise<void> {
  const { inactivity } = tablesOf(tx);
  await runOf(tx.update(inactivity).set(values).where(eq(inactivity.id, id)));
}
export async function deleteInactivity(tx: Db, id: number): Promise<void> {
  const { inactivity } = tablesOf(tx);
  await runOf(tx.delete(inactivity).where(eq(inactivity.id, id)));
}

export const insertTermination = async (tx: Db, row: Omit<TerminationRow, 'id'>): Promise<TerminationRow> => {
  const { termination } = tablesOf(tx);
  return getOf(tx.insert(termination).values(row).returning());
};
export const terminations = async (tx: Db, linkId: number): Promise<TerminationRow[]> => {
  const { termination } = tablesOf(tx);
  return allOf(tx.select().from(termination).where(eq(termination.linkId, linkId)).orderBy(asc(termination.id)));
};

/** When the agency last used the link: a download, an online query, or a delivered push or e-mail (R13.1). */
export const USE_EVENTS = ['file.downloaded', 'query.answered', 'file.pushed', 'email.sent'];
export async function lastUse(tx: Db, linkId: number): Promise<string | undefined> {
  const { usageLog } = tablesOf(tx);
  return (await getOf(tx
    .select({ at: usageLog.at })
    .from(usageLog)
    .where(and(eq(usageLog.linkId, linkId), inArray(usageLog.type, USE_EVENTS)))
    .orderBy(desc(usageLog.seq))
    .limit(1)))?.at;
}

export const anomalyById = async (tx: Db, id: number) => {
  const { anomaly } = tablesOf(tx);
  return getOf(tx.select().from(anomaly).where(eq(anomaly.id, id)));
};

// ---- R7.2: the agency's responses to findings ----

export const insertFindingResponse = async (tx: Db, row: Omit<FindingResponseRow, 'id'>): Promise<FindingResponseRow> => {
  const { findingResponse } = tablesOf(tx);
  return getOf(tx.insert(findingResponse).values(row).returning());
};
export async function findingResponses(tx: Db, findingId?: number): Promise<FindingResponseRow[]> {
  const { findingResponse } = tablesOf(tx);
  return allOf(tx
    .select()
    .from(findingResponse)
    .where(findingId !== undefined ? eq(findingResponse.findingId, findingId) : undefined)
    .orderBy(asc(findingResponse.id)));
}

/** The responses to several findings, oldest first. */
export async function responsesTo(tx: Db, findingIds: readonly number[]): Promise<FindingResponseRow[]> {
  const { findingResponse } = tablesOf(tx);
  if (findingIds.length === 0) return [];
  return allOf(tx.select().from(findingResponse).where(inArray(findingResponse.findingId, [...findingIds])).orderBy(asc(findingResponse.id)));
}

// ---- R9.2: the vendors an audit covered ----

export const insertAuditVendor = async (tx: Db, row: Omit<AuditVendorRow, 'id'>): Promise<AuditVendorRow> => {
  const { auditVendor } = tablesOf(tx);
  return getOf(tx.insert(auditVendor).values(row).returning());
};
export const vendorsOfAudit = async (tx: Db, auditId: number): Promise<AuditVendorRow[]> => {
  const { auditVendor } = tablesOf(tx);
  return allOf(tx.select().from(auditVendor).where(eq(auditVendor.auditId, auditId)).orderBy(asc(auditVendor.id)));
};
/** The vendors several audits covered, in the order they were recorded. */
export async function vendorsOfAudits(tx: Db, auditIds: readonly number[]): Promise<AuditVendorRow[]> {
  const { auditVendor } = tablesOf(tx);
  if (auditIds.length === 0) return [];
  return allOf(tx.select().from(auditVendor).where(inArray(auditVendor.auditId, [...auditIds])).orderBy(asc(auditVendor.id)));
}
/** The audits that named a vendor, oldest first, each with the evidence the vendor gave. */
export async function auditsOfVendor(tx: Db, vendorId: number): Promise<(AuditRow & { evidence: string | null })[]> {
  const { audit, auditVendor } = tablesOf(tx);
  return (await allOf(tx
    .select({ a: audit, evidence: auditVendor.evidence })
    .from(auditVendor)
    .innerJoin(audit, eq(audit.id, auditVendor.auditId))
    .where(eq(auditVendor.vendorId, vendorId))
    .orderBy(asc(audit.date), asc(audit.id))))
    .map((r) => ({ ...r.a, evidence: r.evidence }));
}
