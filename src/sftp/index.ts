export { startSftpRole } from './cluster';
export { startSftpServer, ALGORITHMS, type RunningSftp, type SftpDeps } from './server';
export { Defender, liftBan, type Ban } from './defender';
export { downloadsOf, type Download } from './downloads';
