export { startSftpServer, ALGORITHMS, type RunningSftp, type SftpDeps } from './server';
export { startSftpRole } from './cluster';
export { AccountService, type AccountView, MIN_PASSWORD_LENGTH } from './accounts';
export { Defender, liftBan, type Ban } from './defender';
export { HOME, normalise } from './tree';
export { downloadsOf, type Download } from './downloads';
