export { Registry, type ApplyInput, type LinkView, type LinkState } from './registry';
export { loadCatalogs } from './catalogs';
export { checkDocument, sniffDocumentType } from './documents';
export { RulesService, type RulesVersion } from './rules';
export { VendorService, type VendorRow } from './vendors';
export { AccountService, type AccountRow, type AccountView } from './accounts';
