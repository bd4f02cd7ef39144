import type { Config } from '../config';
import { sendMail } from './mailer';
import { PushRefused, type PushContext } from './push';

export interface EmailResult {
  messageId: string;
  recipients: string[];
  attached: boolean;
}

/**
 * The e-mail channel: only to the addresses on the link's current revision; the encrypted file and
 * its signed manifest are attached when small enough, otherwise the message says where to fetch it.
 * Plaintext is never sent.
 */
export async function sendEmail(config: Config, ctx: PushContext): Promise<EmailResult> {
  const { delivery, state } = ctx;
  const recipients = state.content.email;
  if (recipients.length === 0) throw new PushRefused(`link ${delivery.link} has no registered e-mail address`, 'channel.not-approved');
  if (!config.smtp.host) throw new PushRefused('no SMTP server is configured (smtp.host / NIA_LINK_SMTP_HOST)', 'email.not-configured');
  const attach = (delivery.bytes ?? Infinity) <= config.email.maxAttachmentBytes;
  if (!attach && !state.content.methods.includes('sftp-pull')) {
    throw new PushRefused(`delivery ${delivery.id} (${delivery.bytes} bytes) is larger than the e-mail limit (${config.email.maxAttachmentBytes}) and link ${delivery.link} has no sftp-pull to fetch it from`, 'email.too-large');
  }
  const { data, manifest, signature } = ctx.files;
  const file = data.name;
  const lines = [
    `${state.agency.nameZh} 您好：`,
    '',
    `內政部移民署依連結案 L${delivery.link}（第 ${delivery.revision} 版）提供資料交付檔 D${delivery.id}。`,
    `Delivery D${delivery.id} of link L${delivery.link} (revision ${delivery.revision}) from the National Immigration Agency.`,
    '',
    `file / 檔案: ${file}`,
    `rows / 筆數: ${delivery.rows}`,
    `SHA-256: ${delivery.sha256}`,
    '',
    attach
      ? 'The file is encrypted to your agency key and signed by NIA; the manifest and its signature are attached. 檔案已以貴機關公鑰加密並經移民署簽章。'
      : `The file is too large for e-mail: fetch ${file} from /outbox on the NIA SFTP server with the link's account. 檔案過大，請以 SFTP 帳號至 /outbox 下載。`,
    '',
    '本資料僅限於申請書所載之目的範圍內使用，非經移民署同意不得提供予第三人。',
  ];
  const messageId = await sendMail(config, {
    to: recipients,
    subject: `[nia-link] L${delivery.link} D${delivery.id} ${state.content.dataset}`,
    text: lines.join('\n'),
    attachments: attach
      ? [
          { filename: data.name, path: data.path, contentType: 'application/pgp-encrypted' },
          { filename: manifest.name, path: manifest.path, contentType: 'application/json' },
          { filename: signature.name, path: signature.path, contentType: 'application/pgp-signature' },
        ]
      : [],
  });
  return { messageId, recipients, attached: attach };
}
