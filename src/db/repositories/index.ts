export * as agencies from './agencies';
export * as links from './links';
export * as credentials from './credentials';
export * as documents from './documents';
export * as usageLog from './usageLog';
export * as deliveries from './deliveries';
export * as downloads from './downloads';
