import type { Knex } from 'knex';

/** Notifications: events to tell customers and partner systems about, registered webhook endpoints
 * (each with its signing secret), one delivery row per event and endpoint with its attempts (the
 * delivery log), and the messages sent on the SMS / e-mail channels. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE notification_events (
      id bigserial PRIMARY KEY,
      event_key text NOT NULL UNIQUE,
      event_type text NOT NULL CHECK (event_type IN ('usage_alert', 'low_balance', 'top_up_completed', 'invoice_issued',
        'payment_failed', 'suspension_warning', 'subscriber_suspended', 'subscriber_resumed')),
      billing_account_id uuid,
      subscriber_id uuid,
      payload jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX notification_events_account_idx ON notification_events (billing_account_id, id);

    CREATE TABLE webhook_endpoints (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      url text NOT NULL CHECK (url ~ '^https?://'),
      secret text NOT NULL,
      event_types text[] NOT NULL DEFAULT '{}',
      enabled boolean NOT NULL DEFAULT true,
      created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE webhook_deliveries (
      id bigserial PRIMARY KEY,
      event_id bigint NOT NULL REFERENCES notification_events(id),
      endpoint_id uuid NOT NULL REFERENCES webhook_endpoints(id),
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      last_status_code integer,
      last_error text,
      delivered_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (event_id, endpoint_id)
    );
    CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';

    CREATE TABLE webhook_delivery_attempts (
      id bigserial PRIMARY KEY,
      delivery_id bigint NOT NULL REFERENCES webhook_deliveries(id),
      attempt integer NOT NULL,
      status_code integer,
      error text,
      duration_ms integer NOT NULL,
      attempted_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX webhook_delivery_attempts_delivery_idx ON webhook_delivery_attempts (delivery_id, id);

    CREATE TABLE notification_messages (
      id bigserial PRIMARY KEY,
      event_id bigint REFERENCES notification_events(id),
      channel text NOT NULL CHECK (channel IN ('sms', 'email')),
      recipient text NOT NULL,
      template text NOT NULL,
      subject text,
      body text NOT NULL,
      status text NOT NULL DEFAULT 'sent',
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (event_id, channel)
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE notification_messages; DROP TABLE webhook_delivery_attempts; DROP TABLE webhook_deliveries;
    DROP TABLE webhook_endpoints; DROP TABLE notification_events;`);
}
