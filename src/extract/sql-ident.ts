const IDENT = /^[a-z][a-z0-9_]{0,62}$/;
/** A dataset or field name as a quoted SQL identifier; names come from the catalogs, and anything else is refused. */
export const ident = (name: string): string => {
  if (!IDENT.test(name)) throw new Error(`not a safe identifier: ${name}`);
  return `"${name}"`;
};
