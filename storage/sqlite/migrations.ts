import type { Migration } from '../migrations.js';

/**
 * The SQLite schema, one numbered step at a time. Append-only: never edit a
 * released entry (its checksum is checked at open); add the next version.
 * schema.ts declares the same tables for drizzle's typed queries; a test keeps
 * the two in step.
 */
export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema: events, state, accounts, devices, sessions, transaction IDs, account data',
    sql: `
CREATE TABLE stream_positions (
  stream TEXT PRIMARY KEY NOT NULL,
  position INTEGER NOT NULL
) STRICT;
INSERT INTO stream_positions (stream, position) VALUES ('events', 0), ('account_data', 0);

CREATE TABLE state_snapshots (
  snapshot_id INTEGER PRIMARY KEY AUTOINCREMENT,
  room_id TEXT NOT NULL,
  parent_id INTEGER REFERENCES state_snapshots (snapshot_id),
  chain_length INTEGER NOT NULL
) STRICT;

CREATE TABLE state_snapshot_entries (
  snapshot_id INTEGER NOT NULL REFERENCES state_snapshots (snapshot_id),
  type TEXT NOT NULL,
  state_key TEXT NOT NULL,
  event_id TEXT,
  PRIMARY KEY (snapshot_id, type, state_key)
) STRICT, WITHOUT ROWID;

CREATE TABLE events (
  stream_ordering INTEGER PRIMARY KEY NOT NULL,
  event_id TEXT NOT NULL UNIQUE,
  room_id TEXT NOT NULL,
  type TEXT NOT NULL,
  state_key TEXT,
  sender TEXT NOT NULL,
  depth INTEGER NOT NULL,
  origin_server_ts INTEGER NOT NULL,
  outlier INTEGER NOT NULL,
  rejection_reason TEXT,
  state_before_snapshot_id INTEGER REFERENCES state_snapshots (snapshot_id),
  state_after_snapshot_id INTEGER REFERENCES state_snapshots (snapshot_id),
  json TEXT NOT NULL
) STRICT;
CREATE INDEX events_by_room_stream ON events (room_id, stream_ordering);

CREATE TABLE event_edges (
  event_id TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
  prev_event_id TEXT NOT NULL,
  PRIMARY KEY (event_id, prev_event_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX event_edges_by_prev ON event_edges (prev_event_id);

CREATE TABLE event_auth_edges (
  event_id TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
  auth_event_id TEXT NOT NULL,
  PRIMARY KEY (event_id, auth_event_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE forward_extremities (
  room_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  PRIMARY KEY (room_id, event_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE current_state (
  room_id TEXT NOT NULL,
  type TEXT NOT NULL,
  state_key TEXT NOT NULL,
  event_id TEXT NOT NULL,
  PRIMARY KEY (room_id, type, state_key)
) STRICT, WITHOUT ROWID;

CREATE TABLE accounts (
  user_id TEXT PRIMARY KEY NOT NULL,
  password_hash TEXT,
  is_admin INTEGER NOT NULL DEFAULT 0,
  is_guest INTEGER NOT NULL DEFAULT 0,
  deactivated INTEGER NOT NULL DEFAULT 0,
  created_ts INTEGER NOT NULL,
  display_name TEXT,
  avatar_url TEXT
) STRICT;

CREATE TABLE devices (
  user_id TEXT NOT NULL REFERENCES accounts (user_id) ON DELETE CASCADE,
  device_id TEXT NOT NULL,
  display_name TEXT,
  created_ts INTEGER NOT NULL,
  last_seen_ip TEXT,
  last_seen_ts INTEGER,
  last_seen_user_agent TEXT,
  PRIMARY KEY (user_id, device_id)
) STRICT;

CREATE TABLE sessions (
  session_id TEXT PRIMARY KEY NOT NULL,
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  created_ts INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0,
  refresh_token_hash TEXT UNIQUE,
  refresh_token_expires_ts INTEGER,
  FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX sessions_by_device ON sessions (user_id, device_id);

CREATE TABLE transaction_ids (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  txn_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  created_ts INTEGER NOT NULL,
  PRIMARY KEY (user_id, device_id, txn_id),
  FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX transaction_ids_by_created_ts ON transaction_ids (created_ts);

CREATE TABLE account_data (
  user_id TEXT NOT NULL REFERENCES accounts (user_id) ON DELETE CASCADE,
  room_id TEXT NOT NULL,
  type TEXT NOT NULL,
  content TEXT NOT NULL,
  stream_position INTEGER NOT NULL UNIQUE,
  PRIMARY KEY (user_id, room_id, type)
) STRICT, WITHOUT ROWID;
CREATE INDEX account_data_by_user_stream ON account_data (user_id, stream_position);
`,
  },
  {
    version: 2,
    name: 'accounts: erasure flag, case-insensitive user lookup, profile fields, refresh-token reuse, registration and login tokens, presence, UIA sessions',
    sql: `
ALTER TABLE accounts ADD COLUMN erased INTEGER NOT NULL DEFAULT 0;
-- Login matches user IDs ignoring ASCII case; SQLite's lower() folds ASCII only, which is what we want.
CREATE INDEX accounts_by_lower_user_id ON accounts (lower(user_id));
-- "Which rooms is this user in": memberships by (type, state_key) across rooms.
CREATE INDEX current_state_by_key ON current_state (type, state_key);

CREATE TABLE profile_fields (
  user_id TEXT NOT NULL REFERENCES accounts (user_id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (user_id, key)
) STRICT, WITHOUT ROWID;

ALTER TABLE sessions ADD COLUMN replaced_refresh_token_hash TEXT;
CREATE UNIQUE INDEX sessions_by_replaced_refresh_token ON sessions (replaced_refresh_token_hash);

CREATE TABLE registration_tokens (
  token TEXT PRIMARY KEY NOT NULL,
  uses_allowed INTEGER CHECK (uses_allowed IS NULL OR uses_allowed >= 0),
  pending INTEGER NOT NULL DEFAULT 0 CHECK (pending >= 0),
  completed INTEGER NOT NULL DEFAULT 0 CHECK (completed >= 0),
  expiry_ts INTEGER
) STRICT;

CREATE TABLE login_tokens (
  token_hash TEXT PRIMARY KEY NOT NULL,
  user_id TEXT NOT NULL REFERENCES accounts (user_id) ON DELETE CASCADE,
  created_ts INTEGER NOT NULL,
  expires_ts INTEGER NOT NULL
) STRICT;
CREATE INDEX login_tokens_by_expires_ts ON login_tokens (expires_ts);

INSERT INTO stream_positions (stream, position) VALUES ('presence', 0);
CREATE TABLE presence (
  user_id TEXT PRIMARY KEY NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('online', 'unavailable', 'offline')),
  status_msg TEXT,
  last_active_ts INTEGER NOT NULL,
  updated_ts INTEGER NOT NULL,
  currently_active INTEGER NOT NULL,
  stream_position INTEGER NOT NULL UNIQUE
) STRICT;
CREATE INDEX presence_not_offline ON presence (user_id) WHERE state != 'offline';

CREATE TABLE uia_sessions (
  session_id TEXT PRIMARY KEY NOT NULL,
  created_ts INTEGER NOT NULL,
  method TEXT NOT NULL,
  uri TEXT NOT NULL,
  client_dict TEXT NOT NULL,
  completed TEXT NOT NULL DEFAULT '{}',
  params TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX uia_sessions_by_created_ts ON uia_sessions (created_ts);
`,
  },
  {
    version: 3,
    name: 'rooms: rooms and aliases, memberships derived from current state, receipts, relations, redactions, filters, sync and timestamp indexes',
    sql: `
CREATE TABLE rooms (
  room_id TEXT PRIMARY KEY NOT NULL,
  room_version TEXT NOT NULL,
  creator TEXT NOT NULL,
  created_ts INTEGER NOT NULL,
  is_public INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX rooms_public ON rooms (room_id) WHERE is_public = 1;
-- Rooms this server already holds, from their create events.
INSERT INTO rooms (room_id, room_version, creator, created_ts, is_public)
SELECT e.room_id,
       coalesce(json_extract(e.json, '$.content.room_version'), '1'),
       coalesce(json_extract(e.json, '$.content.creator'), e.sender),
       e.origin_server_ts,
       0
  FROM current_state cs JOIN events e ON e.event_id = cs.event_id
 WHERE cs.type = 'm.room.create' AND cs.state_key = '';

CREATE TABLE room_aliases (
  alias TEXT PRIMARY KEY NOT NULL,
  room_id TEXT NOT NULL,
  creator TEXT NOT NULL,
  created_ts INTEGER NOT NULL
) STRICT;
CREATE INDEX room_aliases_by_room ON room_aliases (room_id);

-- Each user's current membership per room; maintained with current_state by persistEvent.
CREATE TABLE memberships (
  room_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  membership TEXT NOT NULL CHECK (membership IN ('join', 'invite', 'leave', 'ban', 'knock')),
  event_id TEXT NOT NULL,
  stream_ordering INTEGER NOT NULL,
  forgotten INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (room_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX memberships_by_user ON memberships (user_id, membership, stream_ordering);
CREATE INDEX memberships_by_user_stream ON memberships (user_id, stream_ordering);
CREATE INDEX memberships_by_room ON memberships (room_id, membership, user_id);
INSERT INTO memberships (room_id, user_id, membership, event_id, stream_ordering, forgotten)
SELECT cs.room_id, cs.state_key, json_extract(e.json, '$.content.membership'), cs.event_id, e.stream_ordering, 0
  FROM current_state cs JOIN events e ON e.event_id = cs.event_id
 WHERE cs.type = 'm.room.member'
   AND json_extract(e.json, '$.content.membership') IN ('join', 'invite', 'leave', 'ban', 'knock');

INSERT INTO stream_positions (stream, position) VALUES ('receipts', 0);
CREATE TABLE receipts (
  room_id TEXT NOT NULL,
  receipt_type TEXT NOT NULL,
  user_id TEXT NOT NULL,
  -- '' for an unthreaded receipt, so the primary key covers it.
  thread_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  data TEXT NOT NULL,
  stream_position INTEGER NOT NULL UNIQUE,
  PRIMARY KEY (room_id, receipt_type, user_id, thread_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX receipts_by_room_stream ON receipts (room_id, stream_position);

CREATE TABLE event_relations (
  event_id TEXT PRIMARY KEY NOT NULL,
  room_id TEXT NOT NULL,
  relates_to TEXT NOT NULL,
  rel_type TEXT NOT NULL,
  event_type TEXT NOT NULL,
  sender TEXT NOT NULL,
  aggregation_key TEXT,
  stream_ordering INTEGER NOT NULL,
  origin_server_ts INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX event_relations_by_target ON event_relations (relates_to, rel_type, event_type, stream_ordering);
CREATE INDEX event_relations_by_room ON event_relations (room_id, rel_type, relates_to, stream_ordering);
INSERT INTO event_relations
  (event_id, room_id, relates_to, rel_type, event_type, sender, aggregation_key, stream_ordering, origin_server_ts)
SELECT event_id, room_id,
       json_extract(json, '$.content."m.relates_to".event_id'),
       json_extract(json, '$.content."m.relates_to".rel_type'),
       type, sender,
       CASE WHEN json_extract(json, '$.content."m.relates_to".rel_type') = 'm.annotation'
             AND json_type(json, '$.content."m.relates_to".key') = 'text'
            THEN json_extract(json, '$.content."m.relates_to".key') END,
       stream_ordering, origin_server_ts
  FROM events
 WHERE outlier = 0 AND rejection_reason IS NULL
   AND json_type(json, '$.content."m.relates_to".rel_type') = 'text'
   AND json_type(json, '$.content."m.relates_to".event_id') = 'text';

CREATE TABLE redactions (
  redacted_event_id TEXT PRIMARY KEY NOT NULL,
  redaction_event_id TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE filters (
  user_id TEXT NOT NULL,
  filter_id TEXT NOT NULL,
  filter TEXT NOT NULL,
  PRIMARY KEY (user_id, filter_id)
) STRICT, WITHOUT ROWID;

-- /timestamp_to_event.
CREATE INDEX events_by_room_ts ON events (room_id, origin_server_ts);
-- Sync echoes transaction_id on the sender's own events.
CREATE INDEX transaction_ids_by_event ON transaction_ids (event_id);
`,
  },
  {
    version: 4,
    name: 'account moderation: locked and suspended accounts',
    sql: `
ALTER TABLE accounts ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;
`,
  },
  {
    version: 5,
    name: 'end-to-end encryption keys: device, one-time, fallback and cross-signing keys, signatures, device-list stream',
    sql: `
INSERT INTO stream_positions (stream, position) VALUES ('device_lists', 0);

-- Keys of a local device go with it (ON DELETE CASCADE).
CREATE TABLE e2e_device_keys (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  key_json TEXT NOT NULL,
  PRIMARY KEY (user_id, device_id),
  FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE e2e_one_time_keys (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  algorithm TEXT NOT NULL,
  key_id TEXT NOT NULL,
  key_json TEXT NOT NULL,
  -- Keys are claimed in upload order; one upload's keys share a number.
  upload_seq INTEGER NOT NULL,
  PRIMARY KEY (user_id, device_id, algorithm, key_id),
  FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX e2e_one_time_keys_by_upload ON e2e_one_time_keys (user_id, device_id, algorithm, upload_seq);

CREATE TABLE e2e_fallback_keys (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  algorithm TEXT NOT NULL,
  key_id TEXT NOT NULL,
  key_json TEXT NOT NULL,
  used INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, device_id, algorithm),
  FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE e2e_cross_signing_keys (
  user_id TEXT NOT NULL,
  usage TEXT NOT NULL CHECK (usage IN ('master', 'self_signing', 'user_signing')),
  public_key TEXT NOT NULL,
  key_json TEXT NOT NULL,
  PRIMARY KEY (user_id, usage)
) STRICT, WITHOUT ROWID;

-- Signatures from /keys/signatures/upload, merged into the keys they sign when served.
CREATE TABLE e2e_signatures (
  target_user_id TEXT NOT NULL,
  -- A device ID, or a cross-signing public key.
  target_key_id TEXT NOT NULL,
  signer_user_id TEXT NOT NULL,
  signer_key_id TEXT NOT NULL,
  signature TEXT NOT NULL,
  PRIMARY KEY (target_user_id, target_key_id, signer_user_id, signer_key_id)
) STRICT, WITHOUT ROWID;

-- One row per change: 'keys' (a user's devices or keys changed), 'joined'/'left' (a user's
-- membership of room_id became or stopped being join). Sync turns them into device_lists.
CREATE TABLE device_list_changes (
  position INTEGER PRIMARY KEY NOT NULL,
  user_id TEXT NOT NULL,
  change TEXT NOT NULL CHECK (change IN ('keys', 'joined', 'left')),
  room_id TEXT
) STRICT;

-- Every path that creates, deletes or renames a device, or changes a membership (local sends,
-- federation, state resolution, deactivation), records its change in the same transaction.
CREATE TRIGGER device_list_on_device_created AFTER INSERT ON devices BEGIN
  UPDATE stream_positions SET position = position + 1 WHERE stream = 'device_lists';
  INSERT INTO device_list_changes (position, user_id, change, room_id)
    SELECT position, NEW.user_id, 'keys', NULL FROM stream_positions WHERE stream = 'device_lists';
END;
CREATE TRIGGER device_list_on_device_renamed AFTER UPDATE OF display_name ON devices
  WHEN OLD.display_name IS NOT NEW.display_name BEGIN
  UPDATE stream_positions SET position = position + 1 WHERE stream = 'device_lists';
  INSERT INTO device_list_changes (position, user_id, change, room_id)
    SELECT position, NEW.user_id, 'keys', NULL FROM stream_positions WHERE stream = 'device_lists';
END;
CREATE TRIGGER device_list_on_device_deleted AFTER DELETE ON devices BEGIN
  DELETE FROM e2e_signatures WHERE target_user_id = OLD.user_id AND target_key_id = OLD.device_id;
  UPDATE stream_positions SET position = position + 1 WHERE stream = 'device_lists';
  INSERT INTO device_list_changes (position, user_id, change, room_id)
    SELECT position, OLD.user_id, 'keys', NULL FROM stream_positions WHERE stream = 'device_lists';
END;
CREATE TRIGGER device_list_on_member_added AFTER INSERT ON memberships
  WHEN NEW.membership = 'join' BEGIN
  UPDATE stream_positions SET position = position + 1 WHERE stream = 'device_lists';
  INSERT INTO device_list_changes (position, user_id, change, room_id)
    SELECT position, NEW.user_id, 'joined', NEW.room_id FROM stream_positions WHERE stream = 'device_lists';
END;
CREATE TRIGGER device_list_on_member_changed AFTER UPDATE OF membership ON memberships
  WHEN (OLD.membership = 'join') <> (NEW.membership = 'join') BEGIN
  UPDATE stream_positions SET position = position + 1 WHERE stream = 'device_lists';
  INSERT INTO device_list_changes (position, user_id, change, room_id)
    SELECT position, NEW.user_id, CASE NEW.membership WHEN 'join' THEN 'joined' ELSE 'left' END, NEW.room_id
      FROM stream_positions WHERE stream = 'device_lists';
END;
CREATE TRIGGER device_list_on_member_removed AFTER DELETE ON memberships
  WHEN OLD.membership = 'join' BEGIN
  UPDATE stream_positions SET position = position + 1 WHERE stream = 'device_lists';
  INSERT INTO device_list_changes (position, user_id, change, room_id)
    SELECT position, OLD.user_id, 'left', OLD.room_id FROM stream_positions WHERE stream = 'device_lists';
END;
`,
  },
  {
    version: 6,
    name: 'send-to-device inboxes and transactions, server-side key backups',
    sql: `
INSERT INTO stream_positions (stream, position) VALUES ('to_device', 0);
-- One message per recipient device per send; a send's messages share its stream position.
CREATE TABLE to_device_inbox (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  stream_position INTEGER NOT NULL,
  -- The event as sync hands it out: {sender, type, content}.
  event TEXT NOT NULL,
  PRIMARY KEY (user_id, device_id, stream_position),
  FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- /sendToDevice idempotency: (sender, device, event type, txnId) -> the send's stream position.
CREATE TABLE to_device_transactions (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  txn_id TEXT NOT NULL,
  stream_position INTEGER NOT NULL,
  created_ts INTEGER NOT NULL,
  PRIMARY KEY (user_id, device_id, event_type, txn_id),
  FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX to_device_transactions_by_created_ts ON to_device_transactions (created_ts);

-- Deleted versions stay (deleted = 1) so that their numbers are never given out again.
CREATE TABLE room_key_backup_versions (
  user_id TEXT NOT NULL REFERENCES accounts (user_id) ON DELETE CASCADE,
  version INTEGER NOT NULL,
  algorithm TEXT NOT NULL,
  auth_data TEXT NOT NULL,
  etag INTEGER NOT NULL DEFAULT 0,
  deleted INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, version)
) STRICT, WITHOUT ROWID;

CREATE TABLE room_key_backup_keys (
  user_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  room_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  first_message_index INTEGER NOT NULL,
  forwarded_count INTEGER NOT NULL,
  is_verified INTEGER NOT NULL,
  session_data TEXT NOT NULL,
  PRIMARY KEY (user_id, version, room_id, session_id),
  FOREIGN KEY (user_id, version) REFERENCES room_key_backup_versions (user_id, version) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
`,
  },
  {
    version: 7,
    name: 'media: media IDs, content-addressed blobs, thumbnails',
    sql: `
CREATE TABLE media_blobs (
  sha256 TEXT PRIMARY KEY NOT NULL,
  size INTEGER NOT NULL,
  encrypted INTEGER NOT NULL,
  -- Bumped whenever a media or thumbnail starts using it: the clean-up spares recently used blobs.
  last_used_ts INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE media (
  server_name TEXT NOT NULL,
  media_id TEXT NOT NULL,
  user_id TEXT,
  created_ts INTEGER NOT NULL,
  unused_expires_ts INTEGER,
  blob_sha256 TEXT REFERENCES media_blobs (sha256),
  content_type TEXT,
  upload_name TEXT,
  original_size INTEGER,
  authenticated_only INTEGER NOT NULL,
  quarantined INTEGER NOT NULL DEFAULT 0,
  preview TEXT,
  last_access_ts INTEGER NOT NULL,
  PRIMARY KEY (server_name, media_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX media_by_user ON media (user_id);
CREATE INDEX media_by_blob ON media (blob_sha256);
CREATE INDEX media_by_last_access ON media (last_access_ts);

CREATE TABLE media_thumbnails (
  server_name TEXT NOT NULL,
  media_id TEXT NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  method TEXT NOT NULL,
  animated INTEGER NOT NULL,
  blob_sha256 TEXT NOT NULL REFERENCES media_blobs (sha256),
  content_type TEXT NOT NULL,
  PRIMARY KEY (server_name, media_id, width, height, method, animated)
) STRICT, WITHOUT ROWID;
CREATE INDEX media_thumbnails_by_blob ON media_thumbnails (blob_sha256);
`,
  },
  {
    version: 8,
    name: 'search index',
    // Full-text search (client-server "Search"): see storage/sqlite/search-index.ts. The position
    // starts at 0, so events stored before this migration are indexed by the indexer's first catch-up.
    sql: `
CREATE TABLE search_documents (
  stream_ordering INTEGER PRIMARY KEY NOT NULL,
  event_id TEXT NOT NULL UNIQUE,
  room_id TEXT NOT NULL,
  sender TEXT NOT NULL,
  type TEXT NOT NULL,
  msgtype TEXT,
  contains_url INTEGER NOT NULL,
  origin_server_ts INTEGER NOT NULL
) STRICT;
CREATE INDEX search_documents_by_room ON search_documents (room_id, stream_ordering);
CREATE INDEX search_documents_by_sender ON search_documents (sender);
CREATE VIRTUAL TABLE search_fts USING fts5(
  body, name, topic,
  content = '', contentless_delete = 1,
  tokenize = "unicode61 remove_diacritics 0 categories 'L* N* M* Co'"
);
CREATE TABLE search_position (
  id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
  indexed_up_to INTEGER NOT NULL
) STRICT;
INSERT INTO search_position (id, indexed_up_to) VALUES (1, 0);
`,
  },
  {
    version: 9,
    name: 'cold storage',
    // Operator retention: see storage/sqlite/cold-archive.ts. Events moved to segment files leave
    // events; cold_events says which segment holds each, cold_redacted keeps later redactions.
    sql: `
CREATE TABLE cold_segments (
  segment_id INTEGER PRIMARY KEY NOT NULL,
  room_id TEXT NOT NULL,
  file TEXT NOT NULL UNIQUE,
  event_count INTEGER NOT NULL,
  created_ts INTEGER NOT NULL
) STRICT;
CREATE TABLE cold_events (
  event_id TEXT PRIMARY KEY NOT NULL,
  room_id TEXT NOT NULL,
  stream_ordering INTEGER NOT NULL UNIQUE,
  origin_server_ts INTEGER NOT NULL,
  segment_id INTEGER NOT NULL REFERENCES cold_segments (segment_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX cold_events_by_room ON cold_events (room_id, stream_ordering);
CREATE INDEX cold_events_by_room_ts ON cold_events (room_id, origin_server_ts);
CREATE TABLE cold_redacted (
  event_id TEXT PRIMARY KEY NOT NULL,
  json TEXT NOT NULL
) STRICT, WITHOUT ROWID;
`,
  },
  {
    version: 10,
    name: 'push: push rules, pushers, notifications and read marks (unread counts)',
    sql: `
CREATE TABLE push_rules (
  user_id TEXT PRIMARY KEY NOT NULL,
  rules TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE pushers (
  app_id TEXT NOT NULL,
  pushkey TEXT NOT NULL,
  user_id TEXT NOT NULL,
  device_id TEXT,
  kind TEXT NOT NULL,
  app_display_name TEXT NOT NULL,
  device_display_name TEXT NOT NULL,
  profile_tag TEXT,
  lang TEXT NOT NULL,
  data TEXT NOT NULL,
  created_ts INTEGER NOT NULL,
  PRIMARY KEY (app_id, pushkey, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX pushers_by_user ON pushers (user_id);

-- Narrow rows (the event's ID and time are read from events by stream ordering): a
-- notifying message in a 1,000-member room writes 1,000 of them.
CREATE TABLE push_notifications (
  user_id TEXT NOT NULL,
  room_id TEXT NOT NULL,
  stream_ordering INTEGER NOT NULL,
  thread_id TEXT NOT NULL,
  actions TEXT NOT NULL,
  highlight INTEGER NOT NULL,
  PRIMARY KEY (user_id, room_id, stream_ordering)
) STRICT, WITHOUT ROWID;

CREATE TABLE push_read_marks (
  user_id TEXT NOT NULL,
  room_id TEXT NOT NULL,
  thread_id TEXT NOT NULL,
  stream_ordering INTEGER NOT NULL,
  PRIMARY KEY (user_id, room_id, thread_id)
) STRICT, WITHOUT ROWID;
`,
  },
  {
    version: 11,
    name: 'content reports; receipts: delivery receipts indexed by the sender of the delivered event',
    sql: `
CREATE TABLE content_reports (
  report_id INTEGER PRIMARY KEY AUTOINCREMENT,
  received_ts INTEGER NOT NULL,
  reporter TEXT NOT NULL,
  room_id TEXT,
  event_id TEXT,
  user_id TEXT,
  reason TEXT
) STRICT;
CREATE INDEX content_reports_by_room ON content_reports (room_id, report_id);

-- Delivery receipts are shown only to the sender of the delivered event: with the sender
-- on the row, a sync reads the receipts meant for it instead of scanning every member's.
ALTER TABLE receipts ADD COLUMN event_sender TEXT;
UPDATE receipts SET event_sender = (SELECT sender FROM events WHERE events.event_id = receipts.event_id)
 WHERE receipt_type = 'io.myelin.delivered';
CREATE INDEX receipts_shown_by_room_stream ON receipts (room_id, stream_position)
 WHERE receipt_type <> 'io.myelin.delivered';
CREATE INDEX receipts_delivered_by_sender ON receipts (event_sender, stream_position)
 WHERE receipt_type = 'io.myelin.delivered';
`,
  },
  {
    version: 12,
    name: 'federation transport: remote server keys and key responses, outbound queue per destination with retry state, inbound transaction IDs',
    sql: `
CREATE TABLE federation_server_keys (
  server_name TEXT NOT NULL,
  key_id TEXT NOT NULL,
  public_key TEXT NOT NULL,
  -- valid_until_ts of the response for a current key, expired_ts for an old one.
  valid_until_ts INTEGER NOT NULL,
  expired INTEGER NOT NULL,
  fetched_ts INTEGER NOT NULL,
  PRIMARY KEY (server_name, key_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE federation_server_key_responses (
  server_name TEXT PRIMARY KEY NOT NULL,
  response TEXT NOT NULL,
  valid_until_ts INTEGER NOT NULL,
  fetched_ts INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE federation_outbox (
  position INTEGER PRIMARY KEY AUTOINCREMENT,
  destination TEXT NOT NULL,
  kind TEXT NOT NULL,
  json TEXT NOT NULL,
  -- Set once the item is part of a transaction being sent; resent under the same ID until delivered.
  txn_id TEXT,
  -- Ephemeral items (typing) not yet claimed by then are dropped rather than sent late.
  expires_ts INTEGER
) STRICT;
CREATE INDEX federation_outbox_by_destination ON federation_outbox (destination, kind, txn_id, position);

CREATE TABLE federation_destinations (
  destination TEXT PRIMARY KEY NOT NULL,
  retry_after_ts INTEGER NOT NULL,
  backoff_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE federation_inbound_transactions (
  origin TEXT NOT NULL,
  txn_id TEXT NOT NULL,
  response TEXT NOT NULL,
  received_ts INTEGER NOT NULL,
  PRIMARY KEY (origin, txn_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX federation_inbound_transactions_by_time ON federation_inbound_transactions (received_ts);
`,
  },
  {
    version: 13,
    name: 'federation backfill: negative stream orderings for history fetched from other servers',
    sql: `
-- Backfilled events take positions counting down from 0 (-1, -2, ...), as Synapse does:
-- older history sorts before the join, and no sync token (always >= 0) moves back.
INSERT INTO stream_positions (stream, position) VALUES ('events_backfill', 0);
`,
  },
  {
    version: 14,
    name: 'send path: the client transaction kept on the event row; transaction_ids loses its two secondary indexes',
    sql: `
-- The event -> transaction link (sync echoes transaction_id to the sending device) is read
-- from the event's own row, written by the same insert: each send no longer inserts into
-- transaction_ids_by_event. transaction_ids_by_created_ts served only deleteTransactionsBefore,
-- a rare clean-up that may scan. Both were a B-tree insert (and a WAL page) per send.
ALTER TABLE events ADD COLUMN txn_device_id TEXT;
ALTER TABLE events ADD COLUMN txn_id TEXT;
UPDATE events SET txn_device_id = t.device_id, txn_id = t.txn_id
  FROM transaction_ids t
 WHERE t.event_id = events.event_id AND t.user_id = events.sender;
-- History moved to cold storage keeps the link too (the sender's own device still sees its echo).
ALTER TABLE cold_events ADD COLUMN txn_user_id TEXT;
ALTER TABLE cold_events ADD COLUMN txn_device_id TEXT;
ALTER TABLE cold_events ADD COLUMN txn_id TEXT;
UPDATE cold_events SET txn_user_id = t.user_id, txn_device_id = t.device_id, txn_id = t.txn_id
  FROM transaction_ids t
 WHERE t.event_id = cold_events.event_id;
DROP INDEX transaction_ids_by_event;
DROP INDEX transaction_ids_by_created_ts;
`,
  },
  {
    version: 15,
    name: 'federation: to-device message IDs from other servers remembered across restarts',
    sql: `
-- m.direct_to_device is delivered once per (origin, message_id): a server retrying after
-- our restart must not deliver the same message twice. Forgotten after a week.
CREATE TABLE federation_to_device_message_ids (
  origin TEXT NOT NULL,
  message_id TEXT NOT NULL,
  received_ts INTEGER NOT NULL,
  PRIMARY KEY (origin, message_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX federation_to_device_message_ids_by_time ON federation_to_device_message_ids (received_ts);
`,
  },
  {
    version: 16,
    name: 'search index: a second position for backfilled history; documents without per-event-ID and sender indexes',
    // Backfilled events sit below 0 (migration 13); the indexer walks them downwards from 0.
    // search_documents loses its event_id and sender indexes: each cost every indexed event a
    // B-tree insert (event IDs at random places), for lookups a redaction now makes by stream
    // ordering and an erasure makes rarely enough to scan.
    sql: `
ALTER TABLE search_position ADD COLUMN indexed_down_to INTEGER NOT NULL DEFAULT 0;
CREATE TABLE search_documents_new (
  stream_ordering INTEGER PRIMARY KEY NOT NULL,
  event_id TEXT NOT NULL,
  room_id TEXT NOT NULL,
  sender TEXT NOT NULL,
  type TEXT NOT NULL,
  msgtype TEXT,
  contains_url INTEGER NOT NULL,
  origin_server_ts INTEGER NOT NULL
) STRICT;
INSERT INTO search_documents_new
  SELECT stream_ordering, event_id, room_id, sender, type, msgtype, contains_url, origin_server_ts
    FROM search_documents;
DROP TABLE search_documents;
ALTER TABLE search_documents_new RENAME TO search_documents;
CREATE INDEX search_documents_by_room ON search_documents (room_id, stream_ordering);
`,
  },
  {
    version: 17,
    name: 'pending redactions: redactions kept until their target is stored',
    // A redaction can arrive before its target (backfill pages newest first, out-of-order
    // PDUs): it is kept here and applied in the write that stores the target.
    sql: `
CREATE TABLE pending_redactions (
  target_event_id TEXT NOT NULL,
  redaction_event_id TEXT NOT NULL,
  room_id TEXT NOT NULL,
  room_version TEXT NOT NULL,
  sender_server TEXT NOT NULL,
  sender_may_redact_any INTEGER NOT NULL,
  PRIMARY KEY (target_event_id, redaction_event_id)
) STRICT, WITHOUT ROWID;
`,
  },
  {
    version: 18,
    name: 'outbound device-list updates: the last stream ID per user and the content sent per device',
    // m.device_list_update out carries a per-user stream ID chained by prev_id, which must not
    // start again after a restart; the hashes tell which devices changed or went since the last
    // update. Devices that exist now are seeded as "sent with unknown content", so the first
    // update after this migration covers them and a later deletion is announced.
    sql: `
CREATE TABLE device_list_outbound_streams (
  user_id TEXT PRIMARY KEY NOT NULL,
  last_stream_id INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE device_list_outbound_devices (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  PRIMARY KEY (user_id, device_id)
) STRICT, WITHOUT ROWID;
INSERT INTO device_list_outbound_devices (user_id, device_id, content_hash)
  SELECT user_id, device_id, '' FROM devices;
`,
  },
  {
    version: 19,
    name: 'application services: the event stream position handed out, each queue of events per service, network room lists',
    // application-service "Pushing events": events are queued per service before anything is
    // sent; a claimed transaction keeps its txn_id until the service accepts it. The fan-out
    // position moves in the same write as the queued rows, so a restart neither loses nor
    // repeats an event.
    sql: `
CREATE TABLE appservice_fan_out (
  id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
  position INTEGER NOT NULL
) STRICT;
CREATE TABLE appservice_outbox (
  position INTEGER PRIMARY KEY AUTOINCREMENT,
  appservice_id TEXT NOT NULL,
  json TEXT NOT NULL,
  txn_id TEXT
) STRICT;
CREATE INDEX appservice_outbox_by_service ON appservice_outbox (appservice_id, txn_id, position);
-- Rooms an application service publishes in the directory of one of its third-party networks.
CREATE TABLE appservice_room_list (
  appservice_id TEXT NOT NULL,
  network_id TEXT NOT NULL,
  room_id TEXT NOT NULL,
  PRIMARY KEY (appservice_id, network_id, room_id)
) STRICT, WITHOUT ROWID;
`,
  },
  {
    version: 20,
    name: 'push notification rows name their user, room and actions by integer IDs (push_names)',
    // A notifying message in a big room writes a row per member: integer keys make each
    // row's B-tree insert cheaper than the text IDs did (measured: 1.72 -> 1.06 µs per row
    // in sorted 500-row writes). push_names interns user IDs, room IDs and action lists alike.
    sql: `
CREATE TABLE push_names (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
) STRICT;
INSERT INTO push_names (name)
  SELECT user_id FROM push_notifications UNION SELECT room_id FROM push_notifications
  UNION SELECT actions FROM push_notifications;
CREATE TABLE push_notifications_by_id (
  user_name_id INTEGER NOT NULL,
  room_name_id INTEGER NOT NULL,
  stream_ordering INTEGER NOT NULL,
  thread_id TEXT NOT NULL,
  actions_name_id INTEGER NOT NULL,
  highlight INTEGER NOT NULL,
  PRIMARY KEY (user_name_id, room_name_id, stream_ordering)
) STRICT, WITHOUT ROWID;
INSERT INTO push_notifications_by_id
  SELECT u.id, r.id, n.stream_ordering, n.thread_id, a.id, n.highlight
    FROM push_notifications n
    JOIN push_names u ON u.name = n.user_id
    JOIN push_names r ON r.name = n.room_id
    JOIN push_names a ON a.name = n.actions;
DROP TABLE push_notifications;
ALTER TABLE push_notifications_by_id RENAME TO push_notifications;
`,
  },
  {
    version: 21,
    name: 'client transactions of application services: transaction_ids follows devices by triggers, not a foreign key',
    // An application service sends without a device; its sends are deduplicated under the
    // session ID `appservice:<id>`, which names no device row. Any other transaction still needs
    // its device (as the foreign key did) and goes with it (the trigger also fires for rows
    // deleted by a cascade from accounts).
    sql: `
DROP TRIGGER IF EXISTS transaction_ids_go_with_their_device;
DROP TRIGGER IF EXISTS transaction_ids_need_their_device;
CREATE TABLE transaction_ids_unbound (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  txn_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  created_ts INTEGER NOT NULL,
  PRIMARY KEY (user_id, device_id, txn_id)
) STRICT, WITHOUT ROWID;
INSERT INTO transaction_ids_unbound (user_id, device_id, txn_id, event_id, created_ts)
  SELECT user_id, device_id, txn_id, event_id, created_ts FROM transaction_ids;
DROP TABLE transaction_ids;
ALTER TABLE transaction_ids_unbound RENAME TO transaction_ids;
CREATE TRIGGER transaction_ids_go_with_their_device AFTER DELETE ON devices BEGIN
  DELETE FROM transaction_ids WHERE user_id = OLD.user_id AND device_id = OLD.device_id;
END;
CREATE TRIGGER transaction_ids_need_their_device BEFORE INSERT ON transaction_ids
  WHEN NEW.device_id NOT LIKE 'appservice:%'
   AND NOT EXISTS (SELECT 1 FROM devices WHERE user_id = NEW.user_id AND device_id = NEW.device_id)
BEGIN
  SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: no such device');
END;
`,
  },
  {
    version: 22,
    name: 'application services: the out-of-band memberships queued for them',
    // An invite, knock or rescinded one kept outside the timeline is queued for the services when
    // its handshake stores it, once; remembered so that it is not handed out again if it later
    // enters the timeline (promoted with a new stream ordering).
    sql: `
CREATE TABLE IF NOT EXISTS appservice_out_of_band (
  event_id TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;
`,
  },
  {
    version: 23,
    name: 'receipts: no index of every receipt by room and position (delivery receipts skip it)',
    // Every read of receipts by room and position goes through receipts_shown_by_room_stream
    // (receipts shown to all) or receipts_delivered_by_sender; the full index was only
    // written: a fan-out rewrote a thousand delivery rows' entries in it per message.
    // Delivery receipts of a room without a viewer are read by the primary key's prefix.
    sql: `
DROP INDEX IF EXISTS receipts_by_room_stream;
`,
  },
  {
    version: 24,
    name: 'transaction IDs of application services by age (pruned: no device ends them)',
    // A device's transaction IDs go with the device; a service's deviceless ones (session
    // `appservice:<id>`) would pile up for ever, one per bridged message, without a prune by age.
    sql: `
CREATE INDEX IF NOT EXISTS transaction_ids_of_appservices_by_created_ts ON transaction_ids (created_ts)
  WHERE device_id LIKE 'appservice:%';
`,
  },
];
