export * from './pgp';
export * from './ssh';
export * from './keystore';
export * from './stream';
export * from './tls';
export * from './passwords';
export * from './secret-file';
