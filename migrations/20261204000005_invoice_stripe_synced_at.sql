-- When payment sync last read an invoice's Stripe objects; the sweep syncs the stalest first.
ALTER TABLE invoices ADD COLUMN stripe_synced_at timestamptz;

CREATE INDEX invoices_stripe_sync_idx ON invoices (stripe_synced_at NULLS FIRST)
    WHERE status IN ('open', 'payment_pending')
      AND (stripe_payment_intent_id IS NOT NULL OR stripe_invoice_id IS NOT NULL OR stripe_checkout_session_id IS NOT NULL);
