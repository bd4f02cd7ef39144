import { and, asc, desc, eq, inArray, isNull, max } from 'drizzle-orm';
import type { Db } from '../index';
import { anomaly, audit, auditVendor, disposal, finding, findingResponse, inactivity, necessityReview, notice, suspension, termination, usageLog } from '../schema';

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

export const insertAudit = async (tx: Db, row: Omit<AuditRow, 'id'>): Promise<AuditRow> => tx.insert(audit).values(row).returning().get();
export const auditById = async (tx: Db, id: number): Promise<AuditRow | undefined> => tx.select().from(audit).where(eq(audit.id, id)).get();
export async function audits(tx: Db, f: { agencyId?: number; kind?: AuditRow['kind'] } = {}): Promise<AuditRow[]> {
  const where = [f.agencyId !== undefined ? eq(audit.agencyId, f.agencyId) : undefined, f.kind ? eq(audit.kind, f.kind) : undefined].filter((x) => x !== undefined);
  return tx.select().from(audit).where(where.length ? and(...where) : undefined).orderBy(asc(audit.date), asc(audit.id)).all();
}

export const insertFinding = async (tx: Db, row: Omit<FindingRow, 'id'>): Promise<FindingRow> => tx.insert(finding).values(row).returning().get();
export const findingById = async (tx: Db, id: number): Promise<FindingRow | undefined> => tx.select().from(finding).where(eq(finding.id, id)).get();
export async function findings(tx: Db, linkId?: number): Promise<FindingRow[]> {
  return tx.select().from(finding).where(linkId !== undefined ? eq(finding.linkId, linkId) : undefined).orderBy(asc(finding.id)).all();
}
export async function updateFinding(tx: Db, id: number, values: Partial<Omit<FindingRow, 'id'>>): Promise<void> {
  tx.update(finding).set(values).where(eq(finding.id, id)).run();
}

export const insertSuspension = async (tx: Db, row: Omit<SuspensionRow, 'id'>): Promise<SuspensionRow> => tx.insert(suspension).values(row).returning().get();
export async function openSuspension(tx: Db, linkId: number): Promise<SuspensionRow | undefined> {
  return tx.select().from(suspension).where(and(eq(suspension.linkId, linkId), isNull(suspension.endedOn))).orderBy(desc(suspension.id)).limit(1).get();
}
export async function updateSuspension(tx: Db, id: number, values: Partial<Omit<SuspensionRow, 'id'>>): Promise<void> {
  tx.update(suspension).set(values).where(eq(suspension.id, id)).run();
}
export const openSuspensions = async (tx: Db): Promise<SuspensionRow[]> => tx.select().from(suspension).where(isNull(suspension.endedOn)).orderBy(asc(suspension.id)).all();

export const insertNotice = async (tx: Db, row: Omit<NoticeRow, 'id'>): Promise<NoticeRow> => tx.insert(notice).values(row).returning().get();
export async function notices(tx: Db, linkId?: number): Promise<NoticeRow[]> {
  return tx.select().from(notice).where(linkId !== undefined ? eq(notice.linkId, linkId) : undefined).orderBy(asc(notice.id)).all();
}

export const insertReview = async (tx: Db, row: Omit<ReviewRow, 'id'>): Promise<ReviewRow> => tx.insert(necessityReview).values(row).returning().get();
export async function lastReview(tx: Db, linkId: number): Promise<ReviewRow | undefined> {
  return tx.select().from(necessityReview).where(eq(necessityReview.linkId, linkId)).orderBy(desc(necessityReview.date), desc(necessityReview.id)).limit(1).get();
}

/** The day of each link's latest necessity review (links never reviewed are absent). */
export async function lastReviewDates(tx: Db, linkIds: readonly number[]): Promise<Map<number, string>> {
  if (linkIds.length === 0) return new Map();
  const rows = tx
    .select({ linkId: necessityReview.linkId, date: max(necessityReview.date) })
    .from(necessityReview)
    .where(inArray(necessityReview.linkId, [...linkIds]))
    .groupBy(necessityReview.linkId)
    .all();
  return new Map(rows.flatMap((r) => (r.date === null ? [] : [[r.linkId, r.date] as const])));
}

export const disposalFor = async (tx: Db, linkId: number): Promise<DisposalRow | undefined> => tx.select().from(disposal).where(eq(disposal.linkId, linkId)).get();
export const insertDisposal = async (tx: Db, row: Omit<DisposalRow, 'id'>): Promise<DisposalRow> => tx.insert(disposal).values(row).returning().get();
export async function updateDisposal(tx: Db, id: number, values: Partial<Omit<DisposalRow, 'id'>>): Promise<void> {
  tx.update(disposal).set(values).where(eq(disposal.id, id)).run();
}
export const disposals = async (tx: Db): Promise<DisposalRow[]> => tx.select().from(disposal).orderBy(asc(disposal.id)).all();

