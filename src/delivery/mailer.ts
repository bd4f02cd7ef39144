import nodemailer from 'nodemailer';
import type { Config } from '../config';

/** An SMTP transport from the configuration (TLS from the first byte, or STARTTLS required unless turned off). */
export function mailTransport(config: Config) {
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
  const transport = mailTransport(config);
  try {
    const info = await transport.sendMail({ from: config.smtp.from, ...msg });
    return info.messageId;
  } finally {
    transport.close();
  }
}
