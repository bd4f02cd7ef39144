import type { Config } from '../config';

/**
 * An SMTP transport from the configuration (TLS from the first byte, or STARTTLS required unless
 * turned off). nodemailer is loaded on first use: the processes that never send mail (the SFTP and
 * query front ends) do not carry it in their heap.
 */
async function mailTransport(config: Config) {
  const { default: nodemailer } = await import('nodemailer');
  return nodemailer.createTransport({
    host: config.smtp.host,
    port: config.smtp.port,
    secure: config.smtp.secure,
    requireTLS: config.smtp.requireTLS,
    ignoreTLS: !config.smtp.secure && !config.smtp.requireTLS,
    auth: config.smtp.user ? { user: config.smtp.user, pass: config.smtp.password ?? '' } : undefined,
    tls: { rejectUnauthorized: config.smtp.rejectUnauthorized },
  });
}

/** Send one plain-text message; resolves to the message id. */
export async function sendMail(config: Config, msg: { to: string[]; subject: string; text: string; attachments?: { filename: string; path: string; contentType: string }[] }): Promise<string> {
  const transport = await mailTransport(config);
  try {
    const info = await transport.sendMail({ from: config.smtp.from, ...msg });
    return info.messageId;
  } finally {
    transport.close();
  }
}
