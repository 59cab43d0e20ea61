"""Numbered schema migrations for the conversation database.

Append a new ``(version, sql)`` pair to add a change; never edit one that has
shipped. :meth:`bot.store.Store.open` applies the missing ones in order, each in
its own transaction, and records them in ``schema_migrations``.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE customers (
            id          TEXT PRIMARY KEY,
            name        TEXT,
            email       TEXT,
            phone       TEXT,
            locale      TEXT,
            timezone    TEXT,
            created_at  TEXT NOT NULL
        );
        CREATE INDEX customers_email ON customers(email);
        CREATE INDEX customers_phone ON customers(phone);

        -- a channel identity (a Telegram user, a WhatsApp number…) points at one customer
        CREATE TABLE identities (
            channel      TEXT NOT NULL,
            external_id  TEXT NOT NULL,
            customer_id  TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            verified     INTEGER NOT NULL DEFAULT 0,
            created_at   TEXT NOT NULL,
            PRIMARY KEY (channel, external_id)
        );
        CREATE INDEX identities_customer ON identities(customer_id);

        CREATE TABLE conversations (
            id           TEXT PRIMARY KEY,
            customer_id  TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            channel      TEXT NOT NULL,
            chat_id      TEXT NOT NULL,
            state        TEXT NOT NULL DEFAULT 'bot'
                         CHECK (state IN ('bot', 'pending_human', 'human', 'closed')),
            owner        TEXT,
            locale       TEXT,
            context      TEXT NOT NULL DEFAULT '{}',
            created_at   TEXT NOT NULL,
            updated_at   TEXT NOT NULL
        );
        -- at most one open conversation per chat
        CREATE UNIQUE INDEX conversations_open_chat
            ON conversations(channel, chat_id) WHERE state != 'closed';
        CREATE INDEX conversations_customer ON conversations(customer_id);

        -- every accepted inbound event, deduplicated on the platform's id
        CREATE TABLE inbox (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            channel       TEXT NOT NULL,
            external_id   TEXT NOT NULL,
            chat_id       TEXT NOT NULL,
            payload       TEXT NOT NULL,
            status        TEXT NOT NULL DEFAULT 'accepted'
                          CHECK (status IN ('accepted', 'done', 'failed')),
            attempts      INTEGER NOT NULL DEFAULT 0,
            error         TEXT,
            received_at   TEXT NOT NULL,
            processed_at  TEXT,
            UNIQUE (channel, external_id)
        );
        CREATE INDEX inbox_pending ON inbox(status, id);

        CREATE TABLE messages (
            id               INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            direction        TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            author           TEXT NOT NULL CHECK (author IN ('shopper', 'bot', 'staff', 'system')),
            text             TEXT NOT NULL,
            payload          TEXT,
            inbox_id         INTEGER REFERENCES inbox(id) ON DELETE SET NULL,
            created_at       TEXT NOT NULL
        );
        CREATE INDEX messages_conversation ON messages(conversation_id, id);
        CREATE INDEX messages_inbox ON messages(inbox_id);

        CREATE TABLE orders (
            order_number  TEXT PRIMARY KEY,
            customer_id   TEXT REFERENCES customers(id) ON DELETE CASCADE,
            status        TEXT NOT NULL,
            currency      TEXT NOT NULL,
            total         TEXT NOT NULL,
            tracking_url  TEXT,
            created_at    TEXT NOT NULL,
            lines         TEXT NOT NULL
        );
        CREATE INDEX orders_customer ON orders(customer_id, created_at);
        """,
    ),
    (
        2,
        """
        -- replies waiting for (or done with) delivery through a platform's send API
        CREATE TABLE outbox (
            id                   INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id      TEXT REFERENCES conversations(id) ON DELETE CASCADE,
            channel              TEXT NOT NULL,
            chat_id              TEXT NOT NULL,
            payload              TEXT NOT NULL,
            status               TEXT NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'sending', 'sent', 'maybe_sent', 'failed', 'held')),
            attempts             INTEGER NOT NULL DEFAULT 0,
            next_attempt_at      TEXT NOT NULL,
            platform_message_id  TEXT,
            error                TEXT,
            created_at           TEXT NOT NULL,
            sent_at              TEXT
        );
        CREATE INDEX outbox_due ON outbox(status, next_attempt_at, id);
        CREATE INDEX outbox_chat ON outbox(channel, chat_id, id);

        -- delivery receipts reported by platforms (delivered, read, failed…)
        CREATE TABLE delivery_status (
            id                   INTEGER PRIMARY KEY AUTOINCREMENT,
            channel              TEXT NOT NULL,
            platform_message_id  TEXT NOT NULL,
            status               TEXT NOT NULL,
            error_code           TEXT,
            recorded_at          TEXT NOT NULL
        );
        CREATE INDEX delivery_status_message ON delivery_status(channel, platform_message_id);

        ALTER TABLE identities ADD COLUMN unreachable INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE identities ADD COLUMN last_inbound_at TEXT
        """,
    ),
    (
        3,
        """
        CREATE TABLE staff_users (
            id             TEXT PRIMARY KEY,
            email          TEXT NOT NULL UNIQUE COLLATE NOCASE,
            name           TEXT,
            role           TEXT NOT NULL CHECK (role IN ('agent', 'admin')),
            password_hash  TEXT NOT NULL,
            failed_logins  INTEGER NOT NULL DEFAULT 0,
            locked_until   TEXT,
            locale         TEXT,
            created_at     TEXT NOT NULL
        );
        CREATE TABLE staff_sessions (
            token_hash   TEXT PRIMARY KEY,
            staff_id     TEXT NOT NULL REFERENCES staff_users(id) ON DELETE CASCADE,
            csrf_token   TEXT NOT NULL,
            created_at   TEXT NOT NULL,
            expires_at   TEXT NOT NULL,
            revoked_at   TEXT
        );
        -- one row per hand-over to staff, for the inbox and the KPIs
        CREATE TABLE escalations (
            id                     INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id        TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            reason                 TEXT NOT NULL,
            created_at             TEXT NOT NULL,
            announced_at           TEXT,
            claimed_by             TEXT REFERENCES staff_users(id) ON DELETE SET NULL,
            claimed_at             TEXT,
            first_staff_reply_at   TEXT,
            ended_at               TEXT,
            outcome                TEXT CHECK (outcome IN ('resolved', 'released', 'timed_out', 'closed')),
            csat                   INTEGER CHECK (csat BETWEEN 1 AND 5)
        );
        CREATE INDEX escalations_open ON escalations(ended_at, created_at);
        CREATE INDEX escalations_conversation ON escalations(conversation_id);
        CREATE TABLE staff_notes (
            id               INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            staff_id         TEXT REFERENCES staff_users(id) ON DELETE SET NULL,
            text             TEXT NOT NULL,
            created_at       TEXT NOT NULL
        );
        CREATE TABLE canned_replies (
            id     INTEGER PRIMARY KEY AUTOINCREMENT,
            title  TEXT NOT NULL,
            text   TEXT NOT NULL
        );
        CREATE TABLE audit_log (
            id      INTEGER PRIMARY KEY AUTOINCREMENT,
            at      TEXT NOT NULL,
            actor   TEXT NOT NULL,
            action  TEXT NOT NULL,
            target  TEXT,
            detail  TEXT
        );
        ALTER TABLE outbox ADD COLUMN author TEXT NOT NULL DEFAULT 'bot'
        """,
    ),
    (
        4,
        """
        -- a variant went from sold out to in stock (kb/inventory.py), for follow-up jobs to consume
        CREATE TABLE back_in_stock_events (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            sku          TEXT NOT NULL,
            product_id   TEXT NOT NULL,
            qty          INTEGER NOT NULL CHECK (qty > 0),
            at           TEXT NOT NULL,
            consumed_at  TEXT
        );
        CREATE INDEX back_in_stock_events_pending ON back_in_stock_events(consumed_at, id);
        CREATE INDEX back_in_stock_events_sku ON back_in_stock_events(sku, at)
        """,
    ),
    (
        5,
        """
        -- follow-ups (bot/consent.py, bot/reminders.py, jobs/followups.py, jobs/lease.py)

        -- the consent ledger, append-only: one row per grant (what the shopper said, when), closed when revoked.
        -- No foreign key: erasure keeps withdrawn consents under a pseudonym (bot/privacy.py).
        CREATE TABLE consents (
            id                   INTEGER PRIMARY KEY AUTOINCREMENT,
            customer_id          TEXT NOT NULL,
            purpose              TEXT NOT NULL CHECK (purpose IN ('reminders', 'back_in_stock', 'marketing')),
            channel              TEXT NOT NULL,
            status               TEXT NOT NULL CHECK (status IN ('granted', 'revoked')),
            granted_at           TEXT NOT NULL,
            granted_via          TEXT NOT NULL DEFAULT 'chat',
            evidence_message_id  TEXT,
            evidence_text        TEXT,
            evidence_at          TEXT,
            revoked_at           TEXT,
            revoked_via          TEXT CHECK (revoked_via IN ('keyword', 'chat', 'platform', 'staff')),
            revoked_message_id   TEXT,
            revoked_text         TEXT
        );
        -- at most one standing grant per customer, purpose and channel
        CREATE UNIQUE INDEX consents_granted ON consents(customer_id, purpose, channel) WHERE status = 'granted';
        CREATE INDEX consents_customer ON consents(customer_id, channel, id);

        -- "message me when size 42 is back": one exact variant, the shopper's constraints when they asked
        CREATE TABLE subscriptions (
            id                 INTEGER PRIMARY KEY AUTOINCREMENT,
            customer_id        TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            channel            TEXT NOT NULL,
            chat_id            TEXT NOT NULL,
            conversation_id    TEXT,
            sku                TEXT NOT NULL,
            product_id         TEXT,
            title              TEXT NOT NULL,
            size               TEXT,
            max_price          TEXT,
            min_price          TEXT,
            timezone           TEXT NOT NULL,
            locale             TEXT,
            source_message_id  TEXT UNIQUE,
            status             TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'notified', 'cancelled')),
            created_at         TEXT NOT NULL,
            ended_at           TEXT
        );
        CREATE UNIQUE INDEX subscriptions_active ON subscriptions(customer_id, channel, sku) WHERE status = 'active';
        CREATE INDEX subscriptions_sku ON subscriptions(sku, status, id);

        -- the follow-up queue, one row per message to send: the truth (APScheduler only ticks)
        CREATE TABLE followups (
            id               INTEGER PRIMARY KEY AUTOINCREMENT,
            kind             TEXT NOT NULL CHECK (kind IN ('reminder', 'back_in_stock')),
            purpose          TEXT NOT NULL CHECK (purpose IN ('reminders', 'back_in_stock', 'marketing')),
            customer_id      TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            channel          TEXT NOT NULL,
            chat_id          TEXT NOT NULL,
            conversation_id  TEXT,
            subscription_id  INTEGER REFERENCES subscriptions(id) ON DELETE CASCADE,
            sku              TEXT,
            product_id       TEXT,
            title            TEXT,
            subject          TEXT,
            timezone         TEXT NOT NULL,
            locale           TEXT,
            requested_at     TEXT NOT NULL,
            due_at           TEXT NOT NULL,
            status           TEXT NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'queued', 'sending', 'sent', 'maybe_sent', 'failed', 'blocked', 'cancelled')),
            attempts         INTEGER NOT NULL DEFAULT 0,
            via              TEXT CHECK (via IN ('message', 'template', 'direct')),
            outbox_id        INTEGER,
            message_id       INTEGER,
            sent_at          TEXT,
            delivered_at     TEXT,
            ended_at         TEXT,
            reason           TEXT,
            source_key       TEXT UNIQUE,
            converted_order  TEXT,
            converted_at     TEXT,
            created_at       TEXT NOT NULL
        );
        CREATE INDEX followups_due ON followups(status, due_at, requested_at, id);
        CREATE INDEX followups_customer ON followups(customer_id, kind, sent_at);
        CREATE INDEX followups_sku ON followups(sku, kind, sent_at);
        CREATE INDEX followups_outbox ON followups(outbox_id);

        -- one scheduler per database: the holder renews before expires_at, anyone may take it after
        CREATE TABLE scheduler_lease (
            name         TEXT PRIMARY KEY,
            holder       TEXT NOT NULL,
            acquired_at  TEXT NOT NULL,
            renewed_at   TEXT NOT NULL,
            expires_at   TEXT NOT NULL
        )
        """,
    ),
    (
        6,
        """
        -- prior orders and identity verification (bot/verification.py, bot/order_lookup.py)

        -- one-time codes sent by e-mail to link a chat to a customer (only a keyed hash of the code is kept)
        -- customer_id is NULL when the address matched no customer (nothing was sent, the chat is told the same).
        CREATE TABLE verification_codes (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            channel      TEXT NOT NULL,
            external_id  TEXT NOT NULL,
            customer_id  TEXT REFERENCES customers(id) ON DELETE CASCADE,
            code_hash    TEXT NOT NULL,
            attempts     INTEGER NOT NULL DEFAULT 0,
            created_at   TEXT NOT NULL,
            expires_at   TEXT NOT NULL,
            used_at      TEXT
        );
        CREATE INDEX verification_codes_identity ON verification_codes(channel, external_id, id);

        -- order numbers a chat asked about that were not its customer's (guessing is rate-limited)
        CREATE TABLE order_lookup_misses (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            channel      TEXT NOT NULL,
            external_id  TEXT NOT NULL,
            at           TEXT NOT NULL
        );
        CREATE INDEX order_lookup_misses_identity ON order_lookup_misses(channel, external_id, at);

        -- one row per catalog product in an order (its customer and status copied), so "bought together"
        -- counts read one covering index instead of every order's JSON
        CREATE TABLE order_items (
            order_number  TEXT NOT NULL REFERENCES orders(order_number) ON DELETE CASCADE,
            product_id    TEXT NOT NULL,
            customer_id   TEXT,
            status        TEXT NOT NULL,
            PRIMARY KEY (order_number, product_id)
        ) WITHOUT ROWID;
        CREATE INDEX order_items_product ON order_items(product_id, order_number, customer_id, status);
        INSERT OR IGNORE INTO order_items (order_number, product_id, customer_id, status)
            SELECT o.order_number, json_extract(j.value, '$.product_id'), o.customer_id, o.status
            FROM orders o, json_each(o.lines) j
            WHERE json_extract(j.value, '$.product_id') IS NOT NULL;

        -- orders link to customers by e-mail whatever its case
        CREATE INDEX customers_email_lower ON customers(lower(email))
        """,
    ),
    (
        7,
        """
        -- shopper profiles (bot/profile.py): what a shopper allowed us to keep across conversations

        -- the answer to "shall I remember your sizes and allergies?", append-only: the latest row of a customer counts.
        -- The identity that answered is kept so facts never flow to an unverified identity on another channel.
        CREATE TABLE profile_consents (
            id                   INTEGER PRIMARY KEY AUTOINCREMENT,
            customer_id          TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            channel              TEXT NOT NULL,
            external_id          TEXT NOT NULL,
            status               TEXT NOT NULL CHECK (status IN ('asked', 'granted', 'declined', 'revoked')),
            asked_at             TEXT NOT NULL,
            decided_at           TEXT,
            evidence_message_id  TEXT,
            evidence_text        TEXT,
            evidence_at          TEXT
        );
        CREATE INDEX profile_consents_customer ON profile_consents(customer_id, id);

        -- one kept fact per row: a size, a dietary need or allergy, a material, colour or brand to avoid
        CREATE TABLE profile_facts (
            id                 INTEGER PRIMARY KEY AUTOINCREMENT,
            customer_id        TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            kind               TEXT NOT NULL
                               CHECK (kind IN ('size', 'dietary', 'materials_exclude', 'colors_exclude', 'brands_exclude')),
            value              TEXT NOT NULL,
            channel            TEXT NOT NULL,
            external_id        TEXT NOT NULL,
            source_message_id  TEXT,
            created_at         TEXT NOT NULL,
            UNIQUE (customer_id, kind, value)
        );
        CREATE INDEX profile_facts_customer ON profile_facts(customer_id, kind)
        """,
    ),
)