export const inactivityFor = async (tx: Db, linkId: number): Promise<InactivityRow | undefined> => tx.select().from(inactivity).where(eq(inactivity.linkId, linkId)).get();
export async function inactivityOf(tx: Db, linkIds: readonly number[]): Promise<InactivityRow[]> {
  if (linkIds.length === 0) return [];
  return tx.select().from(inactivity).where(inArray(inactivity.linkId, [...linkIds])).all();
}
export const insertInactivity = async (tx: Db, row: Omit<InactivityRow, 'id'>): Promise<InactivityRow> => tx.insert(inactivity).values(row).returning().get();
export async function updateInactivity(tx: Db, id: number, values: Partial<Omit<InactivityRow, 'id'>>): Promise<void> {
  tx.update(inactivity).set(values).where(eq(inactivity.id, id)).run();
}
export async function deleteInactivity(tx: Db, id: number): Promise<void> {
  tx.delete(inactivity).where(eq(inactivity.id, id)).run();
}

export const insertTermination = async (tx: Db, row: Omit<TerminationRow, 'id'>): Promise<TerminationRow> => tx.insert(termination).values(row).returning().get();
export const terminations = async (tx: Db, linkId: number): Promise<TerminationRow[]> => tx.select().from(termination).where(eq(termination.linkId, linkId)).orderBy(asc(termination.id)).all();

/** When the agency last used the link: a download, an online query, or a delivered push or e-mail (R13.1). */
export const USE_EVENTS = ['file.downloaded', 'query.answered', 'file.pushed', 'email.sent'];
export async function lastUse(tx: Db, linkId: number): Promise<string | undefined> {
  return tx
    .select({ at: usageLog.at })
    .from(usageLog)
    .where(and(eq(usageLog.linkId, linkId), inArray(usageLog.type, USE_EVENTS)))
    .orderBy(desc(usageLog.seq))
    .limit(1)
    .get()?.at;
}

export const anomalyById = async (tx: Db, id: number) => tx.select().from(anomaly).where(eq(anomaly.id, id)).get();

// ---- R7.2: the agency's responses to findings ----

export const insertFindingResponse = async (tx: Db, row: Omit<FindingResponseRow, 'id'>): Promise<FindingResponseRow> => tx.insert(findingResponse).values(row).returning().get();
export async function findingResponses(tx: Db, findingId?: number): Promise<FindingResponseRow[]> {
  return tx
    .select()
    .from(findingResponse)
    .where(findingId !== undefined ? eq(findingResponse.findingId, findingId) : undefined)
    .orderBy(asc(findingResponse.id))
    .all();
}

/** The responses to several findings, oldest first. */
export async function responsesTo(tx: Db, findingIds: readonly number[]): Promise<FindingResponseRow[]> {
  if (findingIds.length === 0) return [];
  return tx.select().from(findingResponse).where(inArray(findingResponse.findingId, [...findingIds])).orderBy(asc(findingResponse.id)).all();
}

// ---- R9.2: the vendors an audit covered ----

export const insertAuditVendor = async (tx: Db, row: Omit<AuditVendorRow, 'id'>): Promise<AuditVendorRow> => tx.insert(auditVendor).values(row).returning().get();
export const vendorsOfAudit = async (tx: Db, auditId: number): Promise<AuditVendorRow[]> => tx.select().from(auditVendor).where(eq(auditVendor.auditId, auditId)).orderBy(asc(auditVendor.id)).all();
/** The vendors several audits covered, in the order they were recorded. */
export async function vendorsOfAudits(tx: Db, auditIds: readonly number[]): Promise<AuditVendorRow[]> {
  if (auditIds.length === 0) return [];
  return tx.select().from(auditVendor).where(inArray(auditVendor.auditId, [...auditIds])).orderBy(asc(auditVendor.id)).all();
}
/** The audits that named a vendor, oldest first, each with the evidence the vendor gave. */
export async function auditsOfVendor(tx: Db, vendorId: number): Promise<(AuditRow & { evidence: string | null })[]> {
  return tx
    .select({ a: audit, evidence: auditVendor.evidence })
    .from(auditVendor)
    .innerJoin(audit, eq(audit.id, auditVendor.auditId))
    .where(eq(auditVendor.vendorId, vendorId))
    .orderBy(asc(audit.date), asc(audit.id))
    .all()
    .map((r) => ({ ...r.a, evidence: r.evidence }));
}
