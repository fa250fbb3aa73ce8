/** SMS and e-mail channels behind one small interface. `RecordingChannel` is the local
 * implementation: it stores what would be sent (`notification_messages`), once per event and channel. */
import type { Knex } from 'knex';

export interface OutboundMessage {
  eventId: string | null;
  channel: 'sms' | 'email';
  recipient: string;
  template: string;
  subject?: string;
  body: string;
}

export interface NotificationChannel {
  send(message: OutboundMessage): Promise<void>;
}

export class RecordingChannel implements NotificationChannel {
  constructor(private readonly db: Knex) {}
  async send(m: OutboundMessage): Promise<void> {
    await this.db('notification_messages')
      .insert({ event_id: m.eventId, channel: m.channel, recipient: m.recipient, template: m.template, subject: m.subject ?? null, body: m.body })
      .onConflict(['event_id', 'channel']).ignore();
  }
}
